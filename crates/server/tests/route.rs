//! Server chaining end to end: a hasocks server with `route { }` blocks in front of upstream
//! hasocks servers (and a tiny HTTP CONNECT proxy) on other loopback addresses, real SOCKS
//! bytes throughout. Targets report the address they were reached from, so a test sees which
//! way a session went.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use common::*;
use hasocks_server::ServerHandle;
use hasocks_socks_wire::TargetAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const NONE: &str = "socksmethod: none";

/// A test's scratch folder, removed when the test ends (passing or not).
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        Scratch(temp_dir(tag))
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A target on 127.0.0.1 that writes the address it was reached from, then echoes.
async fn whoami() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, peer)) = l.accept().await {
            tokio::spawn(async move {
                let mut line = peer.ip().to_string().into_bytes();
                line.resize(16, b' ');
                if s.write_all(&line).await.is_err() {
                    return;
                }
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Reads the 16-byte "who are you" line of [`whoami`].
async fn seen_from(s: &mut TcpStream) -> String {
    let mut b = [0u8; 16];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut b))
        .await
        .expect("the target answers in time")
        .unwrap();
    String::from_utf8_lossy(&b).trim().to_string()
}

/// An upstream hasocks server on `ip` (port `port`, 0 = any), going out from `ip`, with
/// `settings` (its socksmethod among them).
async fn upstream(ip: &str, port: u16, settings: &str) -> (ServerHandle, SocketAddr) {
    let text = format!(
        "internal: {ip} port = {port}\nexternal: {ip}\n{settings}\n\
         client pass {{ from: 0/0 to: 0/0 }}\nsocks pass {{ from: 0/0 to: 0/0 }}\n"
    );
    start(&text).await
}

/// The chaining server on 127.0.0.1 (going out from 127.0.0.1): `settings`, then the rules,
/// then `routes`; its log goes to `log`.
async fn chain(log: &Path, settings: &str, routes: &str) -> (ServerHandle, SocketAddr) {
    let text = format!(
        "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nlogoutput: {}\n{settings}\n\
         client pass {{ from: 0/0 to: 0/0 }}\n\
         socks pass {{ from: 0/0 to: 0/0\nlog: connect disconnect error\n}}\n{routes}\n",
        log.display()
    );
    start(&text).await
}

fn route_via(upstream: SocketAddr, extra: &str) -> String {
    format!(
        "route {{\nfrom: 0/0 to: 0/0 via: {} port = {}\n{extra}\n}}\n",
        upstream.ip(),
        upstream.port()
    )
}

/// CONNECT through `proxy` to `target`; the stream and REP.
async fn connect(proxy: SocketAddr, target: SocketAddr) -> (TcpStream, u8) {
    let (s, rep, _) = socks5(proxy, &request_ip(1, target)).await;
    (s, rep)
}

#[tokio::test]
async fn connect_through_an_upstream_reaches_the_target_from_the_upstreams_address() {
    let d = Scratch::new("route-connect");
    let (_u, up) = upstream("127.0.0.2", 0, NONE).await;
    let (_h, proxy) = chain(&d.join("log"), "socksmethod: none", &route_via(up, "")).await;
    let target = whoami().await;
    let (mut s, rep) = connect(proxy, target).await;
    assert_eq!(rep, 0);
    assert_eq!(seen_from(&mut s).await, "127.0.0.2");
    assert_echo(&mut s, b"through the chain").await;
    drop(s);
    let line = wait_for_text(&d.join("log"), "]: ").await;
    let want = format!("route #1 via {up} (socks_v5) external 127.0.0.1:");
    assert!(
        line.contains(&want),
        "the session's lines name route and upstream: {line}"
    );
}

#[tokio::test]
async fn a_request_no_route_matches_goes_direct() {
    let d = Scratch::new("route-direct");
    let (_u, up) = upstream("127.0.0.2", 0, NONE).await;
    let routes = format!(
        "route {{\nfrom: 0/0 to: 10.0.0.0/8 via: {} port = {}\n}}\n",
        up.ip(),
        up.port()
    );
    let (_h, proxy) = chain(&d.join("log"), "socksmethod: none", &routes).await;
    let (mut s, rep) = connect(proxy, whoami().await).await;
    assert_eq!(rep, 0);
    assert_eq!(seen_from(&mut s).await, "127.0.0.1");
}

#[tokio::test]
async fn a_direct_route_first_in_its_group_wins_and_names_resolve_for_to() {
    let d = Scratch::new("route-direct-first");
    let (_u, up) = upstream("127.0.0.2", 0, NONE).await;
    let routes = format!(
        "route {{\nfrom: 0/0 to: localhost via: direct\n}}\n{}",
        route_via(up, "")
    );
    let (_h, proxy) = chain(&d.join("log"), "socksmethod: none", &routes).await;
    let target = whoami().await;
    let req = request_name(1, "localhost", target.port());
    let (mut s, rep, _) = socks5(proxy, &req).await;
    assert_eq!(rep, 0);
    assert_eq!(seen_from(&mut s).await, "127.0.0.1");
    // An address target matches `to: localhost` through the name's addresses.
    let (mut s, rep) = connect(proxy, target).await;
    assert_eq!(rep, 0);
    assert_eq!(seen_from(&mut s).await, "127.0.0.1");
}

#[tokio::test]
async fn a_dead_upstream_is_skipped_at_once_marked_bad_and_then_tried_last() {
    let d = Scratch::new("route-dead");
    let dead = closed_port().await;
    let (_u, up) = upstream("127.0.0.3", 0, NONE).await;
    let routes = format!("{}{}", route_via(dead, ""), route_via(up, ""));
    let (h, proxy) = chain(&d.join("log"), "socksmethod: none", &routes).await;
    let target = whoami().await;
    for _ in 0..3 {
        let (mut s, rep) = connect(proxy, target).await;
        assert_eq!(rep, 0, "the client sees success");
        assert_eq!(seen_from(&mut s).await, "127.0.0.3");
    }
    let st = h.routes();
    assert_eq!((st[0].state, st[1].state), ("bad", "up"));
    // Marked at the first failure (route.maxfail 1); after that it is tried last, so it
    // failed once only.
    let connect_failures = st[0]
        .failures
        .iter()
        .find(|(w, _)| *w == "connect")
        .unwrap()
        .1;
    assert_eq!(connect_failures, 1);
    assert_eq!(st[1].sessions, 3);
    let log = wait_for_text(&d.join("log"), "marked bad").await;
    assert!(
        log.contains(&format!("route: upstream {dead} marked bad")),
        "{log}"
    );
}

#[tokio::test]
async fn when_every_upstream_fails_the_client_gets_a_failure_reply() {
    let d = Scratch::new("route-all-dead");
    let routes = format!(
        "{}{}",
        route_via(closed_port().await, ""),
        route_via(closed_port().await, "")
    );
    let (h, proxy) = chain(&d.join("log"), "socksmethod: none", &routes).await;
    let (_s, rep) = connect(proxy, whoami().await).await;
    assert_eq!(rep, 1, "general failure");
    assert!(h.routes().iter().all(|r| r.state == "bad"));
}

#[tokio::test]
async fn the_targets_refusal_through_an_upstream_is_passed_on_without_failover() {
    let d = Scratch::new("route-refused");
    let (_u, up) = upstream("127.0.0.2", 0, NONE).await;
    let (_u2, up2) = upstream("127.0.0.3", 0, NONE).await;
    let routes = format!("{}{}", route_via(up, ""), route_via(up2, ""));
    let (h, proxy) = chain(&d.join("log"), "socksmethod: none", &routes).await;
    let (_s, rep) = connect(proxy, closed_port().await).await;
    assert_eq!(rep, 5, "connection refused, as the upstream said");
    let st = h.routes();
    assert_eq!((st[0].state, st[0].fails), ("up", 0));
    assert_eq!(st[1].failures.iter().map(|(_, n)| n).sum::<u64>(), 0);
}

#[tokio::test]
async fn source_hash_keeps_each_client_on_one_upstream_and_spreads_clients() {
    let d = Scratch::new("route-hash");
    let (_a, up_a) = upstream("127.0.0.2", 0, NONE).await;
    let (_b, up_b) = upstream("127.0.0.3", 0, NONE).await;
    let routes = format!("{}{}", route_via(up_a, ""), route_via(up_b, ""));
    let settings = "socksmethod: none\nhasocks.route.select: source-hash";
    let (_h, proxy) = chain(&d.join("log"), settings, &routes).await;
    let target = whoami().await;
    let mut used = std::collections::BTreeSet::new();
    for n in 10..40u8 {
        let mut first = None;
        for _ in 0..3 {
            let mut s = connect_from(client(n), proxy).await.unwrap();
            s.write_all(&[5, 1, 0]).await.unwrap();
            let mut sel = [0u8; 2];
            s.read_exact(&mut sel).await.unwrap();
            s.write_all(&request_ip(1, target)).await.unwrap();
            let (rep, _) = read_reply(&mut s).await;
            assert_eq!(rep, 0);
            let via = seen_from(&mut s).await;
            assert_eq!(
                first.get_or_insert(via.clone()),
                &via,
                "client {n} kept its upstream"
            );
        }
        used.extend(first);
    }
    assert_eq!(
        used.len(),
        2,
        "30 clients spread over both upstreams: {used:?}"
    );
}

#[tokio::test]
async fn a_check_marks_a_dead_upstream_bad_and_its_return_clears_it() {
    let d = Scratch::new("route-check");
    let port = free_port("127.0.0.2");
    let (u, up) = upstream("127.0.0.2", port, NONE).await;
    let settings = "socksmethod: none\nhasocks.route.check.interval: 1\nhasocks.route.timeout: 2";
    let (h, _proxy) = chain(&d.join("log"), settings, &route_via(up, "")).await;
    wait_until("the first check passes", || h.routes()[0].state == "up").await;
    u.shutdown(Duration::ZERO).await;
    drop(u);
    wait_until("the check marks it bad", || h.routes()[0].state == "bad").await;
    let (_u, _) = upstream("127.0.0.2", port, NONE).await;
    wait_until("a check clears it", || h.routes()[0].state == "up").await;
    let log = wait_for_text(&d.join("log"), "is back").await;
    assert!(log.contains("check passed"), "{log}");
    assert!(h.routes()[0].last_check.starts_with("ok in"));
}

#[tokio::test]
async fn a_username_route_forwards_the_clients_name_and_password() {
    let d = Scratch::new("route-user");
    // alice / "correct horse" (htpasswd -nbB -C 5) on both; the upstream takes no method
    // none, so only the forwarded login lets a session through it.
    let pw = d.join("htpasswd");
    std::fs::write(
        &pw,
        "alice:$2y$05$yif5A761wzthbpnkXLpxiu/6UU1iO6UMDV6WCGw0N7WsmtJxCyCe2\n",
    )
    .unwrap();
    let methods = format!(
        "socksmethod: hasocks.passwordfile\nhasocks.passwordfile: {}",
        pw.display()
    );
    let (_u, up) = upstream("127.0.0.2", 0, &methods).await;
    let (_h, proxy) = chain(&d.join("log"), &methods, &route_via(up, "method: username")).await;
    let target = whoami().await;
    let (mut s, st, rep) = login_connect(proxy, b"alice", b"correct horse", target).await;
    assert_eq!((st, rep), (0, Some(0)));
    assert_eq!(seen_from(&mut s).await, "127.0.0.2");
    // Without method username the upstream refuses the chain's greeting.
    let (_u2, up2) = upstream("127.0.0.3", 0, &methods).await;
    let (_h2, proxy2) = chain(&d.join("log2"), &methods, &route_via(up2, "")).await;
    let (_s, st, rep) = login_connect(proxy2, b"alice", b"correct horse", target).await;
    assert_eq!(st, 0);
    assert_eq!(
        rep,
        Some(1),
        "no acceptable method upstream: a general failure"
    );
}

#[tokio::test]
async fn bind_through_an_upstream_announces_its_address_and_relays_the_peer() {
    let d = Scratch::new("route-bind");
    let (_u, up) = upstream("127.0.0.2", 0, NONE).await;
    let (_h, proxy) = chain(&d.join("log"), "socksmethod: none", &route_via(up, "")).await;
    let (mut c, rep, listening) =
        socks5(proxy, &request_ip(2, "127.0.0.1:0".parse().unwrap())).await;
    assert_eq!(rep, 0);
    assert_eq!(
        listening.ip().to_string(),
        "127.0.0.2",
        "the upstream listens"
    );
    let mut peer = TcpStream::connect(listening).await.unwrap();
    let (rep, from) = read_reply(&mut c).await;
    assert_eq!(rep, 0);
    assert_eq!(from, peer.local_addr().unwrap());
    peer.write_all(b"from the peer").await.unwrap();
    let mut b = [0u8; 13];
    c.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"from the peer");
    c.write_all(b"to peer").await.unwrap();
    let mut b = [0u8; 7];
    peer.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"to peer");
}

#[tokio::test]
async fn udp_through_a_chain_of_two_servers_gets_its_echoes() {
    let d = Scratch::new("route-udp");
    let (_u, up) = upstream("127.0.0.2", 0, NONE).await;
    let (_h, proxy) = chain(&d.join("log"), "socksmethod: none", &route_via(up, "")).await;
    let (echo, seen) = udp_echo_server("127.0.0.1").await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_ctl, rep, relay) = udp_associate(proxy, sock.local_addr().unwrap()).await;
    assert_eq!(rep, 0);
    for msg in [&b"one"[..], b"two", b"three"] {
        sock.send_to(&udp_wrap(0, TargetAddr::Ip(echo), msg), relay)
            .await
            .unwrap();
        let (from, payload) = udp_recv_unwrap(&sock).await;
        assert_eq!(from, TargetAddr::Ip(echo));
        assert_eq!(payload, msg);
    }
    let name = TargetAddr::domain("localhost", echo.port()).unwrap();
    sock.send_to(&udp_wrap(0, name, b"by name"), relay)
        .await
        .unwrap();
    let (_, payload) = udp_recv_unwrap(&sock).await;
    assert_eq!(payload, b"by name");
    assert_eq!(seen.lock().unwrap().len(), 4);
}

/// A one-connection-at-a-time HTTP CONNECT proxy on 127.0.0.4 (what the route test needs).
async fn http_proxy() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.4:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if s.read_exact(&mut b).await.is_err() {
                        return;
                    }
                    head.push(b[0]);
                }
                let text = String::from_utf8_lossy(&head).to_string();
                let authority = text.split(' ').nth(1).unwrap_or_default().to_string();
                let Ok(target) = authority.parse::<SocketAddr>() else {
                    let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
                    return;
                };
                let sock = tokio::net::TcpSocket::new_v4().unwrap();
                sock.bind("127.0.0.4:0".parse().unwrap()).unwrap();
                let Ok(mut t) = sock.connect(target).await else {
                    let _ = s.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                let _ = s
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut s, &mut t).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_http_upstream_carries_connect_and_bind_skips_it() {
    let d = Scratch::new("route-http");
    let up = http_proxy().await;
    let (_h, proxy) = chain(
        &d.join("log"),
        "socksmethod: none",
        &route_via(up, "proxyprotocol: http"),
    )
    .await;
    let (mut s, rep) = connect(proxy, whoami().await).await;
    assert_eq!(rep, 0);
    assert_eq!(seen_from(&mut s).await, "127.0.0.4");
    let (_s, rep) = connect(proxy, closed_port().await).await;
    assert_eq!(
        rep, 4,
        "the proxy's 502 is the target's verdict: host unreachable"
    );
    // BIND is not carried by an HTTP upstream: the route does not match it, so it is direct.
    let (_c, rep, listening) = socks5(proxy, &request_ip(2, "127.0.0.1:0".parse().unwrap())).await;
    assert_eq!(rep, 0);
    assert_eq!(listening.ip(), IpAddr::from([127, 0, 0, 1]));
}

#[tokio::test]
async fn metrics_page_and_json_show_each_route_its_state_sessions_failures_and_latency() {
    use hasocks_server::admin_source::ServerAdmin;
    let d = Scratch::new("route-admin");
    let dead = closed_port().await;
    let (_u, up) = upstream("127.0.0.2", 0, NONE).await;
    let routes = format!("{}{}", route_via(dead, ""), route_via(up, ""));
    let (h, proxy) = chain(&d.join("log"), NONE, &routes).await;
    let (mut s, rep) = connect(proxy, whoami().await).await;
    assert_eq!(rep, 0);
    assert_eq!(seen_from(&mut s).await, "127.0.0.2");
    let h = std::sync::Arc::new(h);
    let a = hasocks_admin::start(
        "127.0.0.1:0".parse().unwrap(),
        std::sync::Arc::new(ServerAdmin::new(h.clone())),
        hasocks_admin::Limits::default(),
    )
    .expect("admin");
    let (_, m) = http_get(a.local_addr(), "/metrics").await.expect("scrape");
    let bad =
        format!("hasocks_server_route_state{{route=\"1\",upstream=\"{dead}\",state=\"bad\"}}");
    assert_eq!(metric(&m, &bad), Some(1.0), "{m}");
    let ok = format!("hasocks_server_route_sessions_total{{route=\"2\",upstream=\"{up}\"}}");
    assert_eq!(metric(&m, &ok), Some(1.0));
    let failed = format!(
        "hasocks_server_route_failures_total{{route=\"1\",upstream=\"{dead}\",reason=\"connect\"}}"
    );
    assert_eq!(metric(&m, &failed), Some(1.0));
    let count =
        format!("hasocks_server_route_handshake_seconds_count{{route=\"2\",upstream=\"{up}\"}}");
    assert_eq!(metric(&m, &count), Some(1.0));
    assert_promtool_accepts(&m, "the route families");
    let (_, page) = http_get(a.local_addr(), "/").await.expect("page");
    assert!(
        page.contains("<h2>routes</h2>") && page.contains(&up.to_string()),
        "{page}"
    );
    let (_, json) = http_get(a.local_addr(), "/status.json")
        .await
        .expect("json");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["routes"][0]["state"], "bad");
    assert_eq!(v["routes"][1]["sessions"], 1);
    assert_eq!(v["routes"][1]["via"], up.to_string());
}

#[tokio::test]
async fn a_chained_association_ends_when_its_upstream_ends_it() {
    let d = Scratch::new("route-udp-end");
    let (u, up) = upstream("127.0.0.2", 0, NONE).await;
    let (h, proxy) = chain(&d.join("log"), NONE, &route_via(up, "")).await;
    let (echo, _) = udp_echo_server("127.0.0.1").await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (mut ctl, rep, relay) = udp_associate(proxy, sock.local_addr().unwrap()).await;
    assert_eq!(rep, 0);
    sock.send_to(&udp_wrap(0, TargetAddr::Ip(echo), b"x"), relay)
        .await
        .unwrap();
    udp_recv_unwrap(&sock).await;
    // The upstream stops and cuts its associations: ours follows, the client sees EOF.
    u.shutdown(Duration::ZERO).await;
    let rest = tokio::time::timeout(DEADLINE, read_to_eof(&mut ctl)).await;
    assert!(rest.is_ok(), "the client's control connection is closed");
    let line = wait_for_text(&d.join("log"), "closed its control connection").await;
    assert!(
        line.contains("the upstream closed its control connection"),
        "{line}"
    );
    wait_until("the association is gone", || h.active_sessions() == 0).await;
}

#[tokio::test]
async fn an_http_upstream_is_checked_end_to_end_too() {
    let d = Scratch::new("route-http-check");
    let up = http_proxy().await;
    let settings = "socksmethod: none\nhasocks.route.check.interval: 1";
    let (h, _proxy) = chain(
        &d.join("log"),
        settings,
        &route_via(up, "proxyprotocol: http"),
    )
    .await;
    wait_until("the check through the HTTP proxy passes", || {
        h.routes()[0].last_check.starts_with("ok in")
    })
    .await;
    assert_eq!(h.routes()[0].state, "up");
}

#[tokio::test]
async fn a_reload_keeps_an_upstreams_mark_and_a_routes_counters() {
    let d = Scratch::new("route-reload");
    let dead = closed_port().await;
    let (_u, up) = upstream("127.0.0.3", 0, NONE).await;
    let routes = format!("{}{}", route_via(dead, ""), route_via(up, ""));
    let (h, proxy) = chain(&d.join("log"), NONE, &routes).await;
    let (_s, rep) = connect(proxy, whoami().await).await;
    assert_eq!(rep, 0);
    assert_eq!(h.routes()[0].state, "bad");
    // The same listener (`port = 0` as configured), the same routes, other rules.
    let text = format!(
        "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nsocksmethod: none\n\
         client pass {{ from: 0/0 to: 0/0 }}\nsocks pass {{ from: 0/0 to: 0/0 }}\n{routes}"
    );
    let cfg = hasocks_conf::sockd::parse(&text, Path::new("reload.conf")).unwrap();
    h.reload(cfg).await.expect("reload");
    let st = h.routes();
    assert_eq!((st[0].state, st[0].marked, st[1].sessions), ("bad", 1, 1));
}

//! The whole system in one process: real `hasocks_server::ServerHandle`s on 127.0.0.x behind a
//! `hasocks_relay::RelayHandle`, both started from config text as `hasocks` reads it, with SOCKS5
//! clients talking through the relay to an echo target.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::start_server;
use hasocks_relay::{HostState, RelayHandle};
use hasocks_server::ServerHandle;
use hasocks_socks_wire::TargetAddr;
use hasocks_test_support::{echo_server, sockd_conf_on, temp_dir, wait_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A SOCKS server on `ip` (port 0) whose socks rule is `pass` or `block`.
async fn socks_server(ip: &str, rule: &str) -> (ServerHandle, u16) {
    start_server(&sockd_conf_on(ip, rule, "")).await
}

/// A relay started from relayd.conf text. relayd.conf forbids `port 0`, so the text says
/// `port 1` and every listener is moved to an ephemeral port after parsing.
async fn relay_from(text: &str) -> RelayHandle {
    let mut cfg = hasocks_conf::relayd::parse(text, Path::new("cluster-relayd.conf"), &[])
        .expect("relayd.conf");
    for l in cfg.relays.iter_mut().flat_map(|r| r.listens.iter_mut()) {
        l.port = 0;
    }
    RelayHandle::start(cfg).await.expect("relay starts")
}

/// The address relay `name` listens on.
fn listen_addr(h: &RelayHandle, name: &str) -> SocketAddr {
    h.listen_addrs()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, a)| a)
        .expect("relay listens")
}

/// States of a table's hosts, in table order.
fn states(h: &RelayHandle, table: &str) -> Vec<HostState> {
    h.snapshot()
        .table(table)
        .map(|t| t.hosts.iter().map(|x| x.state).collect())
        .unwrap_or_default()
}

/// One whole session through `proxy`: SOCKS5 CONNECT to `target`, then an echo round trip.
async fn session(proxy: SocketAddr, target: SocketAddr, tag: u64) -> Result<(), String> {
    let s = tokio::net::TcpStream::connect(proxy)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    session_over(s, target, tag).await
}

/// [`session`] over a connection already made (from a source address of the test's choice).
async fn session_over(
    s: tokio::net::TcpStream,
    target: SocketAddr,
    tag: u64,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let (mut s, _) = hasocks_probe::socks5_over(s, &TargetAddr::Ip(target), None, deadline, None)
        .await
        .map_err(|e| format!("CONNECT: {e}"))?;
    let out = tag.to_be_bytes();
    let mut back = [0u8; 8];
    tokio::time::timeout(Duration::from_secs(5), async {
        s.write_all(&out).await?;
        s.read_exact(&mut back).await
    })
    .await
    .map_err(|_| "echo timed out".to_string())?
    .map_err(|e| format!("echo: {e}"))?;
    if back == out {
        Ok(())
    } else {
        Err("echo mismatch".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_sessions_survive_a_server_shutdown_before_and_after_the_check_notices() {
    let target = echo_server("127.0.0.1").await;
    let mut servers = Vec::new();
    for ip in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        servers.push(socks_server(ip, "pass").await);
    }
    let text = format!(
        "interval 1\ntimeout 900\n\
         table <s> {{ 127.0.0.2 port {}, 127.0.0.3 port {}, 127.0.0.4 port {} }}\n\
         relay \"socks\" {{\n listen on 127.0.0.1 port 1\n\
         forward to <s> port 1080 mode loadbalance check socks\n}}\n",
        servers[0].1, servers[1].1, servers[2].1
    );
    let relay = relay_from(&text).await;
    let proxy = listen_addr(&relay, "socks");
    wait_until("all three servers up under check socks", || {
        states(&relay, "s:1080") == [HostState::Up; 3]
    })
    .await;

    // The client's host: loadbalance sends 127.0.0.1 to one host; hold a session to find it.
    let (mut held, _) =
        hasocks_probe::socks5_connect(proxy, &TargetAddr::Ip(target), None, Duration::from_secs(5))
            .await
            .expect("held session");
    held.write_all(b"x").await.expect("held write");
    let mut one = [0u8; 1];
    held.read_exact(&mut one).await.expect("held echo");
    let snap = relay.snapshot();
    let hosts = &snap.table("s:1080").expect("table").hosts;
    let victim = hosts
        .iter()
        .position(|h| h.open > 0)
        .expect("a host holds the session");
    assert_eq!(hosts.iter().filter(|h| h.open > 0).count(), 1);

    // Sessions run in the background throughout; those started after the shutdown must work.
    let stop = Arc::new(AtomicBool::new(false));
    let after_shutdown = Arc::new(AtomicBool::new(false));
    let (done, done_after, failed_after) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let load = {
        let (stop, after) = (stop.clone(), after_shutdown.clone());
        let (done, done_after, failed_after) =
            (done.clone(), done_after.clone(), failed_after.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            let mut first_error = None;
            while !stop.load(Ordering::SeqCst) {
                let started_after = after.load(Ordering::SeqCst);
                n += 1;
                let r = session(proxy, target, n).await;
                if started_after {
                    done_after.fetch_add(1, Ordering::SeqCst);
                    if let Err(e) = r {
                        failed_after.fetch_add(1, Ordering::SeqCst);
                        first_error.get_or_insert(e);
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
            first_error
        })
    };
    wait_until("background sessions running", || {
        done.load(Ordering::SeqCst) >= 20
    })
    .await;

    let retries_before = relay.snapshot().relays[0].retries;
    let (handle, _) = servers.remove(victim);
    handle.shutdown(Duration::ZERO).await;
    after_shutdown.store(true, Ordering::SeqCst);

    // Right away: the relay's connect retry moves the session to the next host.
    session(proxy, target, 1_000_000)
        .await
        .expect("session right after the shutdown");
    if states(&relay, "s:1080")[victim] == HostState::Up {
        // The check has not noticed yet, so the hash chose the dead host: only a retry saved it.
        assert!(
            relay.snapshot().relays[0].retries > retries_before,
            "a session succeeded on a dead host without a retry?"
        );
    }

    wait_until("the shut-down server marked down", || {
        states(&relay, "s:1080")[victim] == HostState::Down
    })
    .await;
    let others = states(&relay, "s:1080");
    assert_eq!(
        others.iter().filter(|s| **s == HostState::Up).count(),
        2,
        "the other servers stay up: {others:?}"
    );
    let retries_down = relay.snapshot().relays[0].retries;
    for n in 0..20 {
        session(proxy, target, 2_000_000 + n)
            .await
            .expect("session after the check noticed");
    }
    let mark = done_after.load(Ordering::SeqCst);
    wait_until("more background sessions after the check noticed", || {
        done_after.load(Ordering::SeqCst) >= mark + 20
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let first_error = load.await.expect("load task");
    assert_eq!(
        failed_after.load(Ordering::SeqCst),
        0,
        "background sessions started after the shutdown failed: first error {first_error:?}"
    );
    // Once the host is down, selection skips it: no connect to it is tried any more. (The
    // background sessions above count too, so any attempt at the dead host shows here.)
    assert_eq!(relay.snapshot().relays[0].retries, retries_down);
    assert_eq!(relay.snapshot().relays[0].sessions_failed, 0);

    relay.shutdown(Duration::from_secs(1)).await;
    for (h, _) in servers {
        h.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_rules_block_is_down_under_check_socks_and_up_under_check_tcp() {
    let target = echo_server("127.0.0.1").await;
    let (blocking, bport) = socks_server("127.0.0.5", "block").await;
    let (working, wport) = socks_server("127.0.0.6", "pass").await;
    let text = format!(
        "interval 1\ntimeout 900\n\
         table <bysocks> {{ 127.0.0.5 port {bport}, 127.0.0.6 port {wport} }}\n\
         table <bytcp> {{ 127.0.0.5 port {bport}, 127.0.0.6 port {wport} }}\n\
         relay \"socks-checked\" {{\n listen on 127.0.0.1 port 1\n\
         forward to <bysocks> port 1080 mode roundrobin check socks\n}}\n\
         relay \"tcp-checked\" {{\n listen on 127.0.0.1 port 1\n\
         forward to <bytcp> port 1081 mode roundrobin check tcp\n}}\n"
    );
    let relay = relay_from(&text).await;
    wait_until("first checks done", || {
        let s = relay.snapshot();
        s.tables
            .iter()
            .all(|t| t.hosts.iter().all(|h| h.state != HostState::Unknown))
    })
    .await;
    assert_eq!(
        states(&relay, "bysocks:1080"),
        [HostState::Down, HostState::Up],
        "check socks: the blocking server is down, the working one up"
    );
    assert_eq!(
        states(&relay, "bytcp:1081"),
        [HostState::Up, HostState::Up],
        "check tcp: both accept TCP"
    );
    let err = relay
        .snapshot()
        .table("bysocks:1080")
        .and_then(|t| t.hosts.first().and_then(|h| h.last_result.clone()))
        .unwrap_or_default();
    assert!(
        err.contains("02"),
        "the check names the SOCKS refusal: {err}"
    );

    // Traffic agrees: every session through the socks-checked relay lands on the working
    // server; round robin through the tcp-checked relay reaches the blocking one too.
    let socks_checked = listen_addr(&relay, "socks-checked");
    for n in 0..6 {
        session(socks_checked, target, n)
            .await
            .expect("socks-checked relay avoids the blocking server");
    }
    let tcp_checked = listen_addr(&relay, "tcp-checked");
    let mut refused = 0;
    for n in 0..6 {
        if session(tcp_checked, target, n).await.is_err() {
            refused += 1;
        }
    }
    assert!(
        refused > 0,
        "round robin over check tcp never hit the blocking server"
    );

    relay.shutdown(Duration::from_secs(1)).await;
    blocking.shutdown(Duration::from_secs(1)).await;
    working.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_v2_relay_with_socks_and_tcp_checks_keeps_proxy_protocol_servers_up_and_quiet() {
    let target = echo_server("127.0.0.1").await;
    let dir = temp_dir("cluster-proxy-v2");
    let mut servers = Vec::new();
    for ip in ["127.0.0.7", "127.0.0.8"] {
        let log = dir.join(format!("{ip}.log"));
        let text = format!(
            "logoutput: {}\ninternal: {ip} port = 0\nexternal: {ip}\nsocksmethod: none\n\
             hasocks.proxyprotocol.from: 127.0.0.0/8\n\
             client pass {{ from: 0/0 to: 0/0 log: error connect }}\n\
             socks pass {{ from: 0/0 to: 0/0 log: error connect }}\n",
            log.display()
        );
        let (h, port) = start_server(&text).await;
        servers.push((h, port, log));
    }
    let (p7, p8) = (servers[0].1, servers[1].1);
    let text = format!(
        "interval 1\ntimeout 900\n\
         table <bysocks> {{ 127.0.0.7 port {p7}, 127.0.0.8 port {p8} }}\n\
         table <bytcp> {{ 127.0.0.7 port {p7}, 127.0.0.8 port {p8} }}\n\
         relay \"socks-checked\" {{\n listen on 127.0.0.1 port 1\n send proxy-v2\n\
         forward to <bysocks> port 1080 mode loadbalance check socks\n}}\n\
         relay \"tcp-checked\" {{\n listen on 127.0.0.1 port 1\n send proxy-v2\n\
         forward to <bytcp> port 1081 mode loadbalance check tcp\n}}\n"
    );
    let relay = relay_from(&text).await;
    // Two rounds of checks of each kind, so that a noisy check would have logged by now.
    wait_until("every host up under both checks, checked twice", || {
        relay.snapshot().tables.iter().all(|t| {
            t.hosts
                .iter()
                .all(|h| h.state == HostState::Up && h.checks >= 2)
        })
    })
    .await;

    // A client from 127.0.0.9 gets through both relays, and the server sees 127.0.0.9.
    for name in ["socks-checked", "tcp-checked"] {
        let s = hasocks_test_support::connect_from(
            std::net::Ipv4Addr::new(127, 0, 0, 9),
            listen_addr(&relay, name),
        )
        .await
        .expect("connect to the relay");
        session_over(s, target, 7)
            .await
            .expect("session through the relay");
    }
    let logs: String = servers
        .iter()
        .map(|(_, _, log)| std::fs::read_to_string(log).unwrap_or_default())
        .collect();
    assert!(
        logs.matches("client 127.0.0.9:").count() >= 2,
        "the servers saw the original client: {logs}"
    );
    for noise in ["bad PROXY header", "negotiation failed"] {
        assert!(
            !logs.contains(noise),
            "checks left \"{noise}\" in the logs: {logs}"
        );
    }

    relay.shutdown(Duration::from_secs(1)).await;
    for (h, _, _) in servers {
        h.shutdown(Duration::from_secs(1)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

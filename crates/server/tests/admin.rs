//! The server's admin listener: `/metrics` counts what the test did (sessions by version and
//! command, blocks by rule, negotiation and connect failures, bytes, UDP) and passes
//! promtool, also when scraped under load; the page and JSON show listeners, sessions and
//! recent blocks; `/ready` answers.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use hasocks_server::admin_source::ServerAdmin;
use hasocks_server::ServerHandle;
use hasocks_socks_wire::TargetAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// A server passing everything but targets on port 9 (socks rule 1 blocks them).
async fn server_with_admin() -> (Arc<ServerHandle>, SocketAddr, hasocks_admin::AdminHandle) {
    let text = "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nsocksmethod: none\n\
                client pass { from: 0/0 to: 0/0 }\n\
                socks block { from: 0/0 to: 0/0 port = 9 }\n\
                socks pass { from: 0/0 to: 0/0 }\n";
    let (h, proxy) = start(text).await;
    let h = Arc::new(h);
    let a = hasocks_admin::start(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(ServerAdmin::new(h.clone())),
        hasocks_admin::Limits::default(),
    )
    .expect("admin");
    (h, proxy, a)
}

async fn connect_echo(proxy: SocketAddr, target: SocketAddr, payload: usize) {
    let (mut s, rep, _) = socks5(proxy, &request_ip(1, target)).await;
    assert_eq!(rep, 0);
    let out = vec![3u8; payload];
    s.write_all(&out).await.unwrap();
    let mut back = vec![0u8; payload];
    s.read_exact(&mut back).await.unwrap();
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_clients_did_and_pass_promtool_under_load() {
    let (h, proxy, a) = server_with_admin().await;
    let target = echo_server("127.0.0.1").await;

    // Load while scraping.
    let load: Vec<_> = (0..20)
        .map(|_| tokio::spawn(async move { connect_echo(proxy, target, 100).await }))
        .collect();
    let (code, during) = http_get(a.local_addr(), "/metrics").await.expect("scrape");
    assert_eq!(code, 200);
    for l in load {
        l.await.unwrap();
    }
    assert_promtool_accepts(&during, "a scrape under load");

    // Then exactly: 5 more CONNECTs of 1000 bytes, 2 blocked requests (rule 1), 1 connect
    // refused (reply 05), 1 bad version, 1 SOCKS4 CONNECT, and a UDP association of 3
    // datagrams and one from a wrong source.
    for _ in 0..5 {
        connect_echo(proxy, target, 1000).await;
    }
    for _ in 0..2 {
        let (_, rep, _) = socks5(proxy, &request_ip(1, "127.0.0.1:9".parse().unwrap())).await;
        assert_eq!(rep, 2);
    }
    let dead = closed_port().await;
    let (_, rep, _) = socks5(proxy, &request_ip(1, dead)).await;
    assert_eq!(rep, 5);
    let mut bad = TcpStream::connect(proxy).await.unwrap();
    bad.write_all(&[7, 7, 7]).await.unwrap();
    let _ = read_to_eof(&mut bad).await;
    let SocketAddr::V4(t4) = target else {
        unreachable!()
    };
    let mut v4 = TcpStream::connect(proxy).await.unwrap();
    v4.write_all(&socks4_request(1, t4)).await.unwrap();
    assert_eq!(read_v4_reply(&mut v4).await.0, 90);
    v4.write_all(b"abcd").await.unwrap();
    let mut back = [0u8; 4];
    v4.read_exact(&mut back).await.unwrap();
    drop(v4);
    let (echo, _) = udp_echo_server("127.0.0.1").await;
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (ctl, rep, bnd) = udp_associate(proxy, c.local_addr().unwrap()).await;
    assert_eq!(rep, 0);
    // The stranger's datagram first: the association's socket reads in order, so it was
    // handled by the time the client's three echoes are back.
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    stranger
        .send_to(&udp_wrap(0, TargetAddr::Ip(echo), b"x"), bnd)
        .await
        .unwrap();
    for i in 0..3u8 {
        c.send_to(&udp_wrap(0, TargetAddr::Ip(echo), &[i; 10]), bnd)
            .await
            .unwrap();
        udp_recv_unwrap(&c).await;
    }
    drop(ctl);
    assert!(wait_for(|| h.active_sessions() == 0, DEADLINE).await);

    let (_, m) = http_get(a.local_addr(), "/metrics").await.expect("scrape");
    let v = |s: &str| metric(&m, s).unwrap_or(-1.0);
    let s5 = "hasocks_server_sessions_total{version=\"socks5\",command=\"connect\"}";
    assert_eq!(v(s5), 20.0 + 5.0 + 1.0, "{m}");
    assert_eq!(
        v("hasocks_server_sessions_total{version=\"socks4\",command=\"connect\"}"),
        1.0
    );
    assert_eq!(
        v("hasocks_server_sessions_total{version=\"socks5\",command=\"udpassociate\"}"),
        1.0
    );
    assert_eq!(
        v("hasocks_server_current_sessions{version=\"socks5\",command=\"connect\"}"),
        0.0
    );
    assert_eq!(
        v("hasocks_server_blocks_total{kind=\"socks\",rule=\"1\"}"),
        2.0
    );
    assert_eq!(
        v("hasocks_server_connect_failures_total{reply=\"05\"}"),
        1.0
    );
    assert_eq!(
        v("hasocks_server_negotiation_failures_total{reason=\"bad_version\"}"),
        1.0
    );
    assert_eq!(
        v("hasocks_server_upload_bytes_total"),
        20.0 * 100.0 + 5.0 * 1000.0 + 4.0
    );
    assert_eq!(
        v("hasocks_server_download_bytes_total"),
        20.0 * 100.0 + 5.0 * 1000.0 + 4.0
    );
    assert_eq!(
        v("hasocks_server_udp_datagrams_total{direction=\"up\"}"),
        3.0
    );
    assert_eq!(
        v("hasocks_server_udp_datagrams_total{direction=\"down\"}"),
        3.0
    );
    assert_eq!(
        v("hasocks_server_udp_payload_bytes_total{direction=\"up\"}"),
        30.0
    );
    assert_eq!(
        v("hasocks_server_udp_drops_total{reason=\"wrong_source\"}"),
        1.0
    );
    assert_eq!(v("hasocks_server_connections_accepted_total"), 31.0);
    assert!(v("process_open_fds") > 0.0);
    assert_promtool_accepts(&m, "the scrape");

    let (code, page) = http_get(a.local_addr(), "/").await.expect("page");
    assert_eq!(code, 200);
    assert!(
        page.contains(&format!("<td>{proxy}</td>")),
        "listener on the page"
    );
    assert!(
        page.contains("<td>socks5/connect</td>"),
        "sessions by command"
    );
    assert!(
        page.contains("<td>socks rule 1</td><td>127.0.0.1:"),
        "recent blocks: {page}"
    );
    let (_, json) = http_get(a.local_addr(), "/status.json")
        .await
        .expect("json");
    let j: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(j["recent_blocks"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        http_get(a.local_addr(), "/ready").await.map(|r| r.0),
        Some(200)
    );
}

/// The legend's peak of `series` on `page` (0 when it is not drawn).
fn peak(page: &str, series: &str) -> f64 {
    let tag = format!("data-series=\"{series}\" data-peak=\"");
    page.split(&tag)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_charts_sessions_errors_and_bytes_after_a_short_load() {
    let text = "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nsocksmethod: none\n\
                client pass { from: 0/0 to: 0/0 }\nsocks pass { from: 0/0 to: 0/0 }\n";
    let (h, proxy) = start(text).await;
    let h = Arc::new(h);
    let every = std::time::Duration::from_millis(20);
    let a = hasocks_admin::start_sampling_every(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(ServerAdmin::new(h.clone())),
        hasocks_admin::Limits::default(),
        every,
    )
    .expect("admin");
    let target = echo_server("127.0.0.1").await;
    let dead = closed_port().await;

    let (_, before) = http_get(a.local_addr(), "/").await.expect("page");
    assert!(before.contains("<h2>last 18 seconds</h2>"), "{before}");
    assert!(
        !before.contains("data-chart=\"hosts\""),
        "a server has no host strips"
    );

    let end = tokio::time::Instant::now() + DEADLINE;
    let page = loop {
        // Sessions that move bytes, and a connect that fails (an error).
        for _ in 0..5 {
            connect_echo(proxy, target, 2000).await;
        }
        let (_, rep, _) = socks5(proxy, &request_ip(1, dead)).await;
        assert_eq!(rep, 5);
        let (_, page) = http_get(a.local_addr(), "/").await.expect("page");
        if ["sessions", "errors", "up", "down"]
            .iter()
            .all(|s| peak(&page, s) > 0.0)
        {
            break page;
        }
        assert!(tokio::time::Instant::now() < end, "no data charted: {page}");
        tokio::time::sleep(every).await;
    };
    assert!(page.contains("<polyline class=\"series\" data-series=\"sessions\""));
    assert!(
        page.find("data-chart=\"sessions\"") < page.find("<h2>listeners</h2>"),
        "the charts come first"
    );
    assert!(!page.contains("<script"));
}

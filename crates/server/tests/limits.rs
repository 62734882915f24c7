//! `session.max`, `session.state.*`, `session.throttle` and `bandwidth:` end to end: the
//! refused session gets REP 02 and Dante's message, slots come back when sessions end,
//! state survives a reload of an unchanged rule, and a rule's rate holds within 10%.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

fn conf_with(rule_body: &str, log: &std::path::Path) -> String {
    format!(
        "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nsocksmethod: none\nlogoutput: {}\n\
         client pass {{ from: 0/0 to: 0/0 }}\nsocks pass {{\nfrom: 0/0 to: 0/0\n{rule_body}\n}}\n",
        log.display()
    )
}

fn log_path(tag: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("hasocks-limits-{tag}-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

async fn connect_from(src: &str, proxy: SocketAddr, target: SocketAddr) -> (TcpStream, u8) {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(format!("{src}:0").parse().unwrap()).unwrap();
    let mut s = sock.connect(proxy).await.unwrap();
    assert_eq!(greet(&mut s).await, 0);
    s.write_all(&request_ip(1, target)).await.unwrap();
    let (rep, _) = read_reply(&mut s).await;
    (s, rep)
}

#[tokio::test]
async fn session_max_refuses_the_extra_session_with_rep_2_until_one_ends() {
    let log = log_path("max");
    let (h, proxy) = start(&conf_with("session.max: 2", &log)).await;
    let echo = echo_server("127.0.0.1").await;
    let (mut a, rep) = connect_from("127.0.0.1", proxy, echo).await;
    assert_eq!(rep, 0);
    let (_b, rep) = connect_from("127.0.0.2", proxy, echo).await;
    assert_eq!(rep, 0);
    let (_c, rep) = connect_from("127.0.0.3", proxy, echo).await;
    assert_eq!(rep, 2, "the third concurrent session is not allowed");
    let text = wait_for_text(&log, "session limit reached").await;
    assert!(
        text.contains("session limit reached (2/2 slots in use)"),
        "{text}"
    );
    assert_echo(&mut a, b"still open").await;
    drop(a);
    // The slot comes back when the first session is gone.
    let mut ok = false;
    let end = Instant::now() + Duration::from_secs(5);
    while !ok && Instant::now() < end {
        ok = connect_from("127.0.0.3", proxy, echo).await.1 == 0;
        if !ok {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(ok, "a session fits again after one ended");
    drop(h);
}

#[tokio::test]
async fn state_max_counts_each_client_address_apart() {
    let log = log_path("state");
    let (_h, proxy) = start(&conf_with(
        "session.state.key: from\nsession.state.max: 1",
        &log,
    ))
    .await;
    let echo = echo_server("127.0.0.1").await;
    let (_a, rep) = connect_from("127.0.0.1", proxy, echo).await;
    assert_eq!(rep, 0);
    let (_b, rep) = connect_from("127.0.0.1", proxy, echo).await;
    assert_eq!(rep, 2);
    let (_c, rep) = connect_from("127.0.0.2", proxy, echo).await;
    assert_eq!(rep, 0);
    let text = wait_for_text(&log, "per-key").await;
    assert!(
        text.contains("per-key session limit reached (1/1 slot in use)"),
        "{text}"
    );
}

#[tokio::test]
async fn throttle_admits_n_sessions_per_window() {
    let log = log_path("throttle");
    let (_h, proxy) = start(&conf_with("session.throttle: 2/3600", &log)).await;
    let echo = echo_server("127.0.0.1").await;
    for _ in 0..2 {
        assert_eq!(connect_from("127.0.0.1", proxy, echo).await.1, 0);
    }
    assert_eq!(connect_from("127.0.0.1", proxy, echo).await.1, 2);
    let text = wait_for_text(&log, "rate limit").await;
    assert!(
        text.contains(
            "session rate limit reached (already accepted 2 new clients during the last 3600s."
        ),
        "{text}"
    );
}

#[tokio::test]
async fn client_rule_session_max_closes_the_extra_connection() {
    let log = log_path("client");
    let text = format!(
        "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nsocksmethod: none\nlogoutput: {}\n\
         client pass {{\nfrom: 0/0 to: 0/0\nsession.max: 1\n}}\nsocks pass {{ from: 0/0 to: 0/0 }}\n",
        log.display()
    );
    let (_h, proxy) = start(&text).await;
    let echo = echo_server("127.0.0.1").await;
    let (_a, rep) = connect_from("127.0.0.1", proxy, echo).await;
    assert_eq!(rep, 0);
    let mut b = TcpStream::connect(proxy).await.unwrap();
    let _ = b.write_all(&[5, 1, 0]).await;
    assert!(read_to_eof(&mut b).await.is_empty());
    assert!(wait_for_text(&log, "block(1) client")
        .await
        .contains("session limit reached (1/1 slot in use)"));
}

#[tokio::test]
async fn reload_keeps_the_count_of_an_unchanged_rule_and_resets_a_changed_one() {
    let log = log_path("reload");
    let text = conf_with("session.max: 1", &log);
    let (h, proxy) = start(&text).await;
    let echo = echo_server("127.0.0.1").await;
    let (_a, rep) = connect_from("127.0.0.1", proxy, echo).await;
    assert_eq!(rep, 0);
    let same = hasocks_conf::sockd::parse(&text, std::path::Path::new("t")).unwrap();
    h.reload(same).await.unwrap();
    assert_eq!(
        connect_from("127.0.0.1", proxy, echo).await.1,
        2,
        "still full"
    );
    let changed = hasocks_conf::sockd::parse(
        &conf_with("session.max: 2", &log),
        std::path::Path::new("t"),
    )
    .unwrap();
    h.reload(changed).await.unwrap();
    assert_eq!(
        connect_from("127.0.0.1", proxy, echo).await.1,
        0,
        "a new rule starts empty"
    );
}

/// A target that writes zeros as fast as it can to whoever connects.
async fn source_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let buf = vec![0u8; 64 * 1024];
                while s.write_all(&buf).await.is_ok() {}
            });
        }
    });
    a
}

/// Bytes per second read by `sessions` downloads under one rule over `window`.
async fn measured_rate(
    proxy: SocketAddr,
    target: SocketAddr,
    sessions: usize,
    window: Duration,
) -> f64 {
    let total = Arc::new(AtomicU64::new(0));
    let mut streams = Vec::new();
    for _ in 0..sessions {
        let (s, rep) = connect_from("127.0.0.1", proxy, target).await;
        assert_eq!(rep, 0);
        streams.push(s);
    }
    let start = Instant::now();
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            let total = total.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let end = start + window;
                while let Ok(Ok(n)) = tokio::time::timeout_at(end.into(), s.read(&mut buf)).await {
                    if n == 0 {
                        break;
                    }
                    total.fetch_add(n as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    total.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

#[tokio::test]
async fn bandwidth_is_shared_by_the_rules_sessions_within_ten_percent() {
    let rate = 2_000_000.0;
    let log = log_path("bw");
    let (_h, proxy) = start(&conf_with("bandwidth: 2000000", &log)).await;
    let src = source_server().await;
    let got = measured_rate(proxy, src, 3, Duration::from_secs(5)).await;
    let err = (got - rate).abs() / rate;
    assert!(
        err < 0.10,
        "measured {got:.0} B/s for a rule of {rate} B/s ({:.1}% off)",
        err * 100.0
    );
}

#[tokio::test]
async fn bandwidth_holds_for_udp_associations() {
    let rate = 1_000_000.0;
    let log = log_path("bwudp");
    let (_h, proxy) = start(&conf_with("bandwidth: 1000000", &log)).await;
    let (echo, seen) = udp_echo_server("127.0.0.1").await;
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_ctl, rep, bnd) = udp_associate(proxy, client.local_addr().unwrap()).await;
    assert_eq!(rep, 0);
    client.connect(bnd).await.unwrap();
    let dg = udp_wrap(0, hasocks_socks_wire::TargetAddr::Ip(echo), &[7u8; 1000]);
    let window = Duration::from_secs(4);
    let start = Instant::now();
    let end = start + window;
    let mut back = 0u64;
    let mut buf = vec![0u8; 4096];
    // Offer about twice the rate; what crosses is what the rule lets through.
    let mut next = Instant::now();
    while Instant::now() < end {
        if Instant::now() >= next {
            for _ in 0..20 {
                let _ = client.try_send(&dg);
            }
            next += Duration::from_millis(10);
        }
        let wait = next.min(end);
        if let Ok(Ok(n)) = tokio::time::timeout_at(wait.into(), client.recv(&mut buf)).await {
            back += (n.saturating_sub(10)) as u64;
        }
    }
    // Both directions count: what reached the target and what came back.
    let up: usize = seen.lock().unwrap().iter().map(Vec::len).sum();
    let got = (up as u64 + back) as f64 / start.elapsed().as_secs_f64();
    let err = (got - rate).abs() / rate;
    assert!(
        err < 0.10,
        "measured {got:.0} B/s for a rule of {rate} B/s ({:.1}% off)",
        err * 100.0
    );
}

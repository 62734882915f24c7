//! The relay's admin listener: `/metrics` counts what a test did and passes promtool, `/ready`
//! follows the last host, the HTML page and JSON show every host, and a flood of idle admin
//! connections leaves the data path serving.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One session: id byte, then `n` bytes echoed.
async fn echo_session(relay: std::net::SocketAddr, n: usize) -> Option<u8> {
    let mut s = connect_from(client(1), relay).await.ok()?;
    let mut id = [0u8; 1];
    s.read_exact(&mut id).await.ok()?;
    let out = vec![7u8; n];
    s.write_all(&out).await.ok()?;
    let mut back = vec![0u8; n];
    s.read_exact(&mut back).await.ok()?;
    Some(id[0])
}

fn series(name: &str, host: &str) -> String {
    format!("hasocks_{name}{{table=\"pool:1\",host=\"{host}\"}}")
}

async fn scrape(a: &hasocks_admin::AdminHandle) -> String {
    let (code, body) = http_get(a.local_addr(), "/metrics").await.expect("scrape");
    assert_eq!(code, 200);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_sessions_bytes_and_a_killed_hosts_failed_connects_and_pass_promtool() {
    let mut b = [id_backend(1).await, id_backend(2).await];
    let (h, a) = relay_with_admin(&[b[0].port(), b[1].port()]).await;
    let relay = addr_of(&h);
    let hosts = [
        format!("127.0.0.1:{}", b[0].port()),
        format!("127.0.0.1:{}", b[1].port()),
    ];

    // Under load: scrapes while 20 clients run sessions pass promtool.
    let load: Vec<_> = (0..20)
        .map(|_| tokio::spawn(async move { echo_session(relay, 100).await }))
        .collect();
    let during = scrape(&a).await;
    for l in load {
        assert!(l.await.unwrap().is_some());
    }
    assert_promtool_accepts(&during, "a scrape under load");

    // Exactly 10 more sessions of 1000 bytes, spread by round robin.
    for _ in 0..10 {
        echo_session(relay, 1000).await.expect("session");
    }
    let m = scrape(&a).await;
    let count = |name: &str, host: &str| metric(&m, &series(name, host)).unwrap_or(-1.0);
    let sessions: f64 = hosts
        .iter()
        .map(|x| count("relay_host_sessions_total", x))
        .sum();
    assert_eq!(sessions, 30.0, "{m}");
    let sent: f64 = hosts
        .iter()
        .map(|x| count("relay_host_sent_bytes_total", x))
        .sum();
    assert_eq!(sent, 20.0 * 100.0 + 10.0 * 1000.0);
    let received: f64 = hosts
        .iter()
        .map(|x| count("relay_host_received_bytes_total", x))
        .sum();
    assert_eq!(
        received,
        sent + 30.0,
        "the echo plus each session's id byte"
    );
    assert_eq!(
        metric(
            &m,
            "hasocks_relay_connections_accepted_total{relay=\"socks\"}"
        ),
        Some(30.0)
    );
    assert_eq!(
        metric(
            &m,
            "hasocks_relay_session_duration_seconds_count{relay=\"socks\"}"
        ),
        Some(30.0)
    );
    for x in &hosts {
        assert_eq!(
            metric(
                &m,
                &format!("hasocks_relay_host_state{{table=\"pool:1\",host=\"{x}\",state=\"up\"}}")
            ),
            Some(1.0)
        );
    }

    // Kill host 2 without telling the checker: round robin still tries it, the connect fails
    // and is retried on host 1, which every session then reaches.
    b[1].stop().await;
    for _ in 0..4 {
        assert_eq!(echo_session(relay, 10).await, Some(1));
    }
    h.poll();
    wait_until("host 2 marked down", || {
        h.snapshot().tables[0].hosts[1].state == hasocks_relay::HostState::Down
    })
    .await;
    let m = scrape(&a).await;
    let fails = metric(&m, &series("relay_host_connect_failures_total", &hosts[1])).unwrap_or(0.0);
    assert!(fails >= 1.0, "{m}");
    assert_eq!(
        metric(&m, &series("relay_host_connect_failures_total", &hosts[0])),
        Some(0.0)
    );
    // The same failures by reason: a stopped host refuses; nothing was this machine's fault.
    let by = |host: &str, reason: &str| {
        let name = format!(
            "hasocks_relay_host_connect_errors_total{{table=\"pool:1\",host=\"{host}\",reason=\"{reason}\"}}"
        );
        metric(&m, &name)
    };
    assert_eq!(by(&hosts[1], "refused"), Some(fails), "{m}");
    for reason in ["timeout", "unreachable", "local"] {
        assert_eq!(by(&hosts[1], reason), Some(0.0), "{reason}");
    }
    assert_eq!(by(&hosts[0], "refused"), Some(0.0));
    assert_eq!(
        metric(
            &m,
            &format!(
                "hasocks_relay_host_state{{table=\"pool:1\",host=\"{}\",state=\"down\"}}",
                hosts[1]
            )
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(&m, &series("relay_host_check_success", &hosts[1])),
        Some(0.0)
    );
    assert_eq!(
        metric(&m, "hasocks_relay_table_hosts_up{table=\"pool:1\"}"),
        Some(1.0)
    );
    assert!(metric(&m, "process_open_fds").unwrap_or(0.0) > 0.0);
    assert!(metric(&m, "process_resident_memory_bytes").unwrap_or(0.0) > 0.0);
    assert_promtool_accepts(&m, "the scrape");
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_turns_503_when_the_last_host_dies_and_200_when_it_returns() {
    let mut b = id_backend(1).await;
    let (h, a) = relay_with_admin(&[b.port()]).await;
    assert_eq!(
        http_get(a.local_addr(), "/ready").await.map(|r| r.0),
        Some(200)
    );
    assert_eq!(
        http_get(a.local_addr(), "/live").await.map(|r| r.0),
        Some(200)
    );
    b.stop().await;
    h.poll();
    wait_until("host down", || h.readiness().is_err()).await;
    let (code, body) = http_get(a.local_addr(), "/ready").await.expect("ready");
    assert_eq!(code, 503);
    assert!(body.contains("relay socks: no host up"), "{body}");
    assert_eq!(
        http_get(a.local_addr(), "/live").await.map(|r| r.0),
        Some(200)
    );
    b.restart().await;
    h.poll();
    wait_until("host up again", || h.readiness().is_ok()).await;
    assert_eq!(
        http_get(a.local_addr(), "/ready").await.map(|r| r.0),
        Some(200)
    );
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_json_show_every_host_with_its_state() {
    let mut b = [id_backend(1).await, id_backend(2).await];
    let (h, a) = relay_with_admin(&[b[0].port(), b[1].port()]).await;
    b[1].stop().await;
    h.poll();
    wait_until("host 2 down", || {
        h.snapshot().tables[0].hosts[1].state == hasocks_relay::HostState::Down
    })
    .await;
    let (code, page) = http_get(a.local_addr(), "/").await.expect("page");
    assert_eq!(code, 200);
    assert!(page.contains("http-equiv=\"refresh\"") && !page.contains("<script"));
    for (port, state) in [(b[0].port(), "up"), (b[1].port(), "down")] {
        let cell = format!("<td>127.0.0.1:{port}</td>");
        let row = page
            .lines()
            .find(|l| l.contains(&cell))
            .unwrap_or_else(|| panic!("no row for {port}: {page}"));
        assert!(
            row.contains(&format!("<td class=\"{state}\">{state}</td>")),
            "{row}"
        );
    }
    let (code, json) = http_get(a.local_addr(), "/status.json")
        .await
        .expect("json");
    assert_eq!(code, 200);
    let j: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(j["tables"][0]["hosts"][1]["state"], "down");
    let refused = &j["tables"][0]["hosts"][1]["connect_errors"]["refused"];
    assert!(
        refused.is_u64(),
        "failed connects by reason in the JSON: {json}"
    );
    assert_eq!(
        http_get(a.local_addr(), "/nope").await.map(|r| r.0),
        Some(404)
    );
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_admin_connections_leave_the_data_path_serving() {
    let b = id_backend(1).await;
    let (h, a) = relay_with_admin(&[b.port()]).await;
    let mut idle = Vec::new();
    for _ in 0..1000 {
        match tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(a.local_addr()),
        )
        .await
        {
            Ok(Ok(s)) => idle.push(s),
            _ => break,
        }
    }
    assert_eq!(idle.len(), 1000, "admin connections opened");
    for n in 0..50 {
        assert_eq!(
            echo_session(addr_of(&h), 64).await,
            Some(1),
            "session {n} with {} idle admin connections",
            idle.len()
        );
    }
    // The admin port itself still answers a health check, at once.
    let ready = tokio::time::timeout(Duration::from_secs(1), http_get(a.local_addr(), "/ready"))
        .await
        .ok()
        .flatten();
    assert_eq!(ready.map(|r| r.0), Some(200), "/ready during the flood");
    // And the idle ones are closed at the header timeout.
    let mut closed = 0;
    for s in idle.iter_mut().take(20) {
        let mut b = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(DEADLINE, s.read(&mut b)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 20, "idle admin connections are closed");
    drop(idle);
    h.shutdown(Duration::from_secs(1)).await;
}

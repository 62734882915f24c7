//! Backup tables and the start-up state: hosts start Unknown and take no traffic until their
//! first check; a backup table serves while the primary has no host up, and gives back.

mod common;

use std::time::Duration;

use common::*;
use hasocks_conf::relayd::{Check, Mode};
use hasocks_relay::{HostState, RelayHandle};

#[tokio::test]
async fn backup_table_serves_while_primary_is_down_and_gives_back() {
    let mut primary = id_backend(1).await;
    let backup = id_backend(9).await;
    let cfg = config(
        vec![
            table("main", &[primary.port()]),
            table("spare", &[backup.port()]),
        ],
        vec![relay(vec![
            forward("main", Mode::SourceHash(None), Some(Check::Tcp)),
            forward("spare", Mode::SourceHash(None), Some(Check::Tcp)),
        ])],
    );
    let h = RelayHandle::start(cfg).await.expect("relay");
    assert!(h.wait_ready(DEADLINE).await);
    let addr = addr_of(&h);
    assert_eq!(session_from(client(3), addr).await, Some(1));

    primary.stop().await;
    h.poll();
    wait_until("primary down", || state(&h, "main:1", 0) == HostState::Down).await;
    let retries = h.snapshot().relays[0].retries;
    assert_eq!(session_from(client(3), addr).await, Some(9));
    assert_eq!(
        h.snapshot().relays[0].retries,
        retries,
        "tried the down primary"
    );

    primary.restart().await;
    h.poll();
    wait_until("primary up", || state(&h, "main:1", 0) == HostState::Up).await;
    assert_eq!(session_from(client(3), addr).await, Some(1));
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_session_before_the_first_check_waits_for_its_verdict() {
    let b = id_backend(1).await;
    let flag = std::env::temp_dir().join(format!("relay-test-{}-flag", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let path = script(
        "wait-flag",
        &format!(
            "while [ ! -f '{}' ]; do sleep 0.05; done\nexit 1",
            flag.display()
        ),
    );
    let mut f = forward("pool", Mode::RoundRobin, Some(Check::Script(path.clone())));
    f.timeout_ms = Some(60_000);
    let h = RelayHandle::start(config(
        vec![table("pool", &[b.port()])],
        vec![relay(vec![f])],
    ))
    .await
    .expect("relay");
    let addr = addr_of(&h);

    assert_eq!(state(&h, "pool:1", 0), HostState::Unknown);
    assert!(!h.wait_ready(Duration::from_millis(200)).await);
    // Arrives while the host is unknown; the check passes 300 ms later and serves it.
    let early = tokio::spawn(session_from(client(1), addr));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(state(&h, "pool:1", 0), HostState::Unknown);
    std::fs::write(&flag, b"go").expect("flag");
    assert_eq!(
        early.await.expect("task"),
        Some(1),
        "held until the verdict, then served"
    );
    assert_eq!(state(&h, "pool:1", 0), HostState::Up);
    assert_eq!(h.snapshot().relays[0].sessions_failed, 0);
    let _ = std::fs::remove_file(&flag);
    let _ = std::fs::remove_file(&path);
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_session_before_a_first_check_that_fails_is_refused_after_the_check_timeout() {
    let b = id_backend(1).await;
    let path = script("never-up", "sleep 30\nexit 1");
    let mut f = forward("pool", Mode::RoundRobin, Some(Check::Script(path.clone())));
    f.timeout_ms = Some(800);
    let h = RelayHandle::start(config(
        vec![table("pool", &[b.port()])],
        vec![relay(vec![f])],
    ))
    .await
    .expect("relay");
    let started = std::time::Instant::now();
    assert_eq!(
        session_from(client(1), addr_of(&h)).await,
        None,
        "no host ever up"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "it waited for the check"
    );
    assert_eq!(h.snapshot().relays[0].sessions_failed, 1);
    assert_ne!(state(&h, "pool:1", 0), HostState::Up);
    let _ = std::fs::remove_file(&path);
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn table_without_check_serves_at_once_and_disabled_relay_closes() {
    let b = id_backend(4).await;
    let cfg = config(
        vec![table("pool", &[b.port()])],
        vec![relay(vec![forward("pool", Mode::RoundRobin, None)])],
    );
    let h = RelayHandle::start(cfg.clone()).await.expect("relay");
    assert!(h.wait_ready(Duration::from_secs(1)).await);
    assert_eq!(session_from(client(1), addr_of(&h)).await, Some(4));

    let mut off = cfg;
    off.relays[0].disabled = true;
    let h2 = RelayHandle::start(off)
        .await
        .expect("disabled relay starts");
    assert_eq!(session_from(client(1), addr_of(&h2)).await, None);
    assert_eq!(h2.snapshot().relays[0].sessions_total, 1);
}

#[tokio::test]
async fn bind_error_names_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let mut r = relay(vec![]);
    r.listens[0].port = port;
    let err = RelayHandle::start(config(vec![], vec![r]))
        .await
        .expect_err("port taken");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn worker_threads_share_the_listen_address_and_serve_every_client() {
    let b = id_backend(5).await;
    let mut cfg = config(
        vec![table("pool", &[b.port()])],
        vec![relay(vec![forward("pool", Mode::RoundRobin, None)])],
    );
    cfg.prefork = Some(3);
    let h = RelayHandle::start(cfg.clone()).await.expect("relay");
    assert!(h.wait_ready(DEADLINE).await);
    let addr = addr_of(&h);
    assert_eq!(
        h.listen_addrs().len(),
        1,
        "one address, however many threads"
    );
    for n in 2..42 {
        assert_eq!(session_from(client(n), addr).await, Some(5), "client {n}");
    }
    assert_eq!(h.snapshot().relays[0].sessions_total, 40);
    // A second relay on the same address is refused, not let in to share it.
    cfg.relays[0].listens[0].port = addr.port();
    let err = RelayHandle::start(cfg).await.expect_err("address in use");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_stopped_test_backend_no_longer_listens_and_a_restarted_one_does() {
    let mut b = id_backend(1).await;
    assert!(listening(b.addr), "a running backend is seen listening");
    b.stop().await;
    assert!(!listening(b.addr));
    assert!(
        tokio::net::TcpStream::connect(b.addr).await.is_err(),
        "connect refused"
    );
    b.restart().await;
    assert!(listening(b.addr));
}

//! `relay drain`: the relay says it is not ready (so a route health hook withdraws its route)
//! while it goes on serving every session, old and new; a reload keeps the drain, undrain
//! ends it.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use hasocks_relay::EventKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A session through the relay: its backend's id byte read, the stream kept open.
async fn open_session(relay: SocketAddr) -> (TcpStream, u8) {
    let mut s = connect_from(client(1), relay).await.expect("connect");
    let mut id = [0u8; 1];
    s.read_exact(&mut id).await.expect("backend id");
    (s, id[0])
}

/// Sends `n` bytes on `s` and reads their echo back.
async fn echo(s: &mut TcpStream, n: usize, byte: u8) {
    let out = vec![byte; n];
    s.write_all(&out).await.expect("write");
    let mut back = vec![0u8; n];
    s.read_exact(&mut back).await.expect("echo");
    assert_eq!(back, out);
}

async fn ready(a: &hasocks_admin::AdminHandle) -> (u16, String) {
    http_get(a.local_addr(), "/ready").await.expect("/ready")
}

async fn draining_gauge(a: &hasocks_admin::AdminHandle) -> Option<f64> {
    let (code, m) = http_get(a.local_addr(), "/metrics").await.expect("scrape");
    assert_eq!(code, 200);
    metric(&m, "hasocks_relay_draining")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_relay_is_not_ready_yet_serves_old_and_new_sessions_until_undrained() {
    let b = id_backend(1).await;
    let (h, a) = relay_with_admin(&[b.port()]).await;
    let relay = addr_of(&h);
    let mut events = h.subscribe();
    assert_eq!(ready(&a).await.0, 200);
    assert_eq!(draining_gauge(&a).await, Some(0.0));

    let (mut before, id) = open_session(relay).await;
    assert_eq!(id, 1);
    echo(&mut before, 1000, 1).await;

    assert!(h.set_draining(true));
    assert!(!h.set_draining(true), "a second drain changes nothing");
    let (code, body) = ready(&a).await;
    assert_eq!(code, 503);
    assert!(body.contains("draining"), "{body}");
    assert_eq!(draining_gauge(&a).await, Some(1.0));
    let (_, m) = http_get(a.local_addr(), "/metrics").await.expect("scrape");
    assert_promtool_accepts(&m, "a draining relay's scrape");
    let (_, page) = http_get(a.local_addr(), "/").await.expect("page");
    assert!(
        page.contains("<small class=\"draining\">draining</small>"),
        "{page}"
    );
    match events.recv().await.expect("an event").kind {
        EventKind::RelayDrain { sessions_open } => assert_eq!(sessions_open, 1),
        other => panic!("expected the drain event, got {other:?}"),
    }

    // Both the session opened before and one opened during the drain pass bytes.
    let (mut after, id) = open_session(relay).await;
    assert_eq!(id, 1);
    echo(&mut after, 5000, 2).await;
    echo(&mut before, 5000, 3).await;

    // What a hook reads: draining, and the open sessions it waits to reach 0.
    let s = h.snapshot();
    assert!(s.draining);
    assert_eq!(s.sessions_open, 2);
    let (code, json) = http_get(a.local_addr(), "/status.json")
        .await
        .expect("status.json");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["draining"], serde_json::Value::Bool(true), "{json}");
    assert_eq!(v["sessions_open"], serde_json::json!(2), "{json}");

    drop(after);
    wait_until("one session left", || h.snapshot().sessions_open == 1).await;

    assert!(h.set_draining(false));
    assert_eq!(ready(&a).await.0, 200);
    assert_eq!(draining_gauge(&a).await, Some(0.0));
    assert!(!h.snapshot().draining);
    match events.recv().await.expect("an event").kind {
        EventKind::RelayUndrain { sessions_open } => assert_eq!(sessions_open, 1),
        other => panic!("expected the undrain event, got {other:?}"),
    }
    echo(&mut before, 100, 4).await;
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_drain_and_its_sessions() {
    let b = id_backend(1).await;
    let (h, a) = relay_with_admin(&[b.port()]).await;
    let relay = addr_of(&h);
    let (mut before, _) = open_session(relay).await;
    h.set_draining(true);

    let r = h.reload(pool_config(&[b.port()])).await.expect("reload");
    assert_eq!(r.generation, 2);
    assert!(h.wait_ready(DEADLINE).await, "the hosts have a verdict");
    let (code, body) = ready(&a).await;
    assert_eq!((code, body.contains("draining")), (503, true), "{body}");
    assert!(h.snapshot().draining);
    assert_eq!(draining_gauge(&a).await, Some(1.0));
    echo(&mut before, 1000, 5).await;
    let (mut after, _) = open_session(relay).await;
    echo(&mut after, 1000, 6).await;

    h.set_draining(false);
    assert_eq!(ready(&a).await.0, 200);
    h.shutdown(Duration::from_secs(1)).await;
}

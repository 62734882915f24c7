//! Admission and silent clients: the first-byte wait (no host contacted for a client that says
//! nothing), the per-source cap and the global cap.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use hasocks_conf::relayd::{Mode, RelaydConfig};
use hasocks_relay::RelayHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An echo backend that counts the connections it got.
async fn counting_echo() -> (Backend, Arc<AtomicU64>) {
    let n = Arc::new(AtomicU64::new(0));
    let seen = n.clone();
    let b = Backend::start(serve(move |mut s: TcpStream| {
        seen.fetch_add(1, Ordering::SeqCst);
        async move {
            let (mut r, mut w) = s.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        }
    }))
    .await;
    (b, n)
}

fn cfg(port: u16, tune: impl FnOnce(&mut RelaydConfig)) -> RelaydConfig {
    let mut c = config(
        vec![table("pool", &[port])],
        vec![relay(vec![forward("pool", Mode::RoundRobin, None)])],
    );
    tune(&mut c);
    c
}

/// Whether the relay closes `s` (EOF or reset) within `d`.
async fn closed_within(s: &mut TcpStream, d: Duration) -> bool {
    let mut b = [0u8; 16];
    matches!(
        tokio::time::timeout(d, s.read(&mut b)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// A client session that speaks first: 4 bytes echoed.
async fn speaks_first(src: u8, relay: std::net::SocketAddr) -> Option<TcpStream> {
    let mut s = connect_from(client(src), relay).await.ok()?;
    s.write_all(b"ping").await.ok()?;
    let mut back = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
        .await
        .ok()?
        .ok()?;
    (&back == b"ping").then_some(s)
}

#[tokio::test]
async fn a_silent_client_is_closed_at_the_first_byte_timeout_without_a_host_contacted() {
    let (b, conns) = counting_echo().await;
    let h = RelayHandle::start(cfg(b.port(), |c| c.first_byte_timeout_s = 1))
        .await
        .expect("relay");
    let addr = addr_of(&h);
    let mut silent = connect_from(client(30), addr).await.expect("connect");
    assert!(
        !closed_within(&mut silent, Duration::from_millis(300)).await,
        "closed too early"
    );
    assert!(closed_within(&mut silent, DEADLINE).await, "never closed");
    // One that connects and closes at once costs no host connection either.
    drop(connect_from(client(31), addr).await.expect("connect"));
    wait_until("the silent ones counted", || {
        let r = &h.snapshot().relays[0];
        (r.first_byte_timeouts, r.silent_closed) == (1, 1)
    })
    .await;
    assert_eq!(
        conns.load(Ordering::SeqCst),
        0,
        "a host was contacted for a silent client"
    );
    // A client that speaks first is served, its first bytes intact.
    assert!(speaks_first(32, addr).await.is_some());
    assert_eq!(conns.load(Ordering::SeqCst), 1);
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn one_address_at_its_cap_is_refused_and_other_addresses_are_served() {
    let (b, _) = counting_echo().await;
    let h = RelayHandle::start(cfg(b.port(), |c| c.max_sessions_per_source = Some(3)))
        .await
        .expect("relay");
    let addr = addr_of(&h);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(speaks_first(40, addr).await.expect("within the cap"));
    }
    let mut over = connect_from(client(40), addr).await.expect("tcp connect");
    assert!(
        closed_within(&mut over, DEADLINE).await,
        "the 4th from one address was served"
    );
    assert!(
        speaks_first(41, addr).await.is_some(),
        "another address is served"
    );
    assert_eq!(h.snapshot().admission.refused_per_source, 1);
    drop(held.pop());
    wait_until("a slot of 127.0.0.40 freed", || {
        h.snapshot().admission.in_use <= 2
    })
    .await;
    assert!(speaks_first(40, addr).await.is_some(), "back under its cap");
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn at_the_global_cap_a_connection_waits_in_the_backlog_until_a_slot_frees() {
    let (b, conns) = counting_echo().await;
    let h = RelayHandle::start(cfg(b.port(), |c| c.max_sessions = Some(2)))
        .await
        .expect("relay");
    let addr = addr_of(&h);
    let one = speaks_first(50, addr).await.expect("first");
    let _two = speaks_first(51, addr).await.expect("second");
    assert_eq!(h.snapshot().admission.cap, 2);
    // The third connects (the kernel's backlog) but is not accepted, so not served.
    let mut third = connect_from(client(52), addr).await.expect("tcp connect");
    third.write_all(b"wait").await.expect("write");
    let mut back = [0u8; 4];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read_exact(&mut back)).await;
    assert!(early.is_err(), "served beyond the cap");
    assert_eq!(conns.load(Ordering::SeqCst), 2);
    drop(one);
    tokio::time::timeout(DEADLINE, third.read_exact(&mut back))
        .await
        .expect("served once a slot freed")
        .expect("echo");
    assert_eq!(&back, b"wait");
    assert!(h.snapshot().admission.waits_at_cap >= 1);
    h.shutdown(Duration::from_secs(1)).await;
}

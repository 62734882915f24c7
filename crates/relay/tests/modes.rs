//! Scheduling that depends on run-time state: least-states and hosts disabled by the operator.

mod common;

use std::time::Duration;

use common::*;
use hasocks_conf::relayd::{Check, Mode};
use hasocks_relay::{HostAction, HostState, RelayHandle, Target};
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn least_states_sends_the_next_session_to_the_emptier_host() {
    let backends = [id_backend(1).await, id_backend(2).await];
    let ports: Vec<u16> = backends.iter().map(|b| b.port()).collect();
    let cfg = config(
        vec![table("pool", &ports)],
        vec![relay(vec![forward("pool", Mode::LeastStates, None)])],
    );
    let h = RelayHandle::start(cfg).await.expect("relay");
    let addr = addr_of(&h);

    let mut held = connect_from(client(1), addr).await.expect("connect");
    let mut first = [0u8; 1];
    held.read_exact(&mut first).await.expect("id");
    for _ in 0..3 {
        let other = session_from(client(1), addr).await.expect("session");
        assert_ne!(other, first[0], "went to the host that holds a session");
        wait_until("short session closed", || {
            h.snapshot().relays[0].sessions_open == 1
        })
        .await;
    }
    drop(held);
    wait_until("held session closed", || {
        h.snapshot().relays[0].sessions_open == 0
    })
    .await;
    // Equal counts: table order decides.
    assert_eq!(session_from(client(1), addr).await, Some(1));
}

#[tokio::test]
async fn disabled_host_takes_no_sessions_until_enabled() {
    let one = id_backend_on(client(1), 1).await;
    let two = id_backend_on(client(2), 2).await;
    let mut t = table("pool", &[one.port(), two.port()]);
    t.hosts[1].name = "127.0.0.2".to_string();
    let cfg = config(
        vec![t],
        vec![relay(vec![forward(
            "pool",
            Mode::SourceHash(None),
            Some(Check::Tcp),
        )])],
    );
    let h = RelayHandle::start(cfg).await.expect("relay");
    assert!(h.wait_ready(DEADLINE).await);
    let addr = addr_of(&h);
    let homes: Vec<Option<u8>> = {
        let mut v = Vec::new();
        for n in 10..40u8 {
            v.push(session_from(client(n), addr).await);
        }
        v
    };
    assert!(homes.contains(&Some(2)), "no client on host 2: {homes:?}");

    assert_eq!(
        h.host_action(&Target::parse("127.0.0.2"), HostAction::Disable)
            .unwrap(),
        1
    );
    assert_eq!(state(&h, "pool:1", 1), HostState::Disabled);
    for n in 10..40u8 {
        assert_eq!(session_from(client(n), addr).await, Some(1));
    }
    assert_eq!(
        h.host_action(&Target::parse("127.0.0.2"), HostAction::Enable)
            .unwrap(),
        1
    );
    wait_until("host 2 up again", || {
        state(&h, "pool:1", 1) == HostState::Up
    })
    .await;
    for (i, n) in (10..40u8).enumerate() {
        assert_eq!(
            session_from(client(n), addr).await,
            homes[i],
            "client {n} not home"
        );
    }
    h.shutdown(Duration::from_secs(1)).await;
}

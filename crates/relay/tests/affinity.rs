//! Source-address affinity: a client keeps its host over many sessions, and two relays built
//! from the same config agree on every client's host.

mod common;

use std::time::Duration;

use common::*;
use hasocks_conf::relayd::Mode;
use hasocks_relay::{HostState, RelayHandle};

#[tokio::test]
async fn clients_keep_one_host_and_two_relays_agree() {
    let (_backends, cfg) = three_backends_loadbalanced().await;
    let a = RelayHandle::start(cfg.clone()).await.expect("relay a");
    let b = RelayHandle::start(cfg).await.expect("relay b");
    assert!(a.wait_ready(DEADLINE).await && b.wait_ready(DEADLINE).await);
    let (addr_a, addr_b) = (addr_of(&a), addr_of(&b));
    assert_ne!(addr_a, addr_b);

    let mut used = [0u32; 4];
    for n in 2..=50u8 {
        let first = session_from(client(n), addr_a).await.expect("session");
        for _ in 0..3 {
            assert_eq!(
                session_from(client(n), addr_a).await,
                Some(first),
                "client {n} moved"
            );
        }
        assert_eq!(
            session_from(client(n), addr_b).await,
            Some(first),
            "relays disagree on {n}"
        );
        used[usize::from(first)] += 1;
    }
    assert!(
        used[1..].iter().all(|c| *c > 0),
        "some host got no client: {used:?}"
    );
    a.shutdown(Duration::from_secs(1)).await;
    b.shutdown(Duration::from_secs(1)).await;
}

/// The active-active tier's premise (docs/active-active.md): relays started at different
/// times, one of them reloaded while a host was down and again after it came back, still send
/// every client to the same host as each other and as before the outage.
#[tokio::test]
async fn relays_started_apart_and_reloaded_across_a_host_outage_agree() {
    let (mut backends, cfg) = three_backends_loadbalanced().await;
    let a = RelayHandle::start(cfg.clone()).await.expect("relay a");
    assert!(a.wait_ready(DEADLINE).await);
    let addr_a = addr_of(&a);
    let mut home = Vec::new();
    for n in 2..=40u8 {
        home.push(session_from(client(n), addr_a).await.expect("session"));
    }

    backends[1].stop().await;
    a.poll();
    wait_until("host 2 down on a", || {
        state(&a, "pool:1", 1) == HostState::Down
    })
    .await;
    a.reload(cfg.clone())
        .await
        .expect("reload during the outage");
    // b starts while the host is down, so its first view differs from a's first view.
    let b = RelayHandle::start(cfg.clone()).await.expect("relay b");
    assert!(b.wait_ready(DEADLINE).await);
    let addr_b = addr_of(&b);
    b.poll();
    wait_until("host 2 down on b", || {
        state(&b, "pool:1", 1) == HostState::Down
    })
    .await;
    for (n, id) in (2..=40u8).zip(&home) {
        let (on_a, on_b) = (
            session_from(client(n), addr_a).await,
            session_from(client(n), addr_b).await,
        );
        assert_eq!(on_a, on_b, "relays disagree on {n} during the outage");
        if *id != 2 {
            assert_eq!(on_a, Some(*id), "client {n} moved though its host is up");
        }
    }

    backends[1].restart().await;
    for h in [&a, &b] {
        h.poll();
        wait_until("host 2 up", || state(h, "pool:1", 1) == HostState::Up).await;
    }
    a.reload(cfg).await.expect("reload after the outage");
    for (n, id) in (2..=40u8).zip(&home) {
        assert_eq!(
            session_from(client(n), addr_a).await,
            Some(*id),
            "a moved {n}"
        );
        assert_eq!(
            session_from(client(n), addr_b).await,
            Some(*id),
            "b moved {n}"
        );
    }
    assert!(home.contains(&2), "no client was on host 2: {home:?}");
    a.shutdown(Duration::from_secs(1)).await;
    b.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn round_robin_spreads_one_client_over_hosts() {
    let backends = [id_backend(1).await, id_backend(2).await];
    let ports: Vec<u16> = backends.iter().map(|b| b.port()).collect();
    let cfg = config(
        vec![table("pool", &ports)],
        vec![relay(vec![forward("pool", Mode::RoundRobin, None)])],
    );
    let h = RelayHandle::start(cfg).await.expect("relay");
    let addr = addr_of(&h);
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(session_from(client(1), addr).await.expect("session"));
    }
    assert!(seen.contains(&1) && seen.contains(&2), "{seen:?}");
}

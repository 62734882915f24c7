//! A host failing while sessions run: the connect retry moves new sessions at once, the check
//! then takes the host out, and its clients come back when it returns.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;

use hasocks_relay::{HostState, RelayHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn failed_host_moves_only_its_clients_without_a_failed_session() {
    let (mut backends, cfg) = three_backends_loadbalanced().await;
    let h = RelayHandle::start(cfg).await.expect("relay starts");
    assert!(h.wait_ready(DEADLINE).await);
    let relay_addr = addr_of(&h);

    let mut home = HashMap::new();
    for n in 2..=50u8 {
        let id = session_from(client(n), relay_addr)
            .await
            .expect("session works");
        home.insert(n, id);
    }
    for id in 1..=3u8 {
        assert!(
            home.values().any(|v| *v == id),
            "host {id} got no client: {home:?}"
        );
    }

    // Sessions that stay open across the failure, one per host.
    let mut open = Vec::new();
    for id in 1..=3u8 {
        let n = *home
            .iter()
            .find(|(_, v)| **v == id)
            .expect("client of host")
            .0;
        let mut s = connect_from(client(n), relay_addr).await.expect("connect");
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.expect("id byte");
        assert_eq!(b[0], id);
        open.push((id, s));
    }

    let victim = 2u8;
    backends[1].stop().await;

    // The check has not run (interval 3600 s, no poll): the retry alone saves the sessions.
    assert_eq!(state(&h, "pool:1", 1), HostState::Up);
    for (n, id) in &home {
        let now = session_from(client(*n), relay_addr).await;
        assert!(
            now.is_some(),
            "client {n} failed while host {victim} was down"
        );
        if *id == victim {
            assert_ne!(now, Some(victim));
        } else {
            assert_eq!(now, Some(*id), "client {n} moved though its host is up");
        }
    }
    assert!(h.snapshot().relays[0].retries > 0);

    // Open sessions to the other hosts keep working.
    for (id, s) in open.iter_mut().filter(|(id, _)| *id != victim) {
        s.write_all(b"still").await.expect("write");
        let mut back = [0u8; 5];
        s.read_exact(&mut back)
            .await
            .unwrap_or_else(|e| panic!("host {id} session broke: {e}"));
        assert_eq!(&back, b"still");
    }

    h.poll();
    wait_until("victim marked down", || {
        state(&h, "pool:1", 1) == HostState::Down
    })
    .await;
    let retries = h.snapshot().relays[0].retries;
    for (n, _) in home.iter().filter(|(_, id)| **id == victim) {
        assert!(session_from(client(*n), relay_addr).await.is_some());
    }
    assert_eq!(
        h.snapshot().relays[0].retries,
        retries,
        "a session still tried the down host"
    );

    backends[1].restart().await;
    h.poll();
    wait_until("victim back up", || state(&h, "pool:1", 1) == HostState::Up).await;
    for (n, id) in &home {
        assert_eq!(
            session_from(client(*n), relay_addr).await,
            Some(*id),
            "client {n} not home"
        );
    }
    h.shutdown(Duration::from_secs(1)).await;
}

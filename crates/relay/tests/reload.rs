//! Reload without loss: host states, listeners, placement, open sessions and their bytes
//! carry over; a config that cannot be put into effect is refused whole; drained hosts; the
//! registry of open sessions.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use hasocks_conf::relayd::{Check, Listen, Mode, Relay, RelaydConfig};
use hasocks_relay::{HostAction, HostState, RelayError, RelayHandle, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One relay `socks` over table `pool` of `ports`, `mode`, checked by TCP.
fn one(ports: &[u16], mode: Mode) -> RelaydConfig {
    config(
        vec![table("pool", ports)],
        vec![relay(vec![forward("pool", mode, Some(Check::Tcp))])],
    )
}

fn states(h: &RelayHandle) -> Vec<(u32, HostState)> {
    h.snapshot().tables[0]
        .hosts
        .iter()
        .map(|x| (x.id, x.state))
        .collect()
}

/// A session that stays open: connected, id byte read.
async fn open_session(relay: SocketAddr) -> (TcpStream, u8) {
    let mut s = connect_from(client(1), relay).await.expect("connect");
    let mut id = [0u8; 1];
    s.read_exact(&mut id).await.expect("id byte");
    (s, id[0])
}

#[tokio::test]
async fn a_host_that_stays_keeps_its_state_and_a_new_one_is_checked_at_once() {
    let b = [
        id_backend(1).await,
        id_backend(2).await,
        id_backend(3).await,
    ];
    let h = RelayHandle::start(one(&[b[0].port(), b[1].port()], Mode::RoundRobin))
        .await
        .expect("relay");
    assert!(h.wait_ready(DEADLINE).await);
    let before = states(&h);
    assert_eq!(
        before.iter().map(|s| s.1).collect::<Vec<_>>(),
        [HostState::Up; 2]
    );
    let addr = addr_of(&h);

    let r = h
        .reload(one(
            &[b[0].port(), b[1].port(), b[2].port()],
            Mode::RoundRobin,
        ))
        .await
        .expect("reload");
    assert_eq!(
        (r.generation, r.hosts, r.hosts_new, r.listeners_kept),
        (2, 3, 1, 1)
    );
    // At once, before any new check: the two kept hosts are up, with their ids.
    let after = states(&h);
    assert_eq!(&after[..2], &before[..], "kept hosts keep state and id");
    assert!(after[2].0 > before[1].0, "the new host has a new id");
    // The checks run hourly here: only an immediate round can bring the new host up.
    wait_until("the new host checked at once", || {
        states(&h)[2].1 == HostState::Up
    })
    .await;
    assert_eq!(addr_of(&h), addr, "the listener stays where it was");
    assert!(session_from(client(2), addr).await.is_some());
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_config_that_cannot_be_bound_is_refused_whole_and_the_running_one_stays() {
    let b = [id_backend(1).await, id_backend(2).await];
    let h = RelayHandle::start(one(&[b[0].port()], Mode::RoundRobin))
        .await
        .expect("relay");
    assert!(h.wait_ready(DEADLINE).await);
    let addr = addr_of(&h);
    let before = h.snapshot();

    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("hold a port");
    let busy = held.local_addr().expect("addr").port();
    let mut cfg = one(&[b[1].port()], Mode::Random);
    cfg.relays[0].listens.push(Listen {
        addr: "127.0.0.1".into(),
        port: busy,
    });
    let err = h.reload(cfg).await.expect_err("an address in use");
    assert!(matches!(err, RelayError::Bind { .. }), "{err}");
    assert!(err.to_string().contains(&busy.to_string()), "{err}");

    let after = h.snapshot();
    assert_eq!(after.generation, before.generation);
    assert_eq!(
        after.tables, before.tables,
        "tables and hosts exactly as they were"
    );
    assert_eq!(
        session_from(client(3), addr).await,
        Some(1),
        "old host still serves"
    );
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_failed_prepare_changes_nothing() {
    let b = [id_backend(1).await, id_backend(2).await];
    let h = RelayHandle::start(one(&[b[0].port()], Mode::RoundRobin))
        .await
        .expect("relay");
    assert!(h.wait_ready(DEADLINE).await);
    let before = h.snapshot();

    // Two new addresses: the lower one binds, then the higher one (held here) fails.
    let port = |l: &std::net::TcpListener| l.local_addr().expect("addr").port();
    let mut held: Vec<std::net::TcpListener> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a port"))
        .collect();
    held.sort_by_key(port);
    let busy = held.pop().expect("two");
    let bindable = held.pop().map(|l| port(&l)).expect("two");
    let mut cfg = one(&[b[0].port(), b[1].port()], Mode::RoundRobin);
    for port in [bindable, port(&busy)] {
        cfg.relays[0].listens.push(Listen {
            addr: "127.0.0.1".into(),
            port,
        });
    }
    let err = h.reload(cfg).await.expect_err("an address in use");
    assert!(matches!(err, RelayError::Bind { .. }), "{err}");
    assert_eq!(h.snapshot().tables, before.tables);
    assert!(
        TcpStream::connect(("127.0.0.1", bindable)).await.is_err(),
        "the socket bound by the failed prepare is closed"
    );

    // The host the refused config would have added gets the next id now: none was taken.
    let r = h
        .reload(one(&[b[0].port(), b[1].port()], Mode::RoundRobin))
        .await
        .expect("reload");
    assert_eq!((r.generation, r.hosts_new), (before.generation + 1, 1));
    let ids: Vec<u32> = h.snapshot().tables[0].hosts.iter().map(|x| x.id).collect();
    let last = before.tables[0].hosts.iter().map(|x| x.id).max();
    assert_eq!(ids, [1, last.unwrap_or(0) + 1]);
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn removed_listeners_close_while_their_sessions_run_on_and_added_ones_open() {
    let b = id_backend(7).await;
    let named = |name: &str| Relay {
        name: name.to_string(),
        ..relay(vec![forward("pool", Mode::RoundRobin, None)])
    };
    let cfg = |names: &[&str]| {
        config(
            vec![table("pool", &[b.port()])],
            names.iter().map(|n| named(n)).collect(),
        )
    };
    let h = RelayHandle::start(cfg(&["a", "b"])).await.expect("relay");
    let addr = |name: &str| {
        h.listen_addrs()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a)
    };
    let (a, gone) = (addr("a").expect("a"), addr("b").expect("b"));
    let (mut open, id) = open_session(gone).await;
    assert_eq!(id, 7);

    let r = h.reload(cfg(&["a", "c"])).await.expect("reload");
    assert_eq!(
        (r.listeners_kept, r.listeners_opened, r.listeners_closed),
        (1, 1, 1)
    );
    assert_eq!(addr("a"), Some(a), "a's listener stays");
    let c = addr("c").expect("c listens");
    assert_eq!(session_from(client(4), c).await, Some(7));
    wait_until("b's listener closed", || !listening(gone)).await;
    assert!(TcpStream::connect(gone).await.is_err());
    // The session accepted on b goes on.
    open.write_all(b"still here").await.expect("write");
    let mut back = [0u8; 10];
    open.read_exact(&mut back)
        .await
        .expect("echo after the reload");
    assert_eq!(&back, b"still here");
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn every_client_keeps_its_host_when_its_table_did_not_change() {
    let b = [
        id_backend(1).await,
        id_backend(2).await,
        id_backend(3).await,
    ];
    let ports: Vec<u16> = b.iter().map(|x| x.port()).collect();
    let h = RelayHandle::start(one(&ports, Mode::LoadBalance(None)))
        .await
        .expect("relay");
    assert!(h.wait_ready(DEADLINE).await);
    let addr = addr_of(&h);
    let mut before = Vec::new();
    for n in 10..40 {
        before.push(session_from(client(n), addr).await.expect("session"));
    }
    // Another relay and table come; this relay's table stays as it was.
    let other = id_backend(9).await;
    let mut cfg = one(&ports, Mode::LoadBalance(None));
    cfg.tables.push(table("other", &[other.port()]));
    cfg.relays.push(Relay {
        name: "other".into(),
        ..relay(vec![forward("other", Mode::RoundRobin, None)])
    });
    h.reload(cfg).await.expect("reload");
    let mut after = Vec::new();
    for n in 10..40 {
        after.push(session_from(client(n), addr).await.expect("session"));
    }
    assert_eq!(before, after, "a client moved");
    assert!(
        before.iter().any(|x| *x != before[0]),
        "the clients spread: {before:?}"
    );
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn bytes_of_a_session_open_across_a_reload_count_to_its_host_live_and_at_the_end() {
    let b = id_backend(1).await;
    let h = RelayHandle::start(one(&[b.port()], Mode::RoundRobin))
        .await
        .expect("relay");
    assert!(h.wait_ready(DEADLINE).await);
    let (mut s, _) = open_session(addr_of(&h)).await;
    let mut buf = vec![0u8; 3000];
    s.write_all(&buf[..1000]).await.expect("write");
    s.read_exact(&mut buf[..1000]).await.expect("echo");
    h.reload(one(&[b.port()], Mode::Random))
        .await
        .expect("reload");
    s.write_all(&buf[..2000]).await.expect("write");
    s.read_exact(&mut buf[..2000]).await.expect("echo");
    // Counted while the session is open, through the registry (published just after the
    // bytes are written, so a moment may pass before they show).
    let host = |h: &RelayHandle| h.snapshot().tables[0].hosts[0].clone();
    wait_until("live bytes of the host", || {
        let x = host(&h);
        (x.bytes_out, x.bytes_in) == (3000, 3001)
    })
    .await;
    let live = h.sessions();
    assert_eq!(live.len(), 1);
    assert_eq!((live[0].bytes_out, live[0].bytes_in), (3000, 3001));
    assert_eq!(live[0].client.ip(), std::net::IpAddr::from(client(1)));
    assert_eq!(live[0].backend, b.addr);
    drop(s);
    wait_until("the session closed", || h.sessions().is_empty()).await;
    let hs = host(&h);
    assert_eq!((hs.bytes_out, hs.bytes_in, hs.sessions), (3000, 3001, 1));
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_drained_host_takes_no_new_session_while_its_open_one_completes() {
    let b = [id_backend(1).await, id_backend(2).await];
    let h = RelayHandle::start(one(&[b[0].port(), b[1].port()], Mode::RoundRobin))
        .await
        .expect("relay");
    assert!(h.wait_ready(DEADLINE).await);
    let addr = addr_of(&h);
    let (mut open, id) = open_session(addr).await;
    let port = if id == 1 { b[0].port() } else { b[1].port() };
    let drained = Target::Name(format!("127.0.0.1:{port}"));
    assert_eq!(
        h.host_action(&drained, HostAction::Drain).expect("drain"),
        1
    );
    let open_on = |h: &RelayHandle| {
        h.snapshot().tables[0]
            .hosts
            .iter()
            .find(|x| x.addr.port() == port)
            .map(|x| (x.open, x.draining))
    };
    assert_eq!(open_on(&h), Some((1, true)));
    for n in 0..6 {
        assert_ne!(
            session_from(client(20 + n), addr).await,
            Some(id),
            "drained host got a session"
        );
    }
    open.write_all(b"go on").await.expect("write");
    let mut back = [0u8; 5];
    open.read_exact(&mut back)
        .await
        .expect("the open session goes on");
    drop(open);
    wait_until("the drained host's open count falls to 0", || {
        open_on(&h) == Some((0, true))
    })
    .await;
    assert_eq!(
        h.host_action(&drained, HostAction::Enable).expect("enable"),
        1
    );
    let mut seen = Vec::new();
    for n in 0..4 {
        seen.push(session_from(client(30 + n), addr).await);
    }
    assert!(seen.contains(&Some(id)), "enabled again: {seen:?}");
    assert!(h.host_action(&Target::Id(999), HostAction::Drain).is_err());
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_listen_address_not_yet_on_this_machine_is_bound_with_freebind_unless_refused() {
    let b = id_backend(1).await;
    let away = |freebind: bool| {
        let mut c = one(&[b.port()], Mode::RoundRobin);
        // TEST-NET-3: never an address of this machine (a VRRP address before failover).
        c.relays[0].listens = vec![Listen {
            addr: "203.0.113.77".into(),
            port: 1080,
        }];
        c.freebind = freebind;
        c
    };
    let h = RelayHandle::start(away(true))
        .await
        .expect("bound with IP_FREEBIND");
    assert_eq!(
        h.listen_addrs()[0].1,
        "203.0.113.77:1080".parse::<SocketAddr>().unwrap()
    );
    h.shutdown(Duration::from_secs(1)).await;
    let err = RelayHandle::start(away(false))
        .await
        .expect_err("hasocks.freebind no");
    assert!(matches!(err, RelayError::Bind { .. }), "{err}");
}

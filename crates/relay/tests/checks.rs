//! Health check types against real servers: script exit contract, send/expect, binary, and
//! an end-to-end SOCKS check that sees what a port check cannot.

mod common;

use std::path::PathBuf;

use common::*;
use hasocks_conf::relayd::{Check, Forward, Mode, Table};
use hasocks_relay::{HostState, RelayHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One relay with one forward per (table, check); returns the started relay once checked.
async fn checked(cases: Vec<(Table, Check)>, timeout_ms: u32) -> RelayHandle {
    let mut tables = Vec::new();
    let mut forwards: Vec<Forward> = Vec::new();
    for (t, c) in cases {
        let mut f = forward(&t.name, Mode::RoundRobin, Some(c));
        f.timeout_ms = Some(timeout_ms);
        forwards.push(f);
        tables.push(t);
    }
    let h = RelayHandle::start(config(tables, vec![relay(forwards)]))
        .await
        .expect("relay");
    assert!(
        h.wait_ready(DEADLINE).await,
        "first round of checks did not finish"
    );
    h
}

#[tokio::test]
async fn script_exit_above_zero_is_up_zero_or_killed_is_down() {
    let b = id_backend(1).await;
    let pidfile =
        std::env::temp_dir().join(format!("relay-test-{}-sleeper.pid", std::process::id()));
    let up = script("exit1", "[ \"$1\" = 127.0.0.1 ] || exit 0\nexit 1");
    let down = script("exit0", "exit 0");
    // The script starts a helper and waits for it, like a wrapper around a probe program.
    let hang = script(
        "sleep",
        &format!("sleep 1000 &\necho $! > '{}'\nwait", pidfile.display()),
    );
    let missing = PathBuf::from("/nonexistent/relay-check");
    let h = checked(
        vec![
            (table("up", &[b.port()]), Check::Script(up.clone())),
            (table("down", &[b.port()]), Check::Script(down.clone())),
            (table("hang", &[b.port()]), Check::Script(hang.clone())),
            (table("missing", &[b.port()]), Check::Script(missing)),
        ],
        1000,
    )
    .await;
    assert_eq!(state(&h, "up:1", 0), HostState::Up);
    assert_eq!(state(&h, "down:1", 0), HostState::Down);
    assert_eq!(state(&h, "hang:1", 0), HostState::Down);
    assert_eq!(state(&h, "missing:1", 0), HostState::Down);

    // The hung script and the helper it started were killed at the timeout.
    let pid = std::fs::read_to_string(&pidfile).expect("script wrote its helper's pid");
    let proc_dir = PathBuf::from(format!("/proc/{}", pid.trim()));
    wait_until("hung script killed", || {
        std::fs::read_to_string(proc_dir.join("stat"))
            .map(|s| s.contains(" Z ")) // a zombie is dead too
            .unwrap_or(true)
    })
    .await;
    for p in [up, down, hang, pidfile] {
        let _ = std::fs::remove_file(p);
    }
}

#[tokio::test]
async fn retry_keeps_a_host_until_enough_failures() {
    let b = id_backend(1).await;
    let down = script("exit0-retry", "exit 0");
    let mut t = table("flaky", &[b.port()]);
    t.hosts[0].retry = 1;
    let h = checked(vec![(t, Check::Script(down.clone()))], 1000).await;
    // First failure is tolerated (retry 1): still unknown; the second marks it down.
    assert_eq!(state(&h, "flaky:1", 0), HostState::Unknown);
    h.poll();
    wait_until("down after retry+1 failures", || {
        state(&h, "flaky:1", 0) == HostState::Down
    })
    .await;
    let _ = std::fs::remove_file(down);
}

/// A server that answers `HELO\r\n` with `220 hello\r\n` and a SOCKS5 greeting with `05 00`.
async fn chatty() -> Backend {
    Backend::start(serve(|mut s: TcpStream| async move {
        let mut buf = [0u8; 64];
        let Ok(n) = s.read(&mut buf).await else {
            return;
        };
        let reply: &[u8] = match buf.get(..n) {
            Some(b"HELO\r\n") => b"220 hello\r\n",
            Some([5, 1, 0]) => &[5, 0],
            _ => b"500 what\r\n",
        };
        let _ = s.write_all(reply).await;
        let _ = s.read(&mut buf).await;
    }))
    .await
}

#[tokio::test]
async fn send_expect_matches_a_glob_on_the_reply() {
    let b = chatty().await;
    let send = |expect: &str| Check::Send {
        send: b"HELO\r\n".to_vec(),
        expect: expect.to_string(),
    };
    let h = checked(
        vec![
            (table("good", &[b.port()]), send("220 *")),
            (table("bad", &[b.port()]), send("250*")),
        ],
        1000,
    )
    .await;
    assert_eq!(state(&h, "good:1", 0), HostState::Up);
    assert_eq!(state(&h, "bad:1", 0), HostState::Down);
}

#[tokio::test]
async fn binary_check_compares_the_reply_prefix() {
    let b = chatty().await;
    let bin = |expect: &[u8]| Check::Binary {
        send: vec![5, 1, 0],
        expect: expect.to_vec(),
    };
    let h = checked(
        vec![
            (table("good", &[b.port()]), bin(&[5, 0])),
            (table("bad", &[b.port()]), bin(&[5, 0xff])),
        ],
        1000,
    )
    .await;
    assert_eq!(state(&h, "good:1", 0), HostState::Up);
    assert_eq!(state(&h, "bad:1", 0), HostState::Down);
}

/// A minimal SOCKS5 CONNECT server (no auth, IPv4 targets). `block` = answer every request
/// with 02 (not allowed by ruleset), as a server whose rules forbid forwarding.
async fn socks_server(block: bool) -> Backend {
    Backend::start(serve(move |mut s: TcpStream| async move {
        let mut head = [0u8; 2];
        if s.read_exact(&mut head).await.is_err() {
            return;
        }
        let mut methods = vec![0u8; usize::from(head[1])];
        if s.read_exact(&mut methods).await.is_err() || s.write_all(&[5, 0]).await.is_err() {
            return;
        }
        let mut req = [0u8; 10]; // VER CMD RSV ATYP=1 ADDR(4) PORT(2)
        if s.read_exact(&mut req).await.is_err() || req[3] != 1 {
            return;
        }
        if block {
            let _ = s.write_all(&[5, 2, 0, 1, 0, 0, 0, 0, 0, 0]).await;
            return;
        }
        let target = std::net::SocketAddr::from((
            [req[4], req[5], req[6], req[7]],
            u16::from_be_bytes([req[8], req[9]]),
        ));
        let Ok(mut out) = TcpStream::connect(target).await else {
            let _ = s.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await;
            return;
        };
        if s.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await.is_ok() {
            let _ = tokio::io::copy_bidirectional(&mut s, &mut out).await;
        }
    }))
    .await
}

#[tokio::test]
async fn socks_check_sees_a_blocking_server_that_a_port_check_calls_up() {
    let blocking = socks_server(true).await;
    let working = socks_server(false).await;
    let socks = Check::Socks {
        target: None,
        auth: None,
    };
    let h = checked(
        vec![
            (table("blocked-socks", &[blocking.port()]), socks.clone()),
            (table("blocked-tcp", &[blocking.port()]), Check::Tcp),
            (table("working-socks", &[working.port()]), socks),
        ],
        5000,
    )
    .await;
    assert_eq!(state(&h, "blocked-socks:1", 0), HostState::Down);
    assert_eq!(state(&h, "blocked-tcp:1", 0), HostState::Up);
    assert_eq!(state(&h, "working-socks:1", 0), HostState::Up);
    let snap = h.snapshot();
    let err = snap
        .table("blocked-socks:1")
        .and_then(|t| t.hosts[0].last_result.clone());
    assert!(
        err.is_some_and(|e| e.starts_with("socks")),
        "{:?}",
        snap.table("blocked-socks:1")
    );
}

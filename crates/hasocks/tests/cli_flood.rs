//! `hasocks relay` as an attacker and an unlucky operator meet it: a flood of silent
//! connections, a small descriptor limit, and local ports run out (in a network namespace).
//! The relay must keep serving other clients and never blame a healthy host for its own
//! exhaustion.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, relayd_conf, socks_server, start_relay};
use hasocks_server::ServerHandle;
use hasocks_test_support::blocking::Running;
use hasocks_test_support::{
    connect_from, echo_server, echo_session_from, free_port, temp_dir, wait_for, DEADLINE,
};
use tokio::io::AsyncReadExt;

/// The relay's hosts at `socket`: (state, last change) per host.
fn host_states(socket: &Path) -> Vec<(String, u64)> {
    hasocks_test_support::ctl::hosts(bin(), socket)
        .iter()
        .map(|h| {
            (
                h["state"].as_str().unwrap_or_default().to_string(),
                h["last_change_at_ms"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Waits until the relay reports every host up.
async fn hosts_up(socket: &Path, n: usize) {
    let ok = wait_for(
        || {
            let s = host_states(socket);
            s.len() == n && s.iter().all(|h| h.0 == "up")
        },
        DEADLINE,
    )
    .await;
    assert!(ok, "hosts up: {:?}", host_states(socket));
}

/// An echo target, two SOCKS servers on `ips` and a relay config over them in a fresh
/// directory; each test starts the relay its own way.
struct Pool {
    target: SocketAddr,
    servers: [ServerHandle; 2],
    dir: PathBuf,
    socket: PathBuf,
    conf: PathBuf,
    addr: SocketAddr,
}

impl Pool {
    async fn new(name: &str, ips: [&str; 2], first_byte_s: u32) -> Pool {
        let target = echo_server("127.0.0.1").await;
        let (sa, pa) = socks_server(ips[0]).await;
        let (sb, pb) = socks_server(ips[1]).await;
        let dir = temp_dir(name);
        let socket = dir.join("relay.sock");
        let port = free_port("127.0.0.1");
        let conf = dir.join("relayd.conf");
        let text = relayd_conf(
            &format!("interval 1\ntimeout 800\nhasocks.timeout.firstbyte {first_byte_s}"),
            &socket,
            &[(ips[0], pa), (ips[1], pb)],
            port,
            "forward to <pool> port 1080 mode loadbalance check socks",
        );
        std::fs::write(&conf, text).unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Pool {
            target,
            servers: [sa, sb],
            dir,
            socket,
            conf,
            addr,
        }
    }

    /// Waits until the relay has both hosts up; their states then.
    async fn hosts_up(&self) -> Vec<(String, u64)> {
        hosts_up(&self.socket, 2).await;
        host_states(&self.socket)
    }

    async fn end(self) {
        for s in &self.servers {
            s.shutdown(Duration::from_secs(1)).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_flood_from_one_address_leaves_other_clients_served_and_every_host_up() {
    let _ = hasocks_net::sock::raise_nofile_limit();
    let pool = Pool::new("flood-silent", ["127.0.0.2", "127.0.0.3"], 3).await;
    let (addr, target, socket) = (pool.addr, pool.target, &pool.socket);
    let relay = start_relay(&pool.conf);
    let before = pool.hosts_up().await;

    // The flood: as many silent connections as this process may open, up to 10,000.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1024);
    let want = 10_000.min(limit.saturating_sub(500) as usize);
    let flood_src = Ipv4Addr::new(127, 0, 0, 50);
    let mut flood = Vec::with_capacity(want);
    let started = Instant::now();
    for _ in 0..want {
        match tokio::time::timeout(Duration::from_secs(1), connect_from(flood_src, addr)).await {
            Ok(Ok(s)) => flood.push(s),
            _ => break,
        }
    }
    assert!(
        flood.len() >= want * 9 / 10,
        "opened {} of {want}",
        flood.len()
    );

    // Every one of 20 sessions from another address works during the flood.
    for n in 0..20 {
        echo_session_from(Ipv4Addr::new(127, 0, 0, 60), addr, target)
            .await
            .unwrap_or_else(|e| panic!("session {n} during a flood of {}: {e}", flood.len()));
    }
    let fds = fd_count(relay.pid());
    let status: serde_json::Value = serde_json::from_slice(
        &Command::new(bin())
            .args(["ctl", "--json", "-s"])
            .arg(socket)
            .args(["show", "summary"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let adm = &status["status"]["admission"];
    let cap = adm["cap"].as_u64().unwrap_or(0);
    eprintln!(
        "flood of {} silent connections: relay holds {fds} descriptors; cap {cap} sessions, {} per source, {} refused per source",
        flood.len(),
        adm["per_source"],
        adm["refused_per_source"]
    );
    assert!(adm["in_use"].as_u64().unwrap_or(u64::MAX) <= cap);
    assert!(
        (fds as u64) < 2 * cap + 200,
        "{fds} descriptors for a cap of {cap}"
    );
    assert!(adm["refused_per_source"].as_u64().unwrap_or(0) > 0);

    // The silent ones go at the first-byte timeout (3 s); none reached a host.
    let mut closed = 0;
    for s in &mut flood {
        let mut b = [0u8; 1];
        if matches!(
            tokio::time::timeout(
                Duration::from_secs(8)
                    .saturating_sub(started.elapsed())
                    .max(Duration::from_millis(1)),
                s.read(&mut b)
            )
            .await,
            Ok(Ok(0) | Err(_))
        ) {
            closed += 1;
        }
    }
    assert_eq!(
        closed,
        flood.len(),
        "silent connections still open after the first-byte timeout"
    );
    assert_eq!(host_states(socket), before, "a host changed state");
    drop(relay);
    pool.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_256_descriptors_400_connections_mark_no_host_down_and_service_returns_at_once() {
    let pool = Pool::new("flood-256", ["127.0.0.4", "127.0.0.5"], 5).await;
    let (addr, target, socket) = (pool.addr, pool.target, &pool.socket);
    let relay = Running(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n 256 && exec \"{}\" relay -f \"{}\"",
                bin(),
                pool.conf.display()
            ))
            .stderr(Stdio::null())
            .spawn()
            .expect("relay"),
    );
    let before = pool.hosts_up().await;

    // 400 connections from 20 addresses (so the per-source cap does not stop them): far more
    // than 256 descriptors would hold. They say nothing; checks go on every second meanwhile.
    let mut flood = Vec::new();
    for i in 0..400u32 {
        let src = Ipv4Addr::new(127, 0, 1, 1 + (i % 20) as u8);
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_millis(500), connect_from(src, addr)).await
        {
            flood.push(s);
        }
    }
    assert!(flood.len() >= 300, "opened {}", flood.len());
    tokio::time::sleep(Duration::from_secs(3)).await; // three check rounds under the flood
    assert_eq!(
        host_states(socket),
        before,
        "a host changed state under descriptor exhaustion"
    );
    drop(flood);
    // Service is back within a second of the flood ending.
    let end = Instant::now();
    let mut ok = false;
    while end.elapsed() < Duration::from_secs(1) {
        if echo_session_from(Ipv4Addr::new(127, 0, 0, 61), addr, target)
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
    }
    assert!(ok, "no session within 1 s after the flood ended");
    eprintln!("service back {:?} after the flood ended", end.elapsed());
    assert_eq!(host_states(socket), before);
    drop(relay);
    pool.end().await;
}

/// Runs `cmd` in network namespace `ns`.
fn in_ns(ns: &str, cmd: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(cmd);
    c
}

/// Removes the namespace when the test ends.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_that_find_no_local_port_leave_a_healthy_host_up() {
    if !nix::unistd::getuid().is_root() || Command::new("ip").arg("-V").output().is_err() {
        eprintln!("skipped: needs root and iproute2 for a network namespace");
        return;
    }
    let ns = Netns(format!("hasocks-ports-{}", std::process::id()));
    assert!(Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .unwrap()
        .success());
    assert!(in_ns(&ns.0, &["ip", "link", "set", "lo", "up"])
        .status()
        .unwrap()
        .success());
    // Ports 50000 and 50001 taken by bound sockets from the start (a connect never picks a
    // port a bound socket holds); the range moves onto them once the host is up.
    let _hold = Running(
        in_ns(
            &ns.0,
            &[
                "/usr/bin/python3",
                "-c",
                "import socket,time; s=[socket.socket() for _ in range(2)]; \
                 [x.bind(('127.0.0.1', p)) for x, p in zip(s, (50000, 50001))]; time.sleep(60)",
            ],
        )
        .spawn()
        .unwrap(),
    );
    let dir = temp_dir("ports");
    let sconf = dir.join("sockd.conf");
    std::fs::write(
        &sconf,
        "internal: 127.0.0.1 port = 1090\nexternal: 127.0.0.1\nsocksmethod: none\n\
         client pass { from: 0/0 to: 0/0 }\nsocks pass { from: 0/0 to: 0/0 }\n",
    )
    .unwrap();
    let _server = Running(
        in_ns(&ns.0, &[bin(), "server", "-f", sconf.to_str().unwrap()])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let socket = dir.join("relay.sock");
    let rconf = dir.join("relayd.conf");
    std::fs::write(
        &rconf,
        format!(
            "interval 1\ntimeout 500\nsocket \"{}\"\ntable <pool> {{ 127.0.0.1 }}\n\
             relay \"socks\" {{\n listen on 127.0.0.1 port 1080\n session timeout 0\n\
             forward to <pool> port 1090 mode roundrobin check tcp\n}}\n",
            socket.display()
        ),
    )
    .unwrap();
    let log = dir.join("relay.log");
    let _relay = Running(
        in_ns(&ns.0, &[bin(), "relay", "-f", rconf.to_str().unwrap()])
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    hosts_up(&socket, 1).await;
    // Now every connect of the relay, its checks too, fails with EADDRNOTAVAIL.
    assert!(in_ns(
        &ns.0,
        &["sysctl", "-qw", "net.ipv4.ip_local_port_range=50000 50001"]
    )
    .status()
    .unwrap()
    .success());
    let exhausted = wait_for(
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("this machine failed")
        },
        DEADLINE,
    )
    .await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(exhausted, "the checks never ran out of ports: {text}");
    tokio::time::sleep(Duration::from_secs(3)).await; // more failed checks
    let states = host_states(&socket);
    assert_eq!(states.len(), 1);
    assert_eq!(
        states[0].0, "up",
        "the host was blamed for our ports: {text}"
    );
    assert!(!text.contains("state up -> down"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

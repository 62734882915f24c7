//! `hasocks server` as an attacker meets it: floods of silent connections, from one address
//! and from many, with a small descriptor limit and with the default one. Clients that speak
//! promptly must still be served, sessions already admitted must go on, and the caps must
//! hold (admission: per-source refusals, eviction of the oldest negotiating connections).

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::bin;
use hasocks_test_support::blocking::Running;
use hasocks_test_support::{
    connect_from, echo_server, echo_session_from, free_port, http_get, metric, socks5_connect_from,
    temp_dir, wait_for, DEADLINE,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The floods of 10,000 take most of this process's descriptors: one at a time.
static ONE_BIG_FLOOD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A running server binary (under `ulimit -n` when given) with its admin listener.
struct Server {
    proc: Running,
    socks: SocketAddr,
    admin: SocketAddr,
}

impl Server {
    async fn start(name: &str, nofile: Option<u32>) -> Server {
        let dir = temp_dir(name);
        let (port, admin_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
        let conf = dir.join("sockd.conf");
        std::fs::write(
            &conf,
            format!(
                "internal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\nsocksmethod: none\n\
                 hasocks.admin: 127.0.0.1 port = {admin_port}\n\
                 client pass {{ from: 0/0 to: 0/0 }}\nsocks pass {{ from: 0/0 to: 0/0 }}\n"
            ),
        )
        .unwrap();
        let ulimit = nofile.map_or(String::new(), |n| format!("ulimit -n {n} && "));
        let proc = Running(
            Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "{ulimit}exec \"{}\" server -f \"{}\"",
                    bin(),
                    conf.display()
                ))
                .stderr(Stdio::null())
                .spawn()
                .expect("server"),
        );
        let s = Server {
            proc,
            socks: SocketAddr::from(([127, 0, 0, 1], port)),
            admin: SocketAddr::from(([127, 0, 0, 1], admin_port)),
        };
        let admin = s.admin;
        assert!(
            wait_for(|| hasocks_test_support::listening(admin), DEADLINE).await,
            "server up"
        );
        s
    }

    async fn status(&self) -> serde_json::Value {
        let (_, body) = http_get(self.admin, "/status.json").await.expect("status");
        serde_json::from_str(&body).expect("status json")
    }

    async fn metric(&self, series: &str) -> f64 {
        let (_, body) = http_get(self.admin, "/metrics").await.expect("metrics");
        metric(&body, series).unwrap_or_else(|| panic!("{series} in /metrics"))
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.proc.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

/// `n` connections from `sources` (round robin) that never send a byte. Connections the
/// server closes at once stay in the list too: the client side holds them all. A connect that
/// times out (SYNs dropped while the machine is busy) is tried again; twenty in a row end it.
async fn silent_flood(server: SocketAddr, sources: &[Ipv4Addr], n: usize) -> Vec<TcpStream> {
    let mut flood = Vec::with_capacity(n);
    let mut failed_in_row = 0;
    while flood.len() < n && failed_in_row < 20 {
        let src = sources[flood.len() % sources.len()];
        match tokio::time::timeout(Duration::from_secs(5), connect_from(src, server)).await {
            Ok(Ok(s)) => {
                flood.push(s);
                failed_in_row = 0;
            }
            _ => failed_in_row += 1,
        }
    }
    assert!(flood.len() >= n * 9 / 10, "opened {} of {n}", flood.len());
    flood
}

/// Sessions open through the server: each echoes 8 bytes when asked.
async fn open_sessions(server: SocketAddr, target: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(
            socks5_connect_from(Ipv4Addr::new(127, 0, 0, 70), server, target)
                .await
                .expect("session before the flood"),
        );
    }
    v
}

async fn still_echo(sessions: &mut [TcpStream]) {
    for (i, s) in sessions.iter_mut().enumerate() {
        s.write_all(b"abcdefgh").await.unwrap();
        let mut b = [0u8; 8];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut b))
            .await
            .unwrap_or_else(|_| panic!("admitted session {i} stalled"))
            .unwrap_or_else(|e| panic!("admitted session {i} failed: {e}"));
        assert_eq!(&b, b"abcdefgh");
    }
}

async fn served(server: SocketAddr, target: SocketAddr, from: Ipv4Addr, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        if echo_session_from(from, server, target).await.is_ok() {
            ok += 1;
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_256_descriptors_400_silent_connections_from_one_address_starve_no_one() {
    let _ = hasocks_net::sock::raise_nofile_limit();
    let target = echo_server("127.0.0.1").await;
    let server = Server::start("sflood-256", Some(256)).await;
    let mut admitted = open_sessions(server.socks, target, 3).await;

    let flood = silent_flood(server.socks, &[Ipv4Addr::new(127, 0, 0, 50)], 400).await;
    let other = Ipv4Addr::new(127, 0, 0, 60);
    assert_eq!(
        served(server.socks, target, other, 5).await,
        5,
        "clients served during the flood"
    );
    still_echo(&mut admitted).await;
    let st = server.status().await;
    let a = &st["admission"];
    eprintln!("admission under a flood of {}: {a}", flood.len());
    assert!(a["refused_per_source"].as_u64().unwrap() > 0, "{a}");
    assert!(
        a["negotiating"].as_u64().unwrap()
            <= a["caps"]["negotiating_per_source"].as_u64().unwrap() + 1,
        "one address holds no more than its cap: {a}"
    );
    assert!(
        server
            .metric("hasocks_server_admission_refused_total")
            .await
            > 0.0
    );

    drop(flood);
    let ended = Instant::now();
    let mut whole = false;
    while ended.elapsed() < Duration::from_secs(1) {
        let a = server.status().await["admission"].clone();
        if a["negotiating"] == 0 && served(server.socks, target, other, 1).await == 1 {
            whole = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(whole, "service not whole within 1 s after the flood ended");
    eprintln!("service whole {:?} after the flood ended", ended.elapsed());
    still_echo(&mut admitted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_silent_connections_from_one_address_cost_little_memory_and_no_service() {
    let _one = ONE_BIG_FLOOD.lock().await;
    let limit = hasocks_net::sock::raise_nofile_limit().unwrap_or(1024);
    let target = echo_server("127.0.0.1").await;
    let server = Server::start("sflood-10k", None).await;
    // Idle: after a few sessions have warmed the runtime up.
    assert_eq!(
        served(server.socks, target, Ipv4Addr::new(127, 0, 0, 61), 5).await,
        5
    );
    let idle = server.rss_kib();

    let want = 10_000.min(limit.saturating_sub(500) as usize);
    let flood = silent_flood(server.socks, &[Ipv4Addr::new(127, 0, 0, 51)], want).await;
    assert_eq!(
        served(server.socks, target, Ipv4Addr::new(127, 0, 0, 62), 20).await,
        20,
        "clients served during a flood of {}",
        flood.len()
    );
    let a = server.status().await["admission"].clone();
    let held = a["connections"].as_u64().unwrap();
    let rss = server.rss_kib();
    // Each held connection: its task, a 512-byte read buffer and the socket's user-side
    // state, well under 16 KiB.
    let bound = idle * 3 / 2 + held * 16;
    eprintln!(
        "flood of {}: {held} held, RSS {rss} KiB (idle {idle} KiB, bound {bound} KiB); {a}",
        flood.len()
    );
    assert!(rss <= bound, "RSS {rss} KiB over {bound} KiB");
    assert!(a["refused_per_source"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_fifty_addresses_is_held_at_the_negotiating_cap_and_prompt_clients_get_in() {
    let _one = ONE_BIG_FLOOD.lock().await;
    let limit = hasocks_net::sock::raise_nofile_limit().unwrap_or(1024);
    let target = echo_server("127.0.0.1").await;
    let server = Server::start("sflood-50", None).await;
    let sources: Vec<Ipv4Addr> = (1..=50).map(|i| Ipv4Addr::new(127, 0, 2, i)).collect();
    let want = 10_000.min(limit.saturating_sub(500) as usize);
    let flood = silent_flood(server.socks, &sources, want).await;
    let a = server.status().await["admission"].clone();
    let cap = a["caps"]["negotiating"].as_u64().unwrap();
    eprintln!("flood of {} from 50 addresses: {a}", flood.len());
    assert!(a["negotiating"].as_u64().unwrap() <= cap, "{a}");
    assert!(a["connections"].as_u64().unwrap() <= a["caps"]["total"].as_u64().unwrap());
    assert_eq!(
        served(server.socks, target, Ipv4Addr::new(127, 0, 0, 63), 20).await,
        20,
        "prompt clients served during the flood"
    );
    if flood.len() as u64 > cap {
        assert!(a["evicted"].as_u64().unwrap() > 0, "{a}");
        assert!(
            server
                .metric("hasocks_server_admission_evicted_total")
                .await
                > 0.0
        );
    }
}

//! `hasocks relay` reloaded under load, as an operator would: 50 clients run SOCKS sessions
//! through the relay process while it takes 10 reloads (by `hasocks ctl reload` and by
//! SIGHUP), alternating a mode change and a host swap, with a broken file in the middle.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use server::ServerHandle;
use test_support::blocking::Running;
use test_support::{echo_server, free_port, sockd_conf_on, socks5_connect, temp_dir, wait_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_hasocks")
}

/// A SOCKS server on `ip`, port 0.
async fn socks_server(ip: &str) -> (ServerHandle, u16) {
    let text = sockd_conf_on(ip, "pass", "");
    let cfg = conf::sockd::parse(&text, Path::new("load.conf")).expect("sockd.conf");
    let h = ServerHandle::start(cfg).await.expect("server");
    let port = h.local_addrs()[0].port();
    (h, port)
}

async fn ctl_json(socket: &Path, args: &[&str]) -> serde_json::Value {
    let out = tokio::process::Command::new(bin())
        .arg("ctl")
        .arg("-s")
        .arg(socket)
        .arg("--json")
        .args(args)
        .output()
        .await
        .expect("ctl");
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// (host name, state, id) of every host of the first table.
async fn hosts(socket: &Path) -> Vec<(String, String, u64)> {
    let j = ctl_json(socket, &["show", "hosts"]).await;
    j["status"]["tables"][0]["hosts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| {
                    (
                        h["name"].as_str().unwrap_or_default().to_string(),
                        h["state"].as_str().unwrap_or_default().to_string(),
                        h["id"].as_u64().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The relay config: `hosts` (ip, port) in table <pool>, `mode`.
fn conf(port: u16, socket: &Path, hosts: &[(&str, u16)], mode: &str) -> String {
    let list: Vec<String> = hosts
        .iter()
        .map(|(ip, p)| format!("{ip} port {p}"))
        .collect();
    format!(
        "interval 1\ntimeout 500\nlog state changes\nsocket \"{}\"\n\
         table <pool> {{ {} }}\n\
         relay \"socks\" {{\n listen on 127.0.0.1 port {port}\n session timeout 0\n\
         forward to <pool> port 1080 mode {mode} check tcp\n}}\n",
        socket.display(),
        list.join(", ")
    )
}

/// Counters of the load.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Tally {
    fn fail(&self, what: String, refused: bool) {
        if refused {
            self.refused.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.first_error.lock().unwrap().get_or_insert(what);
    }
}

/// One short session: SOCKS5 CONNECT through the relay, 64 bytes echoed.
async fn short_session(relay: SocketAddr, target: SocketAddr, n: u64, t: &Tally) {
    let mut s = match socks5_connect(relay, target).await {
        Ok(s) => s,
        Err(e) => return t.fail(e.clone(), e.starts_with("connect:")),
    };
    let msg: Vec<u8> = (0..64)
        .map(|i| (n as u8).wrapping_mul(31).wrapping_add(i))
        .collect();
    let mut back = vec![0u8; 64];
    let r = tokio::time::timeout(Duration::from_secs(10), async {
        s.write_all(&msg).await?;
        s.read_exact(&mut back).await
    })
    .await;
    match r {
        Ok(Ok(_)) if back == msg => {
            t.ok.fetch_add(1, Ordering::Relaxed);
        }
        other => t.fail(format!("echo: {other:?}"), false),
    }
}

/// A long session: chunks echoed until `stop`, every byte compared; returns a checksum of
/// what was sent and one of what came back.
async fn long_session(
    relay: SocketAddr,
    target: SocketAddr,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Result<(u64, u64, u64), String> {
    let mut s = socks5_connect(relay, target).await?;
    let (mut sent_sum, mut got_sum, mut bytes) = (0u64, 0u64, 0u64);
    let mut x = seed | 1;
    while !stop.load(Ordering::Relaxed) {
        let chunk: Vec<u8> = (0..1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        s.write_all(&chunk)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut back = vec![0u8; chunk.len()];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut back))
            .await
            .map_err(|_| "echo timed out".to_string())?
            .map_err(|e| format!("read: {e}"))?;
        for (a, b) in chunk.iter().zip(&back) {
            sent_sum = sent_sum.wrapping_mul(131).wrapping_add(u64::from(*a));
            got_sum = got_sum.wrapping_mul(131).wrapping_add(u64::from(*b));
        }
        bytes += chunk.len() as u64;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((sent_sum, got_sum, bytes))
}

struct Lab {
    dir: PathBuf,
    socket: PathBuf,
    file: PathBuf,
    port: u16,
}

impl Lab {
    fn write(&self, hosts: &[(&str, u16)], mode: &str) {
        std::fs::write(&self.file, conf(self.port, &self.socket, hosts, mode)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_reloads_under_load_fail_no_session_refuse_no_connection_and_keep_host_states() {
    let target = echo_server("127.0.0.1").await;
    let (sa, pa) = socks_server("127.0.0.2").await;
    let (sb, pb) = socks_server("127.0.0.3").await;
    let (sc, pc) = socks_server("127.0.0.4").await;
    let dir = temp_dir("cli-reload-load");
    let lab = Lab {
        socket: dir.join("relay.sock"),
        file: dir.join("relayd.conf"),
        port: free_port("127.0.0.1"),
        dir,
    };
    // Two configs alternate: M changes the mode; H swaps host B for host C.
    let m = |lab: &Lab| lab.write(&[("127.0.0.2", pa), ("127.0.0.3", pb)], "roundrobin");
    let h = |lab: &Lab| lab.write(&[("127.0.0.2", pa), ("127.0.0.4", pc)], "loadbalance");
    lab.write(&[("127.0.0.2", pa), ("127.0.0.3", pb)], "loadbalance");
    let proc = Running(
        Command::new(bin())
            .args(["relay", "-f"])
            .arg(&lab.file)
            .stderr(Stdio::null())
            .spawn()
            .expect("relay"),
    );
    let relay = SocketAddr::from(([127, 0, 0, 1], lab.port));
    for _ in 0..200 {
        if hosts(&lab.socket).await.iter().all(|h| h.1 == "up")
            && !hosts(&lab.socket).await.is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let start_hosts = hosts(&lab.socket).await;
    assert!(start_hosts.iter().all(|h| h.1 == "up"), "{start_hosts:?}");
    let a_id = start_hosts[0].2;

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut clients = Vec::new();
    for c in 0..50u64 {
        let (stop, tally) = (stop.clone(), tally.clone());
        clients.push(tokio::spawn(async move {
            let mut n = c * 1_000_000;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                short_session(relay, target, n, &tally).await;
            }
        }));
    }
    let stop_long = Arc::new(AtomicBool::new(false));
    let longs: Vec<_> = (0..4u64)
        .map(|i| tokio::spawn(long_session(relay, target, 0x9e37 + i, stop_long.clone())))
        .collect();

    let pace = |tally: Arc<Tally>| async move {
        let mark = tally.ok.load(Ordering::Relaxed);
        wait_until("sessions flowing", || {
            tally.ok.load(Ordering::Relaxed) >= mark + 100
        })
        .await;
    };
    pace(tally.clone()).await;
    for round in 1..=10u64 {
        if round % 2 == 1 {
            m(&lab)
        } else {
            h(&lab)
        }
        if round % 3 == 0 {
            proc.signal(1);
            let want = round + 1;
            let mut seen = 0;
            for _ in 0..200 {
                seen = ctl_json(&lab.socket, &["show", "summary"]).await["status"]["generation"]
                    .as_u64()
                    .unwrap_or(0);
                if seen >= want {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(seen, want, "SIGHUP reload {round} took effect");
        } else {
            let r = ctl_json(&lab.socket, &["reload"]).await;
            assert_eq!(r["reply"], "reloaded", "reload {round}: {r}");
            assert_eq!(r["report"]["generation"], round + 1);
            assert_eq!(r["report"]["listeners_kept"], 1);
        }
        // Host A stays in every config: its state and id carry over, never unknown.
        let now = hosts(&lab.socket).await;
        assert_eq!(
            (now[0].1.as_str(), now[0].2),
            ("up", a_id),
            "round {round}: {now:?}"
        );
        if round == 5 {
            std::fs::write(&lab.file, "table <pool> { 127.0.0.2 }\nrelay \"socks\" {\n").unwrap();
            let r = ctl_json(&lab.socket, &["reload"]).await;
            assert_eq!(r["reply"], "error", "{r}");
            assert!(
                r["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("relayd.conf:3:"),
                "{r}"
            );
            let g =
                ctl_json(&lab.socket, &["show", "summary"]).await["status"]["generation"].as_u64();
            assert_eq!(g, Some(6), "the broken file changed nothing");
        }
        pace(tally.clone()).await;
    }
    stop_long.store(true, Ordering::Relaxed);
    let mut long_bytes = 0;
    for l in longs {
        let (sent, got, bytes) = l
            .await
            .expect("task")
            .expect("long session ran through every reload");
        assert_eq!(sent, got, "a long session's bytes changed");
        long_bytes += bytes;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client task");
    }
    let (ok, failed, refused) = (
        tally.ok.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
        tally.refused.load(Ordering::Relaxed),
    );
    eprintln!("reload under load: {ok} sessions, {failed} failed, {refused} refused; long sessions moved {long_bytes} bytes");
    let first = tally.first_error.lock().unwrap().clone();
    assert_eq!((failed, refused), (0, 0), "first error: {first:?}");
    assert!(ok >= 1100 && long_bytes > 0);
    drop(proc);
    for s in [sa, sb, sc] {
        s.shutdown(Duration::from_secs(1)).await;
    }
    let _ = std::fs::remove_dir_all(&lab.dir);
}

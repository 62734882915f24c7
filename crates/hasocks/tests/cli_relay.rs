//! `hasocks relay` reloaded under load, as an operator would: 50 clients run SOCKS sessions
//! through the relay process while it takes 10 reloads (by `hasocks ctl reload` and by
//! SIGHUP), alternating a mode change and a host swap, with a broken file in the middle.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{bin, relayd_conf, socks_server, start_relay};
use hasocks_test_support::load::Load;
use hasocks_test_support::{echo_server, free_port, temp_dir};

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

struct Lab {
    dir: PathBuf,
    socket: PathBuf,
    file: PathBuf,
    port: u16,
}

impl Lab {
    /// The relay config: `hosts` (ip, port) in table <pool>, `mode`.
    fn write(&self, hosts: &[(&str, u16)], mode: &str) {
        let text = relayd_conf(
            "interval 1\ntimeout 500\nlog state changes",
            &self.socket,
            hosts,
            self.port,
            &format!("session timeout 0\n forward to <pool> port 1080 mode {mode} check tcp"),
        );
        std::fs::write(&self.file, text).unwrap();
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
    let proc = start_relay(&lab.file);
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

    let mut load = Load::start(relay, target, 50, 4);
    load.pace(100).await;
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
        load.pace(100).await;
    }
    let mut long_bytes = 0;
    for l in load.finish_longs().await {
        let (sent, got, bytes) = l.expect("long session ran through every reload");
        assert_eq!(sent, got, "a long session's bytes changed");
        long_bytes += bytes;
    }
    let tally = load.tally.clone();
    let (ok, failed, refused) = load.finish().await;
    eprintln!("reload under load: {ok} sessions, {failed} failed, {refused} refused; long sessions moved {long_bytes} bytes");
    assert_eq!(
        (failed, refused),
        (0, 0),
        "first error: {:?}",
        tally.first()
    );
    assert!(ok >= 1100 && long_bytes > 0);
    drop(proc);
    for s in [sa, sb, sc] {
        s.shutdown(Duration::from_secs(1)).await;
    }
    let _ = std::fs::remove_dir_all(&lab.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_reaches_no_host_is_logged_with_the_reasons() {
    let dir = temp_dir("cli-relay-refused");
    let file = dir.join("relayd.conf");
    let log = dir.join("relay.log");
    // Two unchecked hosts (always up) where nothing listens: both refuse.
    let closed: Vec<u16> = (0..2).map(|_| free_port("127.0.0.1")).collect();
    let port = free_port("127.0.0.1");
    std::fs::write(
        &file,
        format!(
            "log connection errors\nhasocks.timeout.firstbyte 0\nsocket \"{}\"\n\
             table <pool> {{ 127.0.0.1 port {}, 127.0.0.1 port {} }}\n\
             relay \"socks\" {{\n listen on 127.0.0.1 port {port}\n\
             forward to <pool> port 1080 mode roundrobin\n}}\n",
            dir.join("relay.sock").display(),
            closed[0],
            closed[1]
        ),
    )
    .unwrap();
    let mut proc = tokio::process::Command::new(bin())
        .args(["relay", "-f"])
        .arg(&file)
        .stderr(std::fs::File::create(&log).expect("log file"))
        .kill_on_drop(true)
        .spawn()
        .expect("relay");
    let relay = SocketAddr::from(([127, 0, 0, 1], port));
    let want = "connect to every active host failed: 2 refused";
    let mut text = String::new();
    for _ in 0..100 {
        // Connected once the relay listens; then it closes for want of a host.
        if let Ok(mut s) = tokio::net::TcpStream::connect(relay).await {
            let mut b = [0u8; 1];
            let _ = tokio::io::AsyncReadExt::read(&mut s, &mut b).await;
            text = hasocks_test_support::wait_for_text(&log, want).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(text.contains(want), "{text}");
    let _ = proc.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}

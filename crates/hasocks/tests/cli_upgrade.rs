//! Binary upgrades under load, as an operator would do them: 50 clients run SOCKS sessions
//! (and long checksummed ones) through a relay process, and through a server process, while
//! the binary is upgraded 5 times, alternating `--upgrade` and SIGUSR2. Nothing may fail or be
//! refused, the long sessions finish intact, the old processes exit once their sessions end,
//! and the relay's successor serves at once (its hosts are up before its own first check,
//! which here takes a second). The same load through 5 plain stop-and-starts is the
//! comparison: it must lose sessions, or this harness could not see a loss.

mod common;

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{bin, relayd_conf, socks_server};
use hasocks_test_support::blocking::Running;
use hasocks_test_support::load::Load;
use hasocks_test_support::procs::{live_with_arg, signal, KillOnDrop};
use hasocks_test_support::{
    echo_server, free_port, script, sockd_conf_on, temp_dir, udp_associate, udp_echo_server,
    udp_recv_unwrap, udp_wrap, wait_for,
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Relay,
    Server,
}

/// One daemon under test: its config, its log (every generation appends to it), the
/// processes this test started.
struct Daemon {
    kind: Kind,
    file: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    started: Vec<Running>,
    _reaper: KillOnDrop,
}

impl Daemon {
    fn new(kind: Kind, dir: &Path, text: &str) -> Daemon {
        let file = dir.join(if kind == Kind::Relay {
            "relayd.conf"
        } else {
            "sockd.conf"
        });
        std::fs::write(&file, text).unwrap();
        Daemon {
            kind,
            socket: dir.join("ctl.sock"),
            log: dir.join("daemon.log"),
            _reaper: KillOnDrop(file.display().to_string()),
            file,
            started: Vec::new(),
        }
    }

    /// Starts a process on the config (`upgrade`: taking over the running one); its pid.
    fn spawn(&mut self, upgrade: bool, grace: u64) -> i32 {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let sub = if self.kind == Kind::Relay {
            "relay"
        } else {
            "server"
        };
        let mut cmd = Command::new(bin());
        cmd.args([sub, "-f"])
            .arg(&self.file)
            .args(["--grace", &grace.to_string()])
            .stdout(Stdio::null())
            .stderr(log);
        if upgrade {
            cmd.arg("--upgrade");
        }
        let r = Running(cmd.spawn().expect("start hasocks"));
        let pid = r.pid();
        self.started.push(r);
        pid
    }

    fn log_count(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches(needle)
            .count()
    }

    fn live(&self) -> Vec<i32> {
        live_with_arg(&self.file.display().to_string())
    }

    /// Waits until `n` takeovers are complete (the old side logs each).
    async fn wait_takeovers(&self, n: usize) {
        let done = wait_for(
            || self.log_count("the new process serves") >= n,
            Duration::from_secs(20),
        )
        .await;
        assert!(done, "takeover {n} did not complete; log:\n{}", self.tail());
    }

    fn tail(&self) -> String {
        let t = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = t.len().saturating_sub(4000);
        t[start..].to_string()
    }
}

/// The state of every host of the relay, from its control socket.
fn host_states(socket: &Path) -> Vec<String> {
    hasocks_test_support::ctl::host_states(bin(), socket)
}

/// How the binary is replaced each round.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    /// `--upgrade` (odd rounds) and SIGUSR2 (even rounds).
    Upgrade,
    /// SIGTERM, wait for the exit, start again.
    StopStart,
}

/// What a run of 5 replacements under load gave.
#[derive(Debug)]
struct Outcome {
    ok: u64,
    failed: u64,
    refused: u64,
    long_intact: usize,
    long_broken: usize,
    first_error: Option<String>,
}

/// Starts the daemon and runs the load through `proxy` while it is replaced 5 times `way`.
async fn five_replacements(
    d: &mut Daemon,
    proxy: SocketAddr,
    target: SocketAddr,
    way: Way,
) -> Outcome {
    let current = d.spawn(false, 1);
    wait_until_serving(d, proxy).await;
    five_from(d, current, proxy, target, way, None).await
}

/// Runs the load through `proxy` while the running process `current` is replaced 5 times
/// `way`; `lingering` is an old process expected to stay (it holds a UDP association).
async fn five_from(
    d: &mut Daemon,
    mut current: i32,
    proxy: SocketAddr,
    target: SocketAddr,
    way: Way,
    lingering: Option<i32>,
) -> Outcome {
    let mut load = Load::start(proxy, target, 50, 4);
    load.pace(100).await;
    for round in 1..=5usize {
        match way {
            Way::Upgrade if round % 2 == 1 => {
                current = d.spawn(true, 1);
                d.wait_takeovers(round).await;
            }
            Way::Upgrade => {
                let before = d.live();
                signal(current, 12);
                d.wait_takeovers(round).await;
                let now = d.live();
                current = *now
                    .iter()
                    .find(|p| !before.contains(p))
                    .expect("the SIGUSR2 successor runs");
            }
            Way::StopStart => {
                signal(current, 15);
                let gone = wait_for(|| !d.live().contains(&current), Duration::from_secs(10)).await;
                assert!(gone, "stopped process exits");
                current = d.spawn(false, 1);
                wait_until_serving(d, proxy).await;
            }
        }
        if way == Way::Upgrade && d.kind == Kind::Relay {
            // Served at once: the successor's hosts are up before its own first check (which
            // takes a second here) could have finished.
            let states = host_states(&d.socket);
            assert!(
                !states.is_empty() && states.iter().all(|s| s == "up"),
                "round {round}: hosts right after the takeover: {states:?}"
            );
        }
        load.pace(100).await;
    }
    let longs = load.finish_longs().await;
    let long_intact = longs
        .iter()
        .filter(|l| matches!(l, Ok((s, g, b)) if s == g && *b > 0))
        .count();
    if way == Way::Upgrade {
        // Their sessions over, the old processes exit on their own.
        let mut want: Vec<i32> = lingering.into_iter().chain([current]).collect();
        want.sort_unstable();
        let alone = wait_for(|| d.live() == want, Duration::from_secs(15)).await;
        assert!(
            alone,
            "old processes still running: {:?} (current {current})",
            d.live()
        );
    }
    let tally = load.tally.clone();
    let (ok, failed, refused) = load.finish().await;
    signal(current, 15);
    let _ = wait_for(|| !d.live().contains(&current), Duration::from_secs(10)).await;
    Outcome {
        ok,
        failed,
        refused,
        long_intact,
        long_broken: longs.len() - long_intact,
        first_error: tally.first(),
    }
}

/// Waits until the daemon answers SOCKS on `proxy` (for the relay: with its hosts up).
async fn wait_until_serving(d: &Daemon, proxy: SocketAddr) {
    let ok = wait_for(
        || {
            std::net::TcpStream::connect(proxy).is_ok()
                && (d.kind == Kind::Server || {
                    let s = host_states(&d.socket);
                    !s.is_empty() && s.iter().all(|s| s == "up")
                })
        },
        Duration::from_secs(20),
    )
    .await;
    assert!(ok, "daemon serving; log:\n{}", d.tail());
}

fn report(what: &str, o: &Outcome) {
    eprintln!(
        "{what}: {} sessions ok, {} failed, {} refused; long sessions {} intact, {} broken; first error {:?}",
        o.ok, o.failed, o.refused, o.long_intact, o.long_broken, o.first_error
    );
}

fn assert_lossless(what: &str, o: &Outcome) {
    report(what, o);
    assert_eq!((o.failed, o.refused), (0, 0), "{what}: {o:?}");
    assert_eq!((o.long_intact, o.long_broken), (4, 0), "{what}: {o:?}");
    assert!(o.ok >= 600, "{what}: {o:?}");
}

fn assert_lossy(what: &str, o: &Outcome) {
    report(what, o);
    assert!(
        o.failed + o.refused + o.long_broken as u64 > 0,
        "{what}: a plain restart lost nothing, so the harness cannot see a loss: {o:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_relay_upgrades_under_load_lose_nothing_where_stop_and_start_does() {
    let target = echo_server("127.0.0.1").await;
    let (a, pa) = socks_server("127.0.0.2").await;
    let (b, pb) = socks_server("127.0.0.3").await;
    // A check that takes a second (relayd: exit 1 = up): a relay starting afresh has no host up for that long.
    let check = script("slow-check", "#!/bin/sh\nsleep 1\nexit 1\n");
    for way in [Way::Upgrade, Way::StopStart] {
        let dir = temp_dir("cli-upgrade-relay");
        let port = free_port("127.0.0.1");
        let socket = dir.join("ctl.sock");
        let text = relayd_conf(
            "interval 2\ntimeout 1800",
            &socket,
            &[("127.0.0.2", pa), ("127.0.0.3", pb)],
            port,
            &format!(
                "forward to <pool> port 1080 mode loadbalance check script \"{}\"",
                check.display()
            ),
        );
        let mut d = Daemon::new(Kind::Relay, &dir, &text);
        let proxy = SocketAddr::from(([127, 0, 0, 1], port));
        let o = five_replacements(&mut d, proxy, target, way).await;
        if way == Way::Upgrade {
            assert_lossless("relay, 5 upgrades", &o);
            assert_eq!(
                d.log_count("took over the listening sockets"),
                5,
                "{}",
                d.tail()
            );
        } else {
            assert_lossy("relay, 5 stop-and-starts", &o);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    a.shutdown(Duration::from_secs(1)).await;
    b.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_server_upgrades_under_load_lose_nothing_and_udp_stays_with_the_old_process() {
    let target = echo_server("127.0.0.1").await;
    let (udp_target, _) = udp_echo_server("127.0.0.1").await;
    for way in [Way::Upgrade, Way::StopStart] {
        let dir = temp_dir("cli-upgrade-server");
        let port = free_port("127.0.0.1");
        let socket = dir.join("ctl.sock");
        let text = sockd_conf_on(
            "127.0.0.1",
            "pass",
            &format!("hasocks.socket: {}", socket.display()),
        )
        .replace("port = 0", &format!("port = {port}"));
        let mut d = Daemon::new(Kind::Server, &dir, &text);
        let proxy = SocketAddr::from(([127, 0, 0, 1], port));
        if way == Way::StopStart {
            let o = five_replacements(&mut d, proxy, target, way).await;
            assert_lossy("server, 5 stop-and-starts", &o);
            continue;
        }
        let o = udp_across_upgrades(&mut d, proxy, target, udp_target).await;
        assert_lossless("server, 5 upgrades", &o);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The server run with a UDP association opened on the first process: it keeps relaying
/// through all 5 upgrades (that process stays while its control connection is open), and
/// the process exits once the control connection closes.
async fn udp_across_upgrades(
    d: &mut Daemon,
    proxy: SocketAddr,
    target: SocketAddr,
    udp_target: SocketAddr,
) -> Outcome {
    let first = d.spawn(false, 1);
    wait_until_serving(d, proxy).await;
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (ctl_conn, rep, relay_at) = udp_associate(proxy, client.local_addr().unwrap()).await;
    assert_eq!(rep, 0);
    let round_trip = |n: u8| {
        let client = &client;
        async move {
            let payload = vec![n; 100];
            client
                .send_to(&udp_wrap(0, udp_target.into(), &payload), relay_at)
                .await
                .unwrap();
            let got = tokio::time::timeout(Duration::from_secs(5), udp_recv_unwrap(client)).await;
            matches!(got, Ok((_, p)) if p == payload)
        }
    };
    assert!(round_trip(1).await, "UDP before the upgrades");
    let o = five_from(d, first, proxy, target, Way::Upgrade, Some(first)).await;
    assert!(
        round_trip(2).await,
        "UDP after 5 upgrades, through the first process"
    );
    assert!(
        d.live().contains(&first),
        "the first process stays for its association"
    );
    drop(ctl_conn);
    let gone = wait_for(|| !d.live().contains(&first), Duration::from_secs(10)).await;
    assert!(gone, "the first process exits once its association ends");
    o
}

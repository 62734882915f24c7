//! The daemons under a service manager, without one as PID 1: the test is the manager. It
//! listens on `NOTIFY_SOCKET` and checks what each daemon says and in what order (start,
//! reload, binary upgrade, stop, watchdog), and it hands listening sockets in by socket
//! activation with systemd's own `systemd-socket-activate`, then checks that they are the
//! ones used.

mod common;

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::bin;
use hasocks_test_support::blocking::Running;
use hasocks_test_support::procs::KillOnDrop;
use hasocks_test_support::{free_port, sockd_conf_on, temp_dir, tool};

/// The service manager's end of `NOTIFY_SOCKET`.
struct Manager {
    sock: UnixDatagram,
    path: PathBuf,
}

impl Manager {
    fn new(dir: &Path) -> Manager {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind notify socket");
        Manager { sock, path }
    }

    /// The next message that is not a watchdog ping (those are counted into `pings`).
    fn next(&self, pings: &mut usize) -> String {
        let end = Instant::now() + Duration::from_secs(20);
        let mut buf = vec![0u8; 4096];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no notification within 20 s");
            self.sock.set_read_timeout(Some(left)).unwrap();
            let n = self.sock.recv(&mut buf).expect("a notification");
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg == "WATCHDOG=1" {
                *pings += 1;
                continue;
            }
            return msg;
        }
    }
}

/// The value of `key` in a notification.
fn field<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    msg.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// A relay config (forwarding to the TCP `backend`) or a server config on `port`, with its
/// control socket in `dir`.
fn config(kind: &str, dir: &Path, port: u16, backend: SocketAddr) -> PathBuf {
    let socket = dir.join("ctl.sock");
    let (file, text) = if kind == "relay" {
        (
            dir.join("relayd.conf"),
            format!(
                "socket \"{}\"\ntable <pool> {{ {} port {} }}\n\
                 relay \"socks\" {{\n listen on 127.0.0.1 port {port}\n forward to <pool> check tcp\n}}\n",
                socket.display(),
                backend.ip(),
                backend.port()
            ),
        )
    } else {
        (
            dir.join("sockd.conf"),
            sockd_conf_on(
                "127.0.0.1",
                "pass",
                &format!("hasocks.socket: {}", socket.display()),
            )
            .replace("port = 0", &format!("port = {port}")),
        )
    };
    std::fs::write(&file, text).unwrap();
    file
}

fn daemon(kind: &str, file: &Path, notify: &Path, upgrade: bool) -> Running {
    let mut cmd = Command::new(bin());
    cmd.args([kind, "-f"])
        .arg(file)
        .env("NOTIFY_SOCKET", notify)
        .env("WATCHDOG_USEC", "300000")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if upgrade {
        cmd.arg("--upgrade");
    }
    Running(cmd.spawn().expect("start hasocks"))
}

fn notifications_in_order(kind: &str) {
    let dir = temp_dir(&format!("notify-{kind}"));
    let m = Manager::new(&dir);
    let backend = SocketAddr::from(([127, 0, 0, 9], free_port("127.0.0.9")));
    let file = config(kind, &dir, free_port("127.0.0.1"), backend);
    let _reaper = KillOnDrop(file.display().to_string());
    let mut pings = 0;

    let mut old = daemon(kind, &file, &m.path, false);
    let ready = m.next(&mut pings);
    assert_eq!(
        field(&ready, "READY"),
        Some("1"),
        "{kind} first says READY=1: {ready:?}"
    );
    assert!(
        field(&ready, "STATUS").is_some_and(|s| !s.is_empty()),
        "{ready:?}"
    );
    if kind == "server" {
        assert!(
            field(&ready, "STATUS")
                .unwrap()
                .contains("listening on 127.0.0.1:"),
            "{ready:?}"
        );
    }

    let before = hasocks_lifecycle::systemd::monotonic_usec();
    old.signal(1);
    let reloading = m.next(&mut pings);
    let after = hasocks_lifecycle::systemd::monotonic_usec();
    assert_eq!(field(&reloading, "RELOADING"), Some("1"), "{reloading:?}");
    // One datagram carries both, as systemd requires.
    let usec: u64 = field(&reloading, "MONOTONIC_USEC")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("MONOTONIC_USEC in {reloading:?}"));
    assert!(
        (before..=after).contains(&usec),
        "{before} <= {usec} <= {after}"
    );
    let again = m.next(&mut pings);
    assert_eq!(
        field(&again, "READY"),
        Some("1"),
        "READY=1 after the reload: {again:?}"
    );

    // A binary upgrade (the relay by SIGUSR2, the server by --upgrade): the successor names
    // itself the main process, then is ready, and takes over the watchdog.
    let _started = if kind == "relay" {
        old.signal(12);
        None
    } else {
        Some(daemon(kind, &file, &m.path, true))
    };
    let main = m.next(&mut pings);
    let new: i32 = field(&main, "MAINPID")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("MAINPID from the successor: {main:?}"));
    assert_ne!(new, old.pid());
    assert!(hasocks_test_support::procs::live_with_arg(&file.display().to_string()).contains(&new));
    let ready = m.next(&mut pings);
    assert_eq!(field(&ready, "READY"), Some("1"), "{ready:?}");
    assert_eq!(
        old.wait_exit(Duration::from_secs(10)),
        Some(0),
        "the old {kind} exits"
    );

    // Long enough for a few pings at 150 ms, all from the successor now.
    pings = 0;
    std::thread::sleep(Duration::from_millis(600));
    hasocks_test_support::procs::signal(new, 15);
    let stopping = m.next(&mut pings);
    assert_eq!(field(&stopping, "STOPPING"), Some("1"), "{stopping:?}");
    let gone = hasocks_test_support::wait_blocking(
        || !hasocks_test_support::procs::live_with_arg(&file.display().to_string()).contains(&new),
        Duration::from_secs(15),
    );
    assert!(gone, "the successor stops");
    assert!(
        pings >= 2,
        "{kind}: {pings} watchdog pings with WATCHDOG_USEC=300000 after the upgrade"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn relay_tells_the_manager_ready_reloading_mainpid_after_sigusr2_stopping_and_pings_the_watchdog() {
    notifications_in_order("relay");
}

#[test]
fn server_tells_the_manager_ready_reloading_mainpid_after_upgrade_stopping_and_pings_the_watchdog()
{
    notifications_in_order("server");
}

/// Listening TCP sockets on `port` (all of this machine's, from /proc/net/tcp).
fn listening_on(port: u16) -> usize {
    let t = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    t.lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3
                && f[3] == "0A"
                && f[1].rsplit(':').next() == Some(format!("{port:04X}").as_str())
        })
        .count()
}

fn activated(kind: &str) {
    if !tool("systemd-socket-activate") {
        return;
    }
    let dir = temp_dir(&format!("activate-{kind}"));
    let port = free_port("127.0.0.1");
    let target = hasocks_test_support::blocking::echo_server("127.0.0.1");
    let file = config(kind, &dir, port, target);
    let _reaper = KillOnDrop(file.display().to_string());
    let mut act = Running(
        Command::new("systemd-socket-activate")
            .args([
                "-l",
                &format!("127.0.0.1:{port}"),
                "--fdname=socks",
                bin(),
                kind,
                "-f",
            ])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("systemd-socket-activate"),
    );
    let proxy = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        hasocks_test_support::wait_blocking(|| listening_on(port) == 1, Duration::from_secs(10)),
        "the activator listens"
    );
    // The first connection starts the daemon; it is served from the inherited backlog
    // (through the server: SOCKS5 to the echo target; through the relay: straight to it).
    let mut s = if kind == "server" {
        let (s, rep) = hasocks_test_support::blocking::socks5_stream(proxy, target)
            .expect("SOCKS5 through the activated socket");
        assert_eq!(rep, 0);
        s
    } else {
        let s = std::net::TcpStream::connect(proxy).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };
    assert!(
        hasocks_test_support::blocking::echo_round(&mut s, b"activated"),
        "{kind}: echo through the activated socket"
    );
    // The daemon runs on the activator's socket and bound no other one.
    assert!(
        hasocks_test_support::wait_blocking(
            || !hasocks_test_support::procs::live_with_arg(&file.display().to_string()).is_empty(),
            Duration::from_secs(10)
        ),
        "the daemon runs"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        listening_on(port),
        1,
        "{kind} bound a socket of its own on {port}"
    );
    act.signal(15);
    assert_eq!(act.wait_exit(Duration::from_secs(15)), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn relay_serves_on_a_socket_passed_by_socket_activation() {
    activated("relay");
}

#[test]
fn server_serves_on_a_socket_passed_by_socket_activation() {
    activated("server");
}

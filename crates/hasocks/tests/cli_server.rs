//! The `hasocks server` binary as an operator meets it: config errors, -V, SIGHUP reload,
//! SIGTERM stop. Real process, real sockets on 127.0.0.1.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::bin;
use hasocks_test_support::blocking::{socks5_rep, Running};
use hasocks_test_support::{free_port, temp_dir, wait_blocking};

const HUP: i32 = 1;
const TERM: i32 = 15;

/// `hasocks server -f FILE`, its stderr discarded.
fn server_on(file: &Path) -> Running {
    Running(
        Command::new(bin())
            .args(["server", "-f"])
            .arg(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("start hasocks server"),
    )
}

fn conf(port: u16, socks_verdict: &str, log: &Path) -> String {
    conf_on(&[port], socks_verdict, log)
}

fn conf_on(ports: &[u16], socks_verdict: &str, log: &Path) -> String {
    let internals: String = ports
        .iter()
        .map(|p| format!("internal: 127.0.0.1 port = {p}\n"))
        .collect();
    format!(
        "logoutput: {}\n{internals}external: 127.0.0.1\nsocksmethod: none\n\
         client pass {{ from: 0/0 to: 0/0 }}\nsocks {socks_verdict} {{ from: 0/0 to: 0/0 log: connect disconnect error }}\n",
        log.display()
    )
}

fn wait_for(f: impl FnMut() -> bool) -> bool {
    wait_blocking(f, Duration::from_secs(10))
}

/// A TCP target that accepts and closes.
fn sink_target() -> SocketAddr {
    let target_l = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = target_l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in target_l.incoming().flatten() {
            drop(s)
        }
    });
    target
}

#[test]
fn config_error_names_file_line_and_keyword_and_exits_1() {
    let dir = temp_dir("cli-bad");
    let file = dir.join("sockd.conf");
    std::fs::write(
        &file,
        "internal: 127.0.0.1 port = 1080\nsocksmethod: none\nbandwidth: 10\n",
    )
    .unwrap();
    for args in [vec!["server", "-V", "-f"], vec!["server", "-f"]] {
        let out = Command::new(bin()).args(&args).arg(&file).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{}:3:", file.display())), "{err}");
        assert!(err.contains("bandwidth"), "{err}");
    }
    std::fs::write(
        &file,
        "internal: 127.0.0.1 port = 1080\nsocksmethod: none\n",
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["server", "-V", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sighup_reloads_rules_refuses_a_broken_file_and_sigterm_stops() {
    let dir = temp_dir("cli-hup");
    let file = dir.join("sockd.conf");
    let log = dir.join("sockd.log");
    let port = free_port("127.0.0.1");
    let proxy: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    std::fs::write(&file, conf(port, "pass", &log)).unwrap();
    let target = sink_target();

    let mut child = server_on(&file);
    assert!(
        wait_for(|| socks5_rep(proxy, target) == Some(0)),
        "server answers and passes"
    );

    // A new config that blocks: new sessions get 02.
    std::fs::write(&file, conf(port, "block", &log)).unwrap();
    child.signal(HUP);
    assert!(
        wait_for(|| socks5_rep(proxy, target) == Some(2)),
        "reloaded rules apply"
    );

    // A broken config is refused and the running one stays.
    std::fs::write(
        &file,
        "internal: 127.0.0.1 port = 1\nsocksmethod: none\nbandwidth: 1\nsocks pass {\n",
    )
    .unwrap();
    child.signal(HUP);
    assert!(wait_for(|| std::fs::read_to_string(&log)
        .map(|t| t.contains("reload refused"))
        .unwrap_or(false)));
    assert_eq!(socks5_rep(proxy, target), Some(2));

    // Log files are reopened on SIGHUP (logrotate).
    std::fs::rename(&log, dir.join("sockd.log.1")).unwrap();
    std::fs::write(&file, conf(port, "pass", &log)).unwrap();
    child.signal(HUP);
    assert!(wait_for(|| socks5_rep(proxy, target) == Some(0)));
    assert!(
        wait_for(|| std::fs::read_to_string(&log)
            .map(|t| t.contains(" [: "))
            .unwrap_or(false)),
        "new log file written"
    );

    child.signal(TERM);
    assert_eq!(
        child.wait_exit(Duration::from_secs(10)),
        Some(0),
        "clean exit on SIGTERM"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sighup_opens_added_internals_closes_removed_ones_and_never_refuses_on_one_that_stays() {
    let dir = temp_dir("cli-listeners");
    let file = dir.join("sockd.conf");
    let log = dir.join("sockd.log");
    let (stay, gone, added) = (
        free_port("127.0.0.1"),
        free_port("127.0.0.1"),
        free_port("127.0.0.1"),
    );
    let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    std::fs::write(&file, conf_on(&[stay, gone], "pass", &log)).unwrap();
    let target = sink_target();
    let mut child = server_on(&file);
    assert!(wait_for(|| socks5_rep(at(stay), target) == Some(0)));
    assert_eq!(socks5_rep(at(gone), target), Some(0));

    // Connections to the address that stays, all through the reloads: none may be refused.
    let done = Arc::new(AtomicBool::new(false));
    let (ok, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let hammer = {
        let (done, ok, refused) = (done.clone(), ok.clone(), refused.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                match TcpStream::connect(at(stay)) {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(_) => refused.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };
    for round in 0..3 {
        std::fs::write(&file, conf_on(&[stay, added], "pass", &log)).unwrap();
        child.signal(HUP);
        assert!(
            wait_for(|| socks5_rep(at(added), target) == Some(0)),
            "round {round}: the added internal serves"
        );
        assert!(
            wait_for(|| TcpStream::connect(at(gone)).is_err()),
            "round {round}: the removed internal is closed"
        );
        std::fs::write(&file, conf_on(&[stay, gone], "pass", &log)).unwrap();
        child.signal(HUP);
        assert!(wait_for(|| socks5_rep(at(gone), target) == Some(0)));
        assert!(wait_for(|| TcpStream::connect(at(added)).is_err()));
    }
    // A new internal that cannot be bound refuses the whole reload: the rules stay too.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = held.local_addr().unwrap().port();
    std::fs::write(&file, conf_on(&[stay, gone, busy], "block", &log)).unwrap();
    child.signal(HUP);
    assert!(wait_for(|| std::fs::read_to_string(&log)
        .map(|t| t.contains("reload refused") && t.contains(&format!("127.0.0.1:{busy}")))
        .unwrap_or(false)));
    assert_eq!(
        socks5_rep(at(stay), target),
        Some(0),
        "old rules still pass"
    );
    assert_eq!(
        socks5_rep(at(gone), target),
        Some(0),
        "old listeners still there"
    );

    done.store(true, Ordering::Relaxed);
    hammer.join().unwrap();
    assert!(ok.load(Ordering::Relaxed) > 0);
    assert_eq!(
        refused.load(Ordering::Relaxed),
        0,
        "connections refused on the address that stayed"
    );
    child.signal(TERM);
    assert_eq!(child.wait_exit(Duration::from_secs(10)), Some(0));
    std::fs::remove_dir_all(&dir).unwrap();
}

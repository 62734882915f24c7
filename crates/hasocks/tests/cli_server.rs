//! The `hasocks server` binary as an operator meets it: config errors, -V, SIGHUP reload,
//! SIGTERM stop. Real process, real sockets on 127.0.0.1.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, wait_for, Running};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_hasocks")
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hasocks-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn conf(port: u16, socks_verdict: &str, log: &Path) -> String {
    format!(
        "logoutput: {}\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\nsocksmethod: none\n\
         client pass {{ from: 0/0 to: 0/0 }}\nsocks {socks_verdict} {{ from: 0/0 to: 0/0 log: connect disconnect error }}\n",
        log.display()
    )
}

/// One SOCKS5 CONNECT; returns the reply code (or None if the server is not there).
fn socks5_rep(proxy: SocketAddr, target: SocketAddr) -> Option<u8> {
    let mut s = TcpStream::connect_timeout(&proxy, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(&[5, 1, 0]).ok()?;
    let mut sel = [0u8; 2];
    s.read_exact(&mut sel).ok()?;
    let SocketAddr::V4(t) = target else {
        return None;
    };
    let mut req = vec![5, 1, 0, 1];
    req.extend_from_slice(&t.ip().octets());
    req.extend_from_slice(&t.port().to_be_bytes());
    s.write_all(&req).ok()?;
    let mut rep = [0u8; 10];
    s.read_exact(&mut rep).ok()?;
    Some(rep[1])
}

#[test]
fn config_error_names_file_line_and_keyword_and_exits_1() {
    let dir = tmpdir("bad");
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
    let dir = tmpdir("hup");
    let file = dir.join("sockd.conf");
    let log = dir.join("sockd.log");
    let port = free_port();
    let proxy: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    std::fs::write(&file, conf(port, "pass", &log)).unwrap();
    let target_l = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = target_l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in target_l.incoming().flatten() {
            drop(s)
        }
    });

    let child = Command::new(bin())
        .args(["server", "-f"])
        .arg(&file)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let pid = Pid::from_raw(child.0.id() as i32);
    assert!(
        wait_for(|| socks5_rep(proxy, target) == Some(0)),
        "server answers and passes"
    );

    // A new config that blocks: new sessions get 02.
    std::fs::write(&file, conf(port, "block", &log)).unwrap();
    kill(pid, Signal::SIGHUP).unwrap();
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
    kill(pid, Signal::SIGHUP).unwrap();
    assert!(wait_for(|| std::fs::read_to_string(&log)
        .map(|t| t.contains("reload refused"))
        .unwrap_or(false)));
    assert_eq!(socks5_rep(proxy, target), Some(2));

    // Log files are reopened on SIGHUP (logrotate).
    std::fs::rename(&log, dir.join("sockd.log.1")).unwrap();
    std::fs::write(&file, conf(port, "pass", &log)).unwrap();
    kill(pid, Signal::SIGHUP).unwrap();
    assert!(wait_for(|| socks5_rep(proxy, target) == Some(0)));
    assert!(
        wait_for(|| std::fs::read_to_string(&log)
            .map(|t| t.contains(" [: "))
            .unwrap_or(false)),
        "new log file written"
    );

    kill(pid, Signal::SIGTERM).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > end {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "clean exit on SIGTERM"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

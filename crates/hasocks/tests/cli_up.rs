//! `hasocks up`, the README's main job: a relay and two servers on loopback, reachable with a
//! SOCKS client, stopped cleanly by Ctrl-C.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// HTTP GET of the status page through the relay, with raw SOCKS5 bytes.
fn status_through(relay: u16, status: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", relay)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(&[5, 1, 0]).ok()?;
    let mut b = [0u8; 2];
    s.read_exact(&mut b).ok()?;
    let mut req = vec![5, 1, 0, 1, 127, 0, 0, 1];
    req.extend_from_slice(&status.to_be_bytes());
    s.write_all(&req).ok()?;
    let mut rep = [0u8; 10];
    s.read_exact(&mut rep).ok()?;
    if rep[1] != 0 {
        return None;
    }
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

#[test]
fn up_serves_socks_through_the_relay_and_stops_on_ctrl_c() {
    let (relay, status, server) = (
        free_port("127.0.0.1"),
        free_port("127.0.0.1"),
        free_port("127.0.0.2"),
    );
    let dir = std::env::temp_dir().join(format!("hasocks-up-test-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_hasocks"))
        .args([
            "up",
            "--port",
            &relay.to_string(),
            "--status-port",
            &status.to_string(),
        ])
        .args(["--server-port", &server.to_string(), "--dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut printed = Vec::new();
    let end = Instant::now() + Duration::from_secs(20);
    while !printed.iter().any(|l: &String| l.contains("Ctrl-C stops")) && Instant::now() < end {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            printed.push(l);
        }
    }
    let text = printed.join("\n");
    assert!(
        text.contains(&format!("curl --socks5-hostname 127.0.0.1:{relay}")),
        "{text}"
    );
    assert!(dir.join("relayd.conf").exists() && dir.join("sockd-a.conf").exists());

    // Both servers come up under `check socks`, and a SOCKS client gets through.
    let mut page = None;
    while Instant::now() < end {
        page = status_through(relay, status).filter(|p| p.contains("active (2 hosts)"));
        if page.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let page = page.expect("status page through the relay with both hosts up");
    assert!(
        page.contains("127.0.0.2:") && page.contains("127.0.0.3:"),
        "{page}"
    );

    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let end = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > end {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "clean exit on Ctrl-C"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

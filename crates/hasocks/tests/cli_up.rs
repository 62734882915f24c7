//! `hasocks up`, the README's main job: a relay and two servers on loopback, reachable with a
//! SOCKS client, stopped cleanly by Ctrl-C.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::bin;
use hasocks_test_support::blocking::{echo_round, echo_server, socks5_stream, Running};
use hasocks_test_support::{free_port, wait_blocking};

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
fn up_serves_socks_through_the_relay_and_drains_the_relay_on_ctrl_c() {
    let (relay, status, server) = (
        free_port("127.0.0.1"),
        free_port("127.0.0.1"),
        free_port("127.0.0.2"),
    );
    let dir = std::env::temp_dir().join(format!("hasocks-up-test-{}", std::process::id()));
    let mut child = Running(
        Command::new(bin())
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
            .unwrap(),
    );
    let out = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
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
        page = status_through(relay, status).filter(|p| p.contains("2 of 2 hosts up"));
        if page.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let page = page.expect("status page through the relay with both hosts up");
    for host in ["127.0.0.2", "127.0.0.3"] {
        let row = page
            .lines()
            .find(|l| l.contains(&format!("<td>{host}</td>")))
            .unwrap_or_else(|| panic!("no row for {host}: {page}"));
        assert!(row.contains("<td class=\"up\">up</td>"), "{row}");
    }

    // Ctrl-C drains the relay: it stops accepting at once, while a session open through it
    // (and the server behind it) goes on until it ends.
    let relay_addr = SocketAddr::from(([127, 0, 0, 1], relay));
    let (mut open, rep) = socks5_stream(relay_addr, echo_server("127.0.0.1")).expect("a session");
    assert_eq!(rep, 0);
    assert!(echo_round(&mut open, b"before"));
    child.signal(2);
    assert!(
        wait_blocking(
            || TcpStream::connect(relay_addr).is_err(),
            Duration::from_secs(5)
        ),
        "the relay still accepts after Ctrl-C"
    );
    assert!(
        echo_round(&mut open, b"after Ctrl-C"),
        "the open session was cut"
    );
    drop(open);
    assert_eq!(
        child.wait_exit(Duration::from_secs(15)),
        Some(0),
        "clean exit on Ctrl-C once the session ended"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

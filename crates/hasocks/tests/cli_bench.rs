//! `hasocks bench` as a load generator: options that change what goes on the wire.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener};
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::bin;

/// An echo server on 127.0.0.1 that records every peer's address.
fn recording_echo() -> (std::net::SocketAddr, Arc<Mutex<Vec<IpAddr>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let rec = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            rec.lock().unwrap().push(s.peer_addr().unwrap().ip());
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, seen)
}

#[test]
fn source_option_sets_the_address_connections_come_from() {
    let (echo, seen) = recording_echo();
    let out = Command::new(bin())
        .args(["bench", "--direct", "--target", &echo.to_string()])
        .args(["--source", "127.0.0.7", "--mode", "sessions"])
        .args(["--concurrency", "2", "--duration", "0.3", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty(), "no session reached the target");
    let want: IpAddr = "127.0.0.7".parse().unwrap();
    assert!(seen.iter().all(|ip| *ip == want), "peers: {seen:?}");
}

#[test]
fn source_of_the_wrong_family_is_refused_before_any_load() {
    let out = Command::new(bin())
        .args([
            "bench",
            "-s",
            "127.0.0.1:1",
            "--source",
            "::1",
            "--duration",
            "0.2",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("different address families"), "{err}");
}

//! Loopback throughput of `copy::pump`, buffer copy vs splice(2).
//!
//! `cargo run --release -p net --example copy_bench -- [MiB per stream] [streams] [buf KiB]`
//! With MiB = 0 it measures short sessions instead: `streams` sessions of 1 KiB each way.
//!
//! Source and sink are plain blocking threads; the pump runs on a current-thread tokio runtime
//! (one core, as one worker of a server would), so the figures compare the pump's cost.
//! Besides wall-clock MB/s it prints MB per CPU-second of the pump thread (from
//! /proc/thread-self/schedstat), which stays meaningful on a loaded machine.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use net::copy::{pump, set_buffer_size, set_splice, CopyOpts, EndReason};
use net::sock::{connect_tcp, listen_tcp};

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let mib = arg(1, 1024);
    let streams = arg(2, 1) as usize;
    let buf_kib = arg(3, 32) as usize;
    set_buffer_size(buf_kib * 1024);
    for splice in [false, true, false, true] {
        set_splice(splice);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        if mib == 0 {
            let cpu0 = thread_cpu_ns();
            let secs = rt.block_on(run_short(streams));
            let cpu = (thread_cpu_ns() - cpu0) as f64 / 1e9;
            println!(
                "{:6} sessions={streams} {:6.0} sessions/s wall, {:6.1} us pump CPU per session",
                if splice { "splice" } else { "copy" },
                streams as f64 / secs,
                cpu * 1e6 / streams as f64
            );
            continue;
        }
        let cpu0 = thread_cpu_ns();
        let secs = rt.block_on(run(mib << 20, streams));
        let cpu = (thread_cpu_ns() - cpu0) as f64 / 1e9;
        let total = (mib << 20) as f64 * streams as f64;
        println!(
            "{:6} streams={streams} buf={buf_kib}KiB {:6.0} MB/s wall, {:6.0} MB per pump CPU-second",
            if splice { "splice" } else { "copy" },
            total / secs / 1e6,
            total / cpu / 1e6
        );
    }
}

async fn run(per_stream: u64, streams: usize) -> f64 {
    let loopback = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0);
    let sink = TcpListener::bind(loopback).expect("sink");
    let sink_addr = sink.local_addr().expect("sink addr");
    std::thread::spawn(move || {
        for conn in sink.incoming().take(streams) {
            let mut conn = conn.expect("sink accept");
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 256 * 1024];
                while conn.read(&mut buf).map(|n| n > 0).unwrap_or(false) {}
            });
        }
    });

    let front = listen_tcp(loopback).expect("front");
    let front_addr = front.local_addr().expect("front addr");
    let start = Instant::now();
    for _ in 0..streams {
        std::thread::spawn(move || {
            let mut c = TcpStream::connect(front_addr).expect("source connect");
            let buf = vec![0x5au8; 256 * 1024];
            let mut left = per_stream;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                c.write_all(&buf[..n]).expect("source write");
                left -= n as u64;
            }
            let _ = c.shutdown(std::net::Shutdown::Write);
            let mut rest = Vec::new();
            let _ = c.read_to_end(&mut rest);
        });
    }
    let mut sessions = Vec::new();
    for _ in 0..streams {
        let (a, _) = front.accept().await.expect("front accept");
        let b = connect_tcp(sink_addr, None, Duration::from_secs(5))
            .await
            .expect("connect sink");
        sessions.push(tokio::spawn(pump(a, b, CopyOpts::default())));
    }
    for s in sessions {
        let report = s.await.expect("pump");
        assert_eq!(report.end, EndReason::Closed);
        assert_eq!(report.a_to_b, per_stream);
    }
    start.elapsed().as_secs_f64()
}

/// `sessions` short sessions (1 KiB up, 1 KiB down) from 4 sequential client threads.
async fn run_short(sessions: usize) -> f64 {
    const THREADS: usize = 4;
    let loopback = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0);
    let sink = TcpListener::bind(loopback).expect("sink");
    let sink_addr = sink.local_addr().expect("sink addr");
    for _ in 0..THREADS {
        let sink = sink.try_clone().expect("sink clone");
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((mut conn, _)) = sink.accept() {
                let mut got = 0;
                while got < 1024 {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got += n,
                    }
                }
                let _ = conn.write_all(&buf[..1024]);
            }
        });
    }
    let front = listen_tcp(loopback).expect("front");
    let front_addr = front.local_addr().expect("front addr");
    let start = Instant::now();
    let mut clients = Vec::new();
    for t in 0..THREADS {
        let n = sessions / THREADS + usize::from(t < sessions % THREADS);
        clients.push(std::thread::spawn(move || {
            let mut rest = Vec::new();
            for _ in 0..n {
                let mut c = TcpStream::connect(front_addr).expect("source connect");
                c.write_all(&[7u8; 1024]).expect("source write");
                rest.clear();
                let _ = c.read_to_end(&mut rest);
                assert_eq!(rest.len(), 1024);
            }
        }));
    }
    let mut pumps = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let (a, _) = front.accept().await.expect("front accept");
        pumps.push(tokio::spawn(async move {
            let b = connect_tcp(sink_addr, None, Duration::from_secs(5))
                .await
                .expect("connect sink");
            pump(a, b, CopyOpts::default()).await
        }));
    }
    for p in pumps {
        let report = p.await.expect("pump");
        assert_eq!(report.b_to_a, 1024);
    }
    for c in clients {
        c.join().expect("client");
    }
    start.elapsed().as_secs_f64()
}

/// CPU time of the calling thread in nanoseconds (first field of schedstat).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|f| f.parse().ok()))
        .unwrap_or(0)
}

//! UDP load generator for any SOCKS5 server: opens N UDP associations (raw SOCKS bytes via
//! socks_wire), keeps a window of datagrams in flight on each towards a local UDP echo
//! server per association it runs itself, and reports echoed datagrams per second and Mbit/s.
//!
//! `udp_load PROXY_HOST:PORT [--assoc N] [--secs S] [--size BYTES] [--window W]`
//! Output: one line `assoc=N size=B secs=S echoes=E dgram_per_s=D mbit_per_s=M unanswered=U`.
//! Loopback only: the echo server binds 127.0.0.1.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socks_wire::udp::UdpHeader;
use socks_wire::v5::{self, Command, Greeting, MethodSelection, Reply, Request};
use socks_wire::TargetAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

struct Opts {
    proxy: SocketAddr,
    assoc: usize,
    secs: u64,
    size: usize,
    window: usize,
}

fn parse_args() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let proxy = args
        .next()
        .ok_or("usage: udp_load PROXY:PORT [--assoc N] [--secs S] [--size B] [--window W]")?;
    let proxy: SocketAddr = proxy.parse().map_err(|e| format!("proxy {proxy}: {e}"))?;
    let mut o = Opts {
        proxy,
        assoc: 1,
        secs: 5,
        size: 512,
        window: 32,
    };
    while let Some(flag) = args.next() {
        let v = args.next().ok_or(format!("{flag} needs a value"))?;
        let n: u64 = v.parse().map_err(|e| format!("{flag} {v}: {e}"))?;
        match flag.as_str() {
            "--assoc" => o.assoc = n as usize,
            "--secs" => o.secs = n,
            "--size" => o.size = n as usize,
            "--window" => o.window = n as usize,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(o)
}

/// A UDP echo server on 127.0.0.1, one per association (so one association's window never
/// overflows another's receive queue), served by a task of this runtime.
async fn start_echo() -> std::io::Result<SocketAddr> {
    let s = UdpSocket::bind("127.0.0.1:0").await?;
    let addr = s.local_addr()?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            let _ = s.send_to(&buf[..n], from).await;
        }
    });
    Ok(addr)
}

/// SOCKS5 UDP ASSOCIATE; returns the control connection and where to send datagrams.
async fn associate(proxy: SocketAddr) -> Result<(TcpStream, SocketAddr), String> {
    let mut s = TcpStream::connect(proxy)
        .await
        .map_err(|e| format!("connect {proxy}: {e}"))?;
    let mut out = Vec::new();
    Greeting {
        methods: vec![v5::method::NONE],
    }
    .encode(&mut out);
    Request {
        command: Command::UdpAssociate,
        target: TargetAddr::unspecified_v4(),
    }
    .encode(&mut out);
    s.write_all(&out).await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    let mut method_done = false;
    loop {
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("proxy closed during negotiation".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if !method_done {
            match MethodSelection::decode(&buf).map_err(|e| e.to_string())? {
                Some((m, used)) if m.method == v5::method::NONE => {
                    buf.drain(..used);
                    method_done = true;
                }
                Some(_) => return Err("proxy refused method none".into()),
                None => continue,
            }
        }
        if let Some((r, _)) = Reply::decode(&buf).map_err(|e| e.to_string())? {
            if !r.is_success() {
                return Err(format!("UDP ASSOCIATE refused: reply {:#04x}", r.code));
            }
            let bnd = match r.bound {
                // An unspecified BND means "the address you reached me on".
                TargetAddr::Ip(a) if a.ip().is_unspecified() => {
                    SocketAddr::new(proxy.ip(), a.port())
                }
                TargetAddr::Ip(a) => a,
                TargetAddr::Domain(..) => return Err("BND is a name".into()),
            };
            return Ok((s, bnd));
        }
    }
}

#[derive(Default)]
struct Totals {
    echoes: AtomicU64,
    bytes: AtomicU64,
    sent: AtomicU64,
}

async fn blast(o: Arc<Opts>, totals: Arc<Totals>, stop: Arc<AtomicBool>) -> Result<(), String> {
    let echo = start_echo()
        .await
        .map_err(|e| format!("echo server: {e}"))?;
    let (_ctl, bnd) = associate(o.proxy).await?;
    let sock = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    sock.connect(bnd).await.map_err(|e| e.to_string())?;
    let mut dg = Vec::new();
    UdpHeader::new(TargetAddr::Ip(echo)).encode(&mut dg);
    let head = dg.len();
    dg.resize(head + o.size, b'u');
    let mut buf = vec![0u8; 65536];
    let (mut echoes, mut bytes, mut sent) = (0u64, 0u64, 0u64);
    for _ in 0..o.window {
        sock.send(&dg).await.map_err(|e| e.to_string())?;
        sent += 1;
    }
    while !stop.load(Ordering::Relaxed) {
        match tokio::time::timeout(Duration::from_millis(200), sock.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                echoes += 1;
                bytes += n.saturating_sub(head) as u64;
                if sock.send(&dg).await.is_ok() {
                    sent += 1;
                }
            }
            Ok(Err(_)) => {}
            // Nothing for 200 ms: the window was lost; refill it.
            Err(_) => {
                for _ in 0..o.window {
                    if sock.send(&dg).await.is_ok() {
                        sent += 1;
                    }
                }
            }
        }
    }
    totals.echoes.fetch_add(echoes, Ordering::Relaxed);
    totals.bytes.fetch_add(bytes, Ordering::Relaxed);
    totals.sent.fetch_add(sent, Ordering::Relaxed);
    Ok(())
}

#[tokio::main]
async fn main() {
    let o = match parse_args() {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let totals = Arc::new(Totals::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..o.assoc {
        tasks.push(tokio::spawn(blast(o.clone(), totals.clone(), stop.clone())));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(o.secs)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let mut failed = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failed += 1;
                eprintln!("association failed: {e}");
            }
            Err(e) => {
                failed += 1;
                eprintln!("task failed: {e}");
            }
        }
    }
    let echoes = totals.echoes.load(Ordering::Relaxed);
    let bytes = totals.bytes.load(Ordering::Relaxed);
    let sent = totals.sent.load(Ordering::Relaxed);
    println!(
        "assoc={} size={} secs={:.1} echoes={echoes} dgram_per_s={:.0} mbit_per_s={:.1} unanswered={} failed_assoc={failed}",
        o.assoc,
        o.size,
        elapsed,
        echoes as f64 / elapsed,
        bytes as f64 * 8.0 / elapsed / 1e6,
        sent.saturating_sub(echoes),
    );
    if failed > 0 || echoes == 0 {
        std::process::exit(1);
    }
}

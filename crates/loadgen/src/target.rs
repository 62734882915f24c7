//! In-process targets for a load to reach: an echo server (sessions, idle) and a sink that
//! counts what arrives (throughput), on 127.0.0.1 with a port of the kernel's choice.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What an in-process target does with the bytes it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Sends every byte back.
    Echo,
    /// Discards and counts, with splice(2) where the socket allows it.
    Sink,
    /// Discards and counts through a user-space buffer (`--copy`).
    CopySink,
}

/// Starts `kind` on `bind` (default 127.0.0.1), port 0; the sinks add what they receive to
/// `counter`. It serves until the runtime ends.
pub async fn start(
    kind: Target,
    counter: Arc<AtomicU64>,
    bind: Option<std::net::IpAddr>,
) -> std::io::Result<SocketAddr> {
    let ip = bind.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let l = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                // Out of descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let counter = counter.clone();
            tokio::spawn(serve(kind, s, counter));
        }
    });
    Ok(addr)
}

async fn serve(kind: Target, mut s: TcpStream, counter: Arc<AtomicU64>) {
    match kind {
        Target::Echo => {
            let _ = s.set_nodelay(true);
            let mut buf = [0u8; 2048];
            while let Ok(n @ 1..) = s.read(&mut buf).await {
                let Some(chunk) = buf.get(..n) else { break };
                if s.write_all(chunk).await.is_err() {
                    break;
                }
            }
        }
        Target::Sink | Target::CopySink => {
            // Zero-copy discard; a socket splice cannot take falls back to reading.
            if kind == Target::Sink && crate::zerocopy::sink(&s, &counter).await.is_ok() {
                return;
            }
            let mut buf = vec![0u8; 256 * 1024];
            while let Ok(n @ 1..) = s.read(&mut buf).await {
                counter.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
}

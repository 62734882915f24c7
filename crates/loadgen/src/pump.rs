//! The cost of the data path itself: loopback sessions through `hasocks_net::copy::pump` (buffer copy
//! or splice(2)), measured without any SOCKS.
//!
//! Source and sink are plain blocking threads; the pump runs on a current-thread tokio runtime
//! (one core, as one worker of a server would), so the figures compare the pump's cost.
//! Besides wall-clock time each run gives the CPU time of the pump thread (from
//! /proc/thread-self/schedstat), which stays meaningful on a loaded machine.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hasocks_net::copy::{pump, set_splice, CopyOpts, CopyReport, EndReason};
use hasocks_net::sock::{connect_tcp, listen_tcp};

/// Why a pump run failed.
#[derive(Debug, thiserror::Error)]
pub enum PumpError {
    /// A socket or the runtime failed.
    #[error("{0}: {1}")]
    Io(&'static str, io::Error),
    /// A session ended otherwise than by both sides closing, or moved the wrong count.
    #[error("a session moved {moved} bytes of {want} ({end:?})")]
    Short {
        /// Bytes moved.
        moved: u64,
        /// Bytes expected.
        want: u64,
        /// How the session ended.
        end: EndReason,
    },
    /// A client thread or a pump task panicked.
    #[error("a load thread or pump task failed")]
    Worker,
}

/// One run's figures.
#[derive(Debug, Clone, Copy)]
pub struct PumpRun {
    /// Wall-clock seconds.
    pub seconds: f64,
    /// CPU seconds of the pump thread.
    pub cpu_seconds: f64,
}

/// What to pump.
#[derive(Debug, Clone, Copy)]
pub enum PumpLoad {
    /// `streams` sessions uploading `bytes` each at once.
    Bulk {
        /// Bytes per stream.
        bytes: u64,
        /// Streams at once.
        streams: usize,
    },
    /// `sessions` short sessions (1 KiB up, 1 KiB down) from 4 sequential client threads.
    Short {
        /// Sessions.
        sessions: usize,
    },
}

/// Runs `load` once through the pump, with splice(2) or the buffer copy.
pub fn run(load: PumpLoad, splice: bool) -> Result<PumpRun, PumpError> {
    set_splice(splice);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PumpError::Io("runtime", e))?;
    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    match load {
        PumpLoad::Bulk { bytes, streams } => rt.block_on(bulk(bytes, streams))?,
        PumpLoad::Short { sessions } => rt.block_on(short(sessions))?,
    }
    Ok(PumpRun {
        seconds: start.elapsed().as_secs_f64(),
        cpu_seconds: thread_cpu_ns().saturating_sub(cpu0) as f64 / 1e9,
    })
}

fn loopback() -> SocketAddr {
    SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)
}

fn io(what: &'static str) -> impl Fn(io::Error) -> PumpError {
    move |e| PumpError::Io(what, e)
}

/// Accepts `sessions` connections on `front`, pumps each to `sink`, checks what each moved.
async fn pump_all(
    front: tokio::net::TcpListener,
    sink: SocketAddr,
    sessions: usize,
    moved: fn(&CopyReport) -> u64,
    want: u64,
) -> Result<(), PumpError> {
    let mut pumps = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let (a, _) = front.accept().await.map_err(io("front accept"))?;
        pumps.push(tokio::spawn(async move {
            let b = connect_tcp(sink, None, Duration::from_secs(5)).await?;
            Ok::<_, io::Error>(pump(a, b, CopyOpts::default()).await)
        }));
    }
    for p in pumps {
        let report = p
            .await
            .map_err(|_| PumpError::Worker)?
            .map_err(io("connect sink"))?;
        if report.end != EndReason::Closed || moved(&report) != want {
            return Err(PumpError::Short {
                moved: moved(&report),
                want,
                end: report.end,
            });
        }
    }
    Ok(())
}

async fn bulk(per_stream: u64, streams: usize) -> Result<(), PumpError> {
    let sink = TcpListener::bind(loopback()).map_err(io("sink"))?;
    let sink_addr = sink.local_addr().map_err(io("sink"))?;
    std::thread::spawn(move || {
        for mut conn in sink.incoming().take(streams).flatten() {
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 256 * 1024];
                while conn.read(&mut buf).is_ok_and(|n| n > 0) {}
            });
        }
    });
    let front = listen_tcp(loopback()).map_err(io("front"))?;
    let front_addr = front.local_addr().map_err(io("front"))?;
    let clients: Vec<JoinHandle<io::Result<()>>> = (0..streams)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(front_addr)?;
                let buf = vec![0x5au8; 256 * 1024];
                let mut left = per_stream;
                while left > 0 {
                    let n = left.min(buf.len() as u64) as usize;
                    c.write_all(buf.get(..n).unwrap_or_default())?;
                    left -= n as u64;
                }
                c.shutdown(std::net::Shutdown::Write)?;
                c.read_to_end(&mut Vec::new())?;
                Ok(())
            })
        })
        .collect();
    pump_all(front, sink_addr, streams, |r| r.a_to_b, per_stream).await?;
    join(clients)
}

async fn short(sessions: usize) -> Result<(), PumpError> {
    const THREADS: usize = 4;
    let sink = TcpListener::bind(loopback()).map_err(io("sink"))?;
    let sink_addr = sink.local_addr().map_err(io("sink"))?;
    for _ in 0..THREADS {
        let sink = sink.try_clone().map_err(io("sink"))?;
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
    let front = listen_tcp(loopback()).map_err(io("front"))?;
    let front_addr = front.local_addr().map_err(io("front"))?;
    let clients: Vec<JoinHandle<io::Result<()>>> = (0..THREADS)
        .map(|t| {
            let n = sessions / THREADS + usize::from(t < sessions % THREADS);
            std::thread::spawn(move || {
                let mut rest = Vec::new();
                for _ in 0..n {
                    let mut c = TcpStream::connect(front_addr)?;
                    c.write_all(&[7u8; 1024])?;
                    rest.clear();
                    c.read_to_end(&mut rest)?;
                }
                Ok(())
            })
        })
        .collect();
    pump_all(front, sink_addr, sessions, |r| r.b_to_a, 1024).await?;
    join(clients)
}

fn join(clients: Vec<JoinHandle<io::Result<()>>>) -> Result<(), PumpError> {
    for c in clients {
        c.join()
            .map_err(|_| PumpError::Worker)?
            .map_err(io("client"))?;
    }
    Ok(())
}

/// CPU time of the calling thread in nanoseconds (first field of schedstat).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|f| f.parse().ok()))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_and_short_sessions_move_every_byte_with_copy_and_with_splice() {
        for splice in [false, true] {
            let r = run(
                PumpLoad::Bulk {
                    bytes: 1 << 20,
                    streams: 2,
                },
                splice,
            )
            .unwrap();
            assert!(r.seconds > 0.0);
            run(PumpLoad::Short { sessions: 8 }, splice).unwrap();
        }
    }
}

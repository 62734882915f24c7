//! Load as an operator's clients make it, for failover, reload and upgrade tests: many
//! clients running short SOCKS5 CONNECT sessions (64 bytes echoed each) in a loop, and long
//! sessions that stream checksummed chunks, with every failure counted and refusals (nothing
//! listening) told apart.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hasocks_socks_wire::TargetAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::SessionError;

/// The budget of one session's connect and handshake, and of each echo.
const STEP: Duration = Duration::from_secs(10);

/// Counters of a load.
#[derive(Default, Debug)]
pub struct Tally {
    /// Sessions that echoed their bytes.
    pub ok: AtomicU64,
    /// Sessions that failed after connecting (no reply, a refusal reply, a cut, wrong bytes).
    pub failed: AtomicU64,
    /// Connections refused (nothing listening).
    pub refused: AtomicU64,
    /// The first error seen.
    pub first_error: Mutex<Option<String>>,
}

impl Tally {
    fn fail(&self, e: SessionError) {
        if e.is_connect() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut f) = self.first_error.lock() {
            f.get_or_insert_with(|| e.to_string());
        }
    }

    /// (ok, failed, refused).
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }

    /// The first error, for assertion messages.
    pub fn first(&self) -> Option<String> {
        self.first_error.lock().ok().and_then(|f| f.clone())
    }
}

/// SOCKS5 CONNECT through `proxy` to `target`.
async fn connect(proxy: SocketAddr, target: SocketAddr) -> Result<TcpStream, SessionError> {
    let (s, _) = hasocks_probe::socks5_connect(proxy, &TargetAddr::Ip(target), None, STEP).await?;
    Ok(s)
}

/// One short session: SOCKS5 CONNECT through `proxy` to the echo `target`, 64 bytes echoed.
pub async fn short_session(proxy: SocketAddr, target: SocketAddr, n: u64, t: &Tally) {
    let mut s = match connect(proxy, target).await {
        Ok(s) => s,
        Err(e) => return t.fail(e),
    };
    let msg: Vec<u8> = (0..64)
        .map(|i| (n as u8).wrapping_mul(31).wrapping_add(i))
        .collect();
    let mut back = vec![0u8; 64];
    let r = tokio::time::timeout(STEP, async {
        s.write_all(&msg).await?;
        s.read_exact(&mut back).await
    })
    .await;
    match r {
        Ok(Ok(_)) if back == msg => {
            t.ok.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Ok(_)) => t.fail(SessionError::EchoMismatch),
        Ok(Err(e)) => t.fail(SessionError::Io("echo", e)),
        Err(_) => t.fail(SessionError::Timeout("echo")),
    }
}

/// What a long session moved: a checksum of the bytes sent, one of the bytes that came back,
/// and the byte count (equal checksums: nothing was lost, added or changed).
pub type LongResult = Result<(u64, u64, u64), SessionError>;

/// A long session: 1 KiB chunks echoed every 20 ms until `stop`, every byte checksummed.
pub async fn long_session(
    proxy: SocketAddr,
    target: SocketAddr,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> LongResult {
    let mut s = connect(proxy, target).await?;
    let (mut sent_sum, mut got_sum, mut bytes) = (0u64, 0u64, 0u64);
    let mut x = seed | 1;
    while !stop.load(Ordering::Relaxed) {
        let chunk: Vec<u8> = (0..1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        s.write_all(&chunk)
            .await
            .map_err(|e| SessionError::Io("write", e))?;
        let mut back = vec![0u8; chunk.len()];
        tokio::time::timeout(STEP, s.read_exact(&mut back))
            .await
            .map_err(|_| SessionError::Timeout("echo"))?
            .map_err(|e| SessionError::Io("read", e))?;
        for (a, b) in chunk.iter().zip(&back) {
            sent_sum = sent_sum.wrapping_mul(131).wrapping_add(u64::from(*a));
            got_sum = got_sum.wrapping_mul(131).wrapping_add(u64::from(*b));
        }
        bytes += chunk.len() as u64;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((sent_sum, got_sum, bytes))
}

/// Clients looping short sessions and long sessions, all through one proxy address.
pub struct Mix {
    /// The counters of the short sessions.
    pub tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    stop_long: Arc<AtomicBool>,
    clients: Vec<JoinHandle<()>>,
    longs: Vec<JoinHandle<LongResult>>,
}

impl Mix {
    /// Starts `clients` short-session loops and `longs` long sessions.
    pub fn start(proxy: SocketAddr, target: SocketAddr, clients: u64, longs: u64) -> Mix {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_long = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let clients = (0..clients)
            .map(|c| {
                let (stop, tally) = (stop.clone(), tally.clone());
                tokio::spawn(async move {
                    let mut n = c * 1_000_000;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        short_session(proxy, target, n, &tally).await;
                    }
                })
            })
            .collect();
        let longs = (0..longs)
            .map(|i| tokio::spawn(long_session(proxy, target, 0x9e37 + i, stop_long.clone())))
            .collect();
        Mix {
            tally,
            stop,
            stop_long,
            clients,
            longs,
        }
    }

    /// Waits until `n` more short sessions have passed; false if they did not within `within`.
    pub async fn pace(&self, n: u64, within: Duration) -> bool {
        let want = self.tally.ok.load(Ordering::Relaxed) + n;
        let end = tokio::time::Instant::now() + within;
        while self.tally.ok.load(Ordering::Relaxed) < want {
            if tokio::time::Instant::now() >= end {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Stops the long sessions and returns what each moved.
    pub async fn finish_longs(&mut self) -> Vec<LongResult> {
        self.stop_long.store(true, Ordering::Relaxed);
        let mut out = Vec::new();
        for l in self.longs.drain(..) {
            out.push(l.await.unwrap_or_else(|e| Err(e.into())));
        }
        out
    }

    /// Stops everything; returns (ok, failed, refused) of the short sessions.
    pub async fn finish(mut self) -> (u64, u64, u64) {
        let _ = self.finish_longs().await;
        self.stop.store(true, Ordering::Relaxed);
        for c in self.clients.drain(..) {
            let _ = c.await;
        }
        self.tally.counts()
    }
}

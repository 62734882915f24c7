//! A listener that many end-to-end checks share: each check's inbound connection is handed to
//! the check that sent its first [`PROBE_BYTES`] (random, so they name the check). One
//! long-lived socket instead of one listener per check of every host: a relay checking many
//! hosts often needs no descriptor and no port for listening again and again.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::e2e::PROBE_BYTES;

/// How long an inbound connection may take to send its token.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(5);

type Token = [u8; PROBE_BYTES];
type Pending = Arc<Mutex<HashMap<Token, oneshot::Sender<TcpStream>>>>;

/// The shared listener. Its accept loop runs until it is dropped.
#[derive(Debug)]
pub struct Rendezvous {
    addr: SocketAddr,
    pending: Pending,
    /// When the accept loop last failed for lack of resources (`Instant` as ms since
    /// `born`, +1; 0 = never).
    troubled_ms: Arc<AtomicU64>,
    born: Instant,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Rendezvous {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Rendezvous {
    /// Listens on `ip`, an ephemeral port, and starts accepting on the current runtime.
    pub async fn bind(ip: IpAddr) -> io::Result<Rendezvous> {
        let listener = TcpListener::bind((ip, 0)).await?;
        let addr = listener.local_addr()?;
        let pending: Pending = Arc::default();
        let troubled_ms = Arc::new(AtomicU64::new(0));
        let born = Instant::now();
        let task = tokio::spawn(accept(listener, pending.clone(), troubled_ms.clone(), born));
        Ok(Rendezvous {
            addr,
            pending,
            troubled_ms,
            born,
            task,
        })
    }

    /// Where checks send their proxy's connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for the connection whose first bytes are `token`; dropping the waiter forgets it.
    pub(crate) fn expect(&self, token: Token) -> Waiter<'_> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(token, tx);
        }
        Waiter {
            rv: self,
            token,
            rx,
        }
    }

    /// Whether accepting failed for lack of resources (descriptors, memory) since `t`: a
    /// check that then saw no inbound connection cannot blame the host.
    pub fn troubled_since(&self, t: Instant) -> bool {
        let at = self.troubled_ms.load(Ordering::Relaxed);
        let since = u64::try_from(t.saturating_duration_since(self.born).as_millis()).unwrap_or(0);
        at > 0 && at > since
    }
}

/// A check waiting for its inbound connection.
pub(crate) struct Waiter<'a> {
    rv: &'a Rendezvous,
    token: Token,
    rx: oneshot::Receiver<TcpStream>,
}

impl Waiter<'_> {
    /// The inbound connection (its token already read), or None if the rendezvous stopped.
    pub async fn arrive(&mut self) -> Option<TcpStream> {
        (&mut self.rx).await.ok()
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        if let Ok(mut p) = self.rv.pending.lock() {
            p.remove(&self.token);
        }
    }
}

async fn accept(listener: TcpListener, pending: Pending, troubled: Arc<AtomicU64>, born: Instant) {
    loop {
        match listener.accept().await {
            Ok((mut s, _)) => {
                let pending = pending.clone();
                tokio::spawn(async move {
                    let mut token = [0u8; PROBE_BYTES];
                    let read = tokio::time::timeout(TOKEN_TIMEOUT, s.read_exact(&mut token)).await;
                    if !matches!(read, Ok(Ok(_))) {
                        return;
                    }
                    let waiter = pending.lock().ok().and_then(|mut p| p.remove(&token));
                    // An unknown token (a late or foreign connection) is simply closed.
                    if let Some(tx) = waiter {
                        let _ = tx.send(s);
                    }
                });
            }
            Err(e) => {
                if is_resource(&e) {
                    let ms = u64::try_from(born.elapsed().as_millis()).unwrap_or(0) + 1;
                    troubled.store(ms, Ordering::Relaxed);
                }
                // Out of descriptors, most likely: wait rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Out of descriptors, buffers or memory.
fn is_resource(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        Errno::from_io_error(e),
        Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)
    )
}

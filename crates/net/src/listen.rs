//! An accept loop that survives file-descriptor and memory exhaustion instead of failing.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use rustix::io::Errno;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::ratelog::{more, Folded};

/// First back-off step after a resource error.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest back-off step.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Accepts connections; on EMFILE/ENFILE/ENOBUFS/ENOMEM it backs off (10 ms doubling to 1 s)
/// instead of failing, and logs folded (one line per 10 s with a count, however fast the
/// failures come); other transient errors (ECONNABORTED etc.) are skipped.
#[derive(Debug)]
pub struct Acceptor {
    listener: TcpListener,
    stats: Arc<AcceptStats>,
    /// Current back-off step; zero when the last accept succeeded.
    backoff: Duration,
    /// Errors seen in the current burst (for the "accepting again" log line).
    burst_errors: u64,
    /// How accepted sockets get TCP_NODELAY.
    nodelay: NoDelay,
    /// Accept failures, logged folded.
    failures: Folded,
    /// Recoveries after failures, logged folded.
    recoveries: Folded,
}

/// Whether accepted sockets inherit TCP_NODELAY from the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoDelay {
    /// Set on the listener; the first accepted socket tells whether it was inherited.
    Unknown,
    /// Accepted sockets have it already.
    Inherited,
    /// Set on each accepted socket.
    PerSocket,
}

/// Counters of an `Acceptor`, readable while it runs (for metrics and tests).
#[derive(Debug, Default)]
pub struct AcceptStats {
    accepted: AtomicU64,
    resource_errors: AtomicU64,
}

impl AcceptStats {
    /// Connections handed out so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Accept failures for lack of fds or memory (each one caused a back-off step).
    pub fn resource_errors(&self) -> u64 {
        self.resource_errors.load(Ordering::Relaxed)
    }
}

/// How an accept error is handled.
#[derive(Debug, PartialEq, Eq)]
enum ErrorClass {
    /// Out of fds or memory: wait and retry; the pending connection stays queued.
    Resource,
    /// A problem of that one connection: skip it at once.
    Connection,
    /// Not expected on a healthy listener; back off so that it cannot spin.
    Other,
}

fn classify(e: &io::Error) -> ErrorClass {
    match Errno::from_io_error(e) {
        Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM) => ErrorClass::Resource,
        Some(
            Errno::CONNABORTED
            | Errno::CONNRESET
            | Errno::PROTO
            | Errno::PERM
            | Errno::INTR
            | Errno::AGAIN
            | Errno::TIMEDOUT
            | Errno::HOSTUNREACH
            | Errno::NETUNREACH
            | Errno::HOSTDOWN
            | Errno::NETDOWN
            | Errno::NONET
            | Errno::OPNOTSUPP,
        ) => ErrorClass::Connection,
        _ => ErrorClass::Other,
    }
}

impl Acceptor {
    /// Wraps a listener (e.g. from `sock::listen_tcp`).
    pub fn new(listener: TcpListener) -> Self {
        let nodelay = match socket2::SockRef::from(&listener).set_nodelay(true) {
            Ok(()) => NoDelay::Unknown,
            Err(e) => {
                tracing::debug!("TCP_NODELAY on the listener: {e}");
                NoDelay::PerSocket
            }
        };
        Acceptor {
            nodelay,
            ..Acceptor::new_untouched(listener)
        }
    }

    /// The acceptor state, the listener's options untouched.
    fn new_untouched(listener: TcpListener) -> Self {
        Acceptor {
            listener,
            stats: Arc::default(),
            backoff: Duration::ZERO,
            burst_errors: 0,
            nodelay: NoDelay::Unknown,
            failures: Folded::default(),
            recoveries: Folded::default(),
        }
    }

    /// Wraps a listener whose owner set TCP_NODELAY on it (on or off, as relayd's `tcp {
    /// [no] nodelay }` asks): accepted sockets keep what they inherit from it.
    pub fn inheriting(listener: TcpListener) -> Self {
        Acceptor {
            nodelay: NoDelay::Inherited,
            ..Acceptor::new_untouched(listener)
        }
    }

    /// Makes sure `stream` has TCP_NODELAY. Linux copies it from the listener to the accepted
    /// socket, which the first accepted socket confirms; from then on no per-connection
    /// setsockopt(2) is needed.
    fn nodelay(&mut self, stream: &TcpStream, peer: SocketAddr) {
        if self.nodelay == NoDelay::Unknown {
            self.nodelay = if stream.nodelay().unwrap_or(false) {
                NoDelay::Inherited
            } else {
                NoDelay::PerSocket
            };
        }
        if self.nodelay == NoDelay::PerSocket {
            if let Err(e) = stream.set_nodelay(true) {
                // The peer may already be gone; the session will notice on its own.
                tracing::debug!(%peer, "TCP_NODELAY: {e}");
            }
        }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Shared counters of this acceptor.
    pub fn stats(&self) -> Arc<AcceptStats> {
        Arc::clone(&self.stats)
    }

    /// Next connection (TCP_NODELAY set); None once `cancel` fires.
    pub async fn accept(&mut self, cancel: &CancellationToken) -> Option<(TcpStream, SocketAddr)> {
        loop {
            if cancel.is_cancelled() {
                return None;
            }
            // A busy listener has a connection waiting: take it without first registering with
            // `cancel` (a lock shared by every accept loop of the token).
            let res = match poll_fn(|cx| Poll::Ready(self.listener.poll_accept(cx))).await {
                Poll::Ready(r) => r,
                Poll::Pending => tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return None,
                    r = self.listener.accept() => r,
                },
            };
            let err = match res {
                Ok((stream, peer)) => {
                    if self.burst_errors > 0 {
                        if let Some(n) = self.recoveries.hit() {
                            tracing::info!(
                                "accepting connections again after {} failed accepts{}",
                                self.burst_errors,
                                more(n)
                            );
                        }
                    }
                    self.backoff = Duration::ZERO;
                    self.burst_errors = 0;
                    self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                    self.nodelay(&stream, peer);
                    return Some((stream, peer));
                }
                Err(e) => e,
            };
            match classify(&err) {
                ErrorClass::Connection => {
                    tracing::debug!("accept skipped a connection: {err}");
                    continue;
                }
                class => {
                    if class == ErrorClass::Resource {
                        self.stats.resource_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(n) = self.failures.hit() {
                        tracing::warn!(
                            ?class,
                            "accept failed: {err}; backing off until resources free up{}",
                            more(n)
                        );
                    }
                    self.burst_errors += 1;
                    self.backoff = if self.backoff.is_zero() {
                        BACKOFF_MIN
                    } else {
                        (self.backoff * 2).min(BACKOFF_MAX)
                    };
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => return None,
                        _ = tokio::time::sleep(self.backoff) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_exhaustion_is_a_resource_error() {
        let e = io::Error::from_raw_os_error(Errno::MFILE.raw_os_error());
        assert_eq!(classify(&e), ErrorClass::Resource);
    }

    #[test]
    fn aborted_connection_is_skipped() {
        let e = io::Error::from_raw_os_error(Errno::CONNABORTED.raw_os_error());
        assert_eq!(classify(&e), ErrorClass::Connection);
    }

    #[test]
    fn bad_descriptor_backs_off() {
        let e = io::Error::from_raw_os_error(Errno::BADF.raw_os_error());
        assert_eq!(classify(&e), ErrorClass::Other);
    }
}

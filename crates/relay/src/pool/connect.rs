//! A session's connect step: walk the candidates (the primary pool's in its mode's order, then
//! the backup pools'), each host `1 + retry` times, until one connects. Every failed connect is
//! classified once (refused, timeout, unreachable, local) and counted on its host's long-lived
//! record; a local error (this machine out of descriptors, ports, buffers, memory) is counted
//! apart and never against the host.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::io::Errno;
use tokio::net::TcpStream;

use super::{candidates, Forward, PoolHost};
use crate::records::RelayCounters;
use hasocks_ctl_proto::relay::{ConnectErrors, ConnectReason};

/// Why a session's connect step reached no host (Pingora's one classified error, for the
/// relay's one step that can fail on a host).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ConnectError {
    /// No host of any pool took traffic.
    #[error("no active hosts")]
    NoneActive,
    /// Every candidate's connects failed: how many, by reason.
    #[error("connect to every active host failed: {}", .0.summary())]
    AllFailed(ConnectErrors),
}

/// The class of a failed connect, from its error.
pub(crate) fn classify(e: &io::Error) -> ConnectReason {
    // This machine ran out of something: the host was never asked.
    if hasocks_net::sock::is_local_exhaustion(e) {
        return ConnectReason::Local;
    }
    match Errno::from_io_error(e) {
        Some(Errno::CONNREFUSED | Errno::CONNRESET | Errno::CONNABORTED) => ConnectReason::Refused,
        Some(Errno::TIMEDOUT) => ConnectReason::Timeout,
        Some(Errno::HOSTUNREACH | Errno::NETUNREACH | Errno::HOSTDOWN | Errno::NETDOWN) => {
            ConnectReason::Unreachable
        }
        // Refused by this machine before a packet left (a local firewall or policy, an
        // address family switched off, a bad local argument): not the host's doing.
        Some(
            Errno::PERM | Errno::ACCESS | Errno::AFNOSUPPORT | Errno::PROTONOSUPPORT | Errno::INVAL,
        ) => ConnectReason::Local,
        // Errors without an errno: ours (the connect timeout, a reset while connecting).
        _ => match e.kind() {
            io::ErrorKind::TimedOut => ConnectReason::Timeout,
            io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => {
                ConnectReason::Refused
            }
            io::ErrorKind::InvalidInput => ConnectReason::Local,
            // Whatever else the network answered.
            _ => ConnectReason::Unreachable,
        },
    }
}

/// Failed connects to one host by reason: part of its long-lived record.
#[derive(Debug, Default)]
pub(crate) struct ConnectCounts {
    refused: AtomicU64,
    timeout: AtomicU64,
    unreachable: AtomicU64,
    local: AtomicU64,
}

impl ConnectCounts {
    fn slot(&self, reason: ConnectReason) -> &AtomicU64 {
        match reason {
            ConnectReason::Refused => &self.refused,
            ConnectReason::Timeout => &self.timeout,
            ConnectReason::Unreachable => &self.unreachable,
            ConnectReason::Local => &self.local,
        }
    }

    /// Counts one failed connect.
    pub fn count(&self, reason: ConnectReason) {
        self.slot(reason).fetch_add(1, Ordering::Relaxed);
    }

    /// The counts as plain data.
    pub fn snapshot(&self) -> ConnectErrors {
        let mut out = ConnectErrors::default();
        for r in ConnectReason::ALL {
            *out.get_mut(r) = self.slot(r).load(Ordering::Relaxed);
        }
        out
    }
}

/// Connects to the first candidate of `forwards` that accepts (see the module): the stream
/// and its host, or why there is none. `relay` names the relay in logs; `peer` and `listen`
/// are the selection's inputs.
pub(crate) async fn connect<'a>(
    forwards: &'a [Forward],
    counters: &RelayCounters,
    relay: &str,
    peer: SocketAddr,
    listen: SocketAddr,
    tuning: &hasocks_net::sock::TcpTuning,
) -> Result<(TcpStream, &'a PoolHost), ConnectError> {
    let mut failed = ConnectErrors::default();
    let mut attempts = 0u64;
    for (fwd, host) in candidates(forwards, peer.ip(), listen) {
        for _ in 0..=host.retry {
            if attempts > 0 {
                counters.retries.fetch_add(1, Ordering::Relaxed);
                host.record.retries.fetch_add(1, Ordering::Relaxed);
            }
            attempts += 1;
            let sock =
                hasocks_net::sock::connect_tcp_tuned(host.addr, None, fwd.connect_timeout, tuning);
            match sock.await {
                Ok(s) => return Ok((s, host)),
                Err(e) => {
                    let reason = count_failure(host, &e);
                    *failed.get_mut(reason) += 1;
                    tracing::debug!(
                        "relay {relay}: connect to {} ({}) failed, {reason}: {e}",
                        host.record.key.name,
                        host.addr
                    );
                }
            }
        }
    }
    Err(if attempts == 0 {
        ConnectError::NoneActive
    } else {
        ConnectError::AllFailed(failed)
    })
}

/// Counts a failed connect on its host's record; its reason.
fn count_failure(host: &PoolHost, e: &io::Error) -> ConnectReason {
    let reason = classify(e);
    host.record.connect_errors.count(reason);
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::tests::pool_host;
    use std::time::Duration;

    fn errno(e: Errno) -> io::Error {
        io::Error::from_raw_os_error(e.raw_os_error())
    }

    #[test]
    fn every_errno_falls_in_its_class() {
        let cases = [
            (Errno::CONNREFUSED, ConnectReason::Refused),
            (Errno::CONNRESET, ConnectReason::Refused),
            (Errno::TIMEDOUT, ConnectReason::Timeout),
            (Errno::HOSTUNREACH, ConnectReason::Unreachable),
            (Errno::NETUNREACH, ConnectReason::Unreachable),
            (Errno::MFILE, ConnectReason::Local),
            (Errno::NFILE, ConnectReason::Local),
            (Errno::ADDRNOTAVAIL, ConnectReason::Local),
            (Errno::NOBUFS, ConnectReason::Local),
            (Errno::NOMEM, ConnectReason::Local),
            (Errno::PERM, ConnectReason::Local),
        ];
        for (e, want) in cases {
            assert_eq!(classify(&errno(e)), want, "{e:?}");
        }
        let ours = io::Error::new(io::ErrorKind::TimedOut, "connect timed out after 3s");
        assert_eq!(classify(&ours), ConnectReason::Timeout);
    }

    #[tokio::test]
    async fn a_refused_connect_counts_as_refused_against_the_host() {
        // A port that was just free: nothing listens there.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let host = pool_host(addr);
        let e = hasocks_net::sock::connect_tcp(addr, None, Duration::from_secs(5))
            .await
            .expect_err("nothing listens");
        assert_eq!(count_failure(&host, &e), ConnectReason::Refused);
        let got = host.record.connect_errors.snapshot();
        assert_eq!((got.refused, got.against_host()), (1, 1));
    }

    #[tokio::test]
    async fn a_connect_nobody_answers_counts_as_a_timeout() {
        // A listener with a full accept queue drops further SYNs: the connect never completes.
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        let any: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        sock.bind(&any.into()).expect("bind");
        sock.listen(0).expect("listen");
        let addr = sock
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .expect("bound");
        let mut queued = Vec::new();
        let host = pool_host(addr);
        let reason = loop {
            match hasocks_net::sock::connect_tcp(addr, None, Duration::from_millis(300)).await {
                Ok(s) => queued.push(s),
                Err(e) => break count_failure(&host, &e),
            }
            assert!(queued.len() < 64, "the accept queue never filled");
        };
        assert_eq!(reason, ConnectReason::Timeout);
        assert_eq!(host.record.connect_errors.snapshot().timeout, 1);
    }

    #[test]
    fn out_of_descriptors_never_counts_against_the_host() {
        let host = pool_host(SocketAddr::from(([127, 0, 0, 1], 9)));
        for e in [
            Errno::MFILE,
            Errno::NFILE,
            Errno::ADDRNOTAVAIL,
            Errno::NOBUFS,
        ] {
            assert_eq!(count_failure(&host, &errno(e)), ConnectReason::Local);
        }
        let got = host.record.connect_errors.snapshot();
        assert_eq!((got.local, got.against_host()), (4, 0));
    }

    #[test]
    fn the_session_error_names_every_reason() {
        let e = ConnectError::AllFailed(ConnectErrors {
            refused: 2,
            timeout: 1,
            ..ConnectErrors::default()
        });
        assert_eq!(
            e.to_string(),
            "connect to every active host failed: 2 refused, 1 timeout"
        );
    }
}

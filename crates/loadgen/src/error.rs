//! The two ways a load goes wrong: one session fails (counted, the load goes on) or the load
//! cannot start at all.

use std::io;
use std::net::{IpAddr, SocketAddr};

use hasocks_probe::{AddressError, ProbeError};

/// Why one session (or stream, or association) failed. Counted, never fatal to the load.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The TCP connection (to the proxy, or to the target with `--direct`) failed.
    #[error("connect failed: {0}")]
    Connect(io::Error),
    /// A direct load whose target name did not resolve here.
    #[error("no target address")]
    NoTargetAddress,
    /// The deadline passed during the named phase.
    #[error("timeout during {0}")]
    Timeout(&'static str),
    /// The SOCKS handshake failed.
    #[error("{}", .0.short())]
    Socks(ProbeError),
    /// A read, write or send on an open session failed.
    #[error("{0}: {1}")]
    Io(&'static str, io::Error),
    /// The peer closed a stream we were still sending on.
    #[error("stream closed")]
    Closed,
    /// The echo came back different.
    #[error("echo mismatch")]
    EchoMismatch,
    /// The proxy's UDP relay address is a name, not an address to send to.
    #[error("BND is a name")]
    NamedRelay,
    /// A worker task ended abnormally.
    #[error("task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl SessionError {
    /// True when no connection was made at all (nothing listening, say): a failover load
    /// counts these apart from sessions that broke after connecting.
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            SessionError::Connect(_) | SessionError::Socks(ProbeError::Connect(_))
        )
    }
}

impl From<ProbeError> for SessionError {
    fn from(e: ProbeError) -> Self {
        SessionError::Socks(e)
    }
}

/// Why a load could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Neither a SOCKS server nor `--direct`.
    #[error("give the SOCKS server with -s HOST:PORT, or --direct")]
    NoServer,
    /// A mode that needs a SOCKS server was asked to go direct.
    #[error("{0} mode needs a SOCKS server (-s HOST:PORT), not --direct")]
    NeedsServer(&'static str),
    /// An option that the mode does not use.
    #[error("{option} is not used by {mode} mode")]
    NotUsed {
        /// The option.
        option: &'static str,
        /// The mode.
        mode: &'static str,
    },
    /// `-U` without a ':'.
    #[error("-U wants USER:PASS")]
    Credentials,
    /// `--source` of one family towards an address of the other.
    #[error("--source {ip} and {to} are of different address families")]
    Family {
        /// The source address asked for.
        ip: IpAddr,
        /// Where the connections go.
        to: SocketAddr,
    },
    /// An address that does not parse or resolve.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// The in-process target, or another local socket, could not be opened.
    #[error("{0}: {1}")]
    Local(&'static str, io::Error),
}

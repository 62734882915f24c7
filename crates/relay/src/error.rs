//! Errors of starting and reloading a relay, of control commands, and why it is not ready.

use std::io;
use std::net::SocketAddr;

/// Why a relay could not start, or why a reload was refused (the running config then stays
/// exactly as it was).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The config file does not parse (`file:line:col: message`).
    #[error(transparent)]
    Config(#[from] hasocks_conf::ConfError),
    /// A `listen on` address could not be bound.
    #[error("relay {relay}: cannot listen on {addr}: {source}")]
    Bind {
        /// Relay name.
        relay: String,
        /// The address as configured (`addr:port`).
        addr: String,
        /// The OS error.
        source: io::Error,
    },
    /// A host or listen address did not resolve.
    #[error("cannot resolve {name}: {reason}")]
    Resolve {
        /// The name as written.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// A relay forwards to a table that is not defined.
    #[error("relay {relay}: no such table <{table}>")]
    NoSuchTable {
        /// Relay name.
        relay: String,
        /// Table name.
        table: String,
    },
    /// Two relays listen on the same address.
    #[error("relays {first} and {second} both listen on {addr}")]
    SharedListen {
        /// The address.
        addr: SocketAddr,
        /// The relay that claimed it first.
        first: String,
        /// The other one.
        second: String,
    },
    /// A worker thread (or its runtime) could not be started.
    #[error("cannot start a relay worker thread: {0}")]
    Worker(io::Error),
    /// A redirect cannot be put into the kernel (no CAP_NET_ADMIN, no nft, an IPv6 address).
    #[error("{at}: redirect {name}: {reason}")]
    Redirect {
        /// `file:line:col` of its `redirect` keyword.
        at: String,
        /// Its name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The relay is shutting down: nothing is reloaded any more.
    #[error("the relay is shutting down")]
    Stopped,
}

impl RelayError {
    /// A short stable word for the kind of error (the control protocol sends it).
    pub fn kind(&self) -> &'static str {
        match self {
            RelayError::Config(_) => "config",
            RelayError::Bind { .. } => "bind",
            RelayError::Resolve { .. } => "resolve",
            RelayError::NoSuchTable { .. } => "no_such_table",
            RelayError::SharedListen { .. } => "shared_listen",
            RelayError::Worker(_) => "worker",
            RelayError::Redirect { .. } => "redirect",
            RelayError::Stopped => "stopped",
        }
    }
}

/// Why the relay should not get traffic now (`/ready` answers 503 with it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct NotReady(pub Vec<Unready>);

/// One reason the relay is not ready.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unready {
    /// The config has no relay block.
    #[error("no relay configured")]
    NoRelay,
    /// A listen address of a relay has no socket.
    #[error("relay {relay}: {addr} not bound")]
    NotBound {
        /// Relay name.
        relay: String,
        /// The configured address.
        addr: SocketAddr,
    },
    /// `relay drain` is in effect (sessions are still served).
    #[error("draining")]
    Draining,
    /// An enabled relay has no pool with a host that takes sessions.
    #[error("relay {relay}: no host up")]
    NoHostUp {
        /// Relay name.
        relay: String,
    },
}

/// Why a control command failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// No relay, table or host has that name or id.
    #[error("no {what} {name}")]
    NotFound {
        /// `host`, `table` or `relay`.
        what: &'static str,
        /// The name or id given.
        name: String,
    },
    /// A reload was refused.
    #[error("reload refused, the running config stays: {0}")]
    Reload(#[from] RelayError),
}

//! Errors of starting a relay.

use std::io;

/// Why a relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
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
    /// A worker thread (or its runtime) could not be started.
    #[error("cannot start a relay worker thread: {0}")]
    Worker(io::Error),
}

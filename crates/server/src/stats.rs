//! The server's counters: long-lived (they survive reloads, which swap only the rules),
//! atomic, and read as a plain snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of a running server.
#[derive(Debug, Default)]
pub struct Stats {
    accepted: AtomicU64,
}

impl Stats {
    /// Counts an accepted connection.
    pub(crate) fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections accepted since start.
    pub fn accepted_total(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

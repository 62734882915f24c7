//! What a server's control socket carries: its summary (`show summary`) and reload report.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// A server's `show summary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// Process id.
    pub pid: u32,
    /// The config generation in effect (1 at start, +1 per reload).
    pub generation: u64,
    /// Addresses listened on.
    pub listeners: Vec<SocketAddr>,
    /// Sessions open now (UDP associations included).
    pub sessions_open: u64,
    /// The connection caps and their use.
    pub admission: AdmissionStatus,
}

/// What a server's reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerReloadReport {
    /// The generation now in effect.
    pub generation: u64,
    /// Listening addresses kept (the same sockets).
    pub kept: usize,
    /// Listening addresses opened.
    pub opened: Vec<SocketAddr>,
    /// Listening addresses closed (their sessions run to their end).
    pub closed: Vec<SocketAddr>,
}

/// The caps in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caps {
    /// Connections at most (negotiating or in session).
    pub total: u32,
    /// Of those, still negotiating at most.
    pub negotiating: u32,
    /// Still negotiating from one address at most (0 = no limit).
    pub negotiating_per_source: u32,
}

/// Admission figures, for metrics, the status page and `/status.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionStatus {
    /// The caps.
    pub caps: Caps,
    /// Connections holding a slot now.
    pub connections: u32,
    /// Of those, still negotiating.
    pub negotiating: u32,
    /// Connections closed at once: their address had too many negotiating.
    pub refused_per_source: u64,
    /// Negotiating connections closed to make room for a new one.
    pub evicted: u64,
    /// Times an accept loop found every slot taken and waited.
    pub waits_at_cap: u64,
}

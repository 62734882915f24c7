//! The public, plain-data view of a running relay (what `hasocks ctl show ...` prints).

use std::net::SocketAddr;
use std::time::Duration;

/// Health state of a host, as relayctl shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostState {
    /// Not checked yet: takes no traffic.
    Unknown,
    /// Last check(s) passed: takes traffic.
    Up,
    /// Failed more than `retry` checks in a row: takes no traffic.
    Down,
    /// The table (or host) is disabled.
    Disabled,
}

impl HostState {
    /// The word relayd uses in logs and relayctl.
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Unknown => "unknown",
            HostState::Up => "up",
            HostState::Down => "down",
            HostState::Disabled => "disabled",
        }
    }
}

/// One host of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStatus {
    /// Name as written in the table.
    pub name: String,
    /// Resolved address and port the relay connects to.
    pub addr: SocketAddr,
    /// Current state.
    pub state: HostState,
    /// Checks run so far.
    pub checks: u64,
    /// Checks passed so far.
    pub ups: u64,
    /// Failed checks tolerated in a row right now (relayd's "retries").
    pub failed_in_row: u32,
    /// Last check result message ("tcp connect ok", "tcp connect failed", ...).
    pub last_error: Option<String>,
    /// Duration of the last check in milliseconds.
    pub last_ms: Option<u64>,
    /// Sessions open to this host now.
    pub open: u64,
}

impl HostStatus {
    /// Availability in percent (ups/checks), None before the first check.
    pub fn availability(&self) -> Option<f64> {
        (self.checks > 0).then(|| self.ups as f64 * 100.0 / self.checks as f64)
    }
}

/// One table instance (`name:port`, as relayctl names it).
#[derive(Debug, Clone, PartialEq)]
pub struct TableStatus {
    /// `table:port`.
    pub name: String,
    /// `disable` given.
    pub disabled: bool,
    /// Check type ("tcp", "script", ...) or None when hosts are not checked.
    pub check: Option<&'static str>,
    /// Check interval.
    pub interval: Duration,
    /// Check timeout.
    pub timeout: Duration,
    /// Hosts in table order.
    pub hosts: Vec<HostStatus>,
}

impl TableStatus {
    /// Hosts up now.
    pub fn hosts_up(&self) -> usize {
        self.hosts
            .iter()
            .filter(|h| h.state == HostState::Up)
            .count()
    }
}

/// One relay block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayStatus {
    /// Relay name.
    pub name: String,
    /// Bound listen addresses.
    pub listens: Vec<SocketAddr>,
    /// `disable` given.
    pub disabled: bool,
    /// Table instances it forwards to, primary first.
    pub tables: Vec<String>,
    /// Sessions open now.
    pub sessions_open: u64,
    /// Sessions accepted since start.
    pub sessions_total: u64,
    /// Sessions closed without reaching a host (none up, or every connect failed).
    pub sessions_failed: u64,
    /// Outgoing connect attempts that failed and were retried (same or next host).
    pub retries: u64,
}

/// A snapshot of the whole relay.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// Relays in config order.
    pub relays: Vec<RelayStatus>,
    /// Table instances in order of first use.
    pub tables: Vec<TableStatus>,
}

impl Status {
    /// The table instance named `name` (`table:port`).
    pub fn table(&self, name: &str) -> Option<&TableStatus> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The relay named `name`.
    pub fn relay(&self, name: &str) -> Option<&RelayStatus> {
        self.relays.iter().find(|r| r.name == name)
    }
}

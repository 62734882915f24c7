//! What a relay's control socket carries: the plain-data view of a running relay (what
//! `hasocks ctl show ...` prints and sends as JSON, and what tests and the status page read),
//! its reload report, the targets and actions of `host`/`table`/`relay`, and `monitor`
//! events. Times are milliseconds since the Unix epoch; durations are milliseconds.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Health state of a host, as relayctl shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostState {
    /// Not checked yet: takes no traffic.
    Unknown,
    /// Last check(s) passed: takes traffic.
    Up,
    /// Failed more than `retry` checks in a row: takes no traffic.
    Down,
    /// The table or the host is disabled.
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStatus {
    /// Id (stable while the host stays in the config).
    pub id: u32,
    /// Name as written in the table.
    pub name: String,
    /// Resolved address and port the relay connects to.
    pub addr: SocketAddr,
    /// Current state (`disabled` when the host or its table is disabled).
    pub state: HostState,
    /// `host drain` in effect: no new sessions.
    pub draining: bool,
    /// Checks that gave a verdict.
    pub checks: u64,
    /// Checks passed.
    pub ups: u64,
    /// Failed checks in a row right now.
    pub failed_in_row: u32,
    /// `retry N` of the host: failures tolerated before it goes down.
    pub retry: u32,
    /// Message of the last verdict ("tcp connect ok", "tcp connect failed", ...).
    pub last_result: Option<String>,
    /// Whether the last verdict was up (None before the first check).
    pub last_check_ok: Option<bool>,
    /// Duration of the last check, in microseconds.
    pub last_check_us: Option<u64>,
    /// When the last check finished.
    pub last_check_at_ms: Option<u64>,
    /// When the state last changed.
    pub last_change_at_ms: Option<u64>,
    /// Checks without a verdict because this machine failed (descriptors, ports...).
    pub local_errors: u64,
    /// Sessions open to this host now.
    pub open: u64,
    /// Sessions forwarded to this host.
    pub sessions: u64,
    /// Outgoing connects to this host that failed by the host's or the network's doing
    /// (refused, timed out, unreachable; not local errors).
    pub connect_failures: u64,
    /// Every failed connect to this host, by reason (local errors included).
    #[serde(default)]
    pub connect_errors: ConnectErrors,
    /// Connect attempts to this host that retried a failed one.
    pub retries: u64,
    /// Bytes from clients to this host (open sessions included).
    pub bytes_out: u64,
    /// Bytes from this host to clients (open sessions included).
    pub bytes_in: u64,
}

impl HostStatus {
    /// Failures still tolerated before the host goes down (relayd's retry count, which
    /// relayctl prints as "N retries").
    pub fn retries_left(&self) -> u32 {
        self.retry.saturating_sub(self.failed_in_row)
    }

    /// Availability in percent (ups/checks), None before the first check.
    pub fn availability(&self) -> Option<f64> {
        (self.checks > 0).then(|| self.ups as f64 * 100.0 / self.checks as f64)
    }

    /// The status word of `show summary`: the state, or `draining` for an up host being
    /// drained.
    pub fn status_word(&self) -> &'static str {
        if self.draining && self.state == HostState::Up {
            "draining"
        } else {
            self.state.as_str()
        }
    }
}

/// Why a connect to a host failed: the classes of Pingora's connect errors, plus ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectReason {
    /// The host answered with a reset: nothing listens there (or it refuses us).
    Refused,
    /// No answer within the connect timeout.
    Timeout,
    /// The network said there is no way there (host or net unreachable, no route).
    Unreachable,
    /// This machine could not make the attempt (out of descriptors, ports, buffers or
    /// memory; a local policy): no verdict on the host, never counted against it.
    Local,
}

impl ConnectReason {
    /// Every reason, in the order metrics and ctl list them.
    pub const ALL: [ConnectReason; 4] = [
        ConnectReason::Refused,
        ConnectReason::Timeout,
        ConnectReason::Unreachable,
        ConnectReason::Local,
    ];

    /// The word of logs, metric labels and ctl.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectReason::Refused => "refused",
            ConnectReason::Timeout => "timeout",
            ConnectReason::Unreachable => "unreachable",
            ConnectReason::Local => "local",
        }
    }

    /// Whether a failure of this kind says something about the host.
    pub fn against_host(self) -> bool {
        self != ConnectReason::Local
    }
}

impl std::fmt::Display for ConnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Failed connects to one host, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectErrors {
    /// Refused (reset) by the host.
    pub refused: u64,
    /// Timed out.
    pub timeout: u64,
    /// Host or network unreachable.
    pub unreachable: u64,
    /// Local errors of this machine (not the host's).
    pub local: u64,
}

impl ConnectErrors {
    /// The count of `reason`.
    pub fn get(&self, reason: ConnectReason) -> u64 {
        match reason {
            ConnectReason::Refused => self.refused,
            ConnectReason::Timeout => self.timeout,
            ConnectReason::Unreachable => self.unreachable,
            ConnectReason::Local => self.local,
        }
    }

    /// A mutable count of `reason` (for building one).
    pub fn get_mut(&mut self, reason: ConnectReason) -> &mut u64 {
        match reason {
            ConnectReason::Refused => &mut self.refused,
            ConnectReason::Timeout => &mut self.timeout,
            ConnectReason::Unreachable => &mut self.unreachable,
            ConnectReason::Local => &mut self.local,
        }
    }

    /// Failures that count against the host (every reason but local).
    pub fn against_host(&self) -> u64 {
        ConnectReason::ALL
            .iter()
            .filter(|r| r.against_host())
            .map(|r| self.get(*r))
            .fold(0, u64::saturating_add)
    }

    /// The non-zero counts as `2 refused, 1 timeout`; empty when there are none.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = ConnectReason::ALL
            .iter()
            .filter(|r| self.get(**r) > 0)
            .map(|r| format!("{} {r}", self.get(*r)))
            .collect();
        parts.join(", ")
    }
}

/// One table instance (`name:port`, as relayctl names it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableStatus {
    /// Id.
    pub id: u32,
    /// `table:port`.
    pub name: String,
    /// Disabled by the config or the control socket.
    pub disabled: bool,
    /// Check type ("tcp", "script", ...) or None when hosts are not checked.
    pub check: Option<String>,
    /// Check interval.
    pub interval_ms: u64,
    /// Check timeout.
    pub timeout_ms: u64,
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

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&HostStatus> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

/// One relay block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayStatus {
    /// Id.
    pub id: u32,
    /// Relay name.
    pub name: String,
    /// Bound listen addresses.
    pub listens: Vec<SocketAddr>,
    /// Disabled by the config or the control socket.
    pub disabled: bool,
    /// Table instances it forwards to, primary first.
    pub tables: Vec<String>,
    /// Sessions open now.
    pub sessions_open: u64,
    /// Connections accepted since start.
    pub sessions_total: u64,
    /// Sessions closed without reaching a host (none up, or every connect failed).
    pub sessions_failed: u64,
    /// Of those, sessions for which no host was up at all.
    pub no_host: u64,
    /// Outgoing connect attempts that failed and were retried (same or next host).
    pub retries: u64,
    /// Clients closed for sending nothing within the first-byte timeout.
    pub first_byte_timeouts: u64,
    /// Clients that closed before sending anything.
    pub silent_closed: u64,
    /// Session rates (`show relays`).
    pub rates: RateStats,
}

/// A snapshot of the whole relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The config generation in effect (1 at start, +1 per reload).
    pub generation: u64,
    /// Process id.
    pub pid: u32,
    /// When the relay started.
    pub started_at_ms: u64,
    /// The session caps and their use.
    pub admission: AdmissionStatus,
    /// `relay drain` in effect: `/ready` answers 503 (so a route health hook withdraws the
    /// route) while every session, new ones too, is still served.
    #[serde(default)]
    pub draining: bool,
    /// Sessions open now over every relay (what a drain waits to reach 0).
    #[serde(default)]
    pub sessions_open: u64,
    /// Relays in config order.
    pub relays: Vec<RelayStatus>,
    /// Table instances in order of first use.
    pub tables: Vec<TableStatus>,
    /// Redirects in config order (the kernel forwards).
    #[serde(default)]
    pub redirects: Vec<RedirectStatus>,
}

/// A redirect: relayd's layer 3 redirection, done by the kernel (nftables + conntrack).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectStatus {
    /// Its id.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Disabled by the config or the control socket.
    pub disabled: bool,
    /// `address:port` it redirects.
    pub listens: Vec<String>,
    /// Its table instances (`table:port`), primary first.
    pub tables: Vec<String>,
    /// The table new flows go to now (None: no host up).
    pub active_table: Option<String>,
}

impl RedirectStatus {
    /// relayctl's status word: `active`, `active (using backup table)`, `down` or `disabled`.
    pub fn state(&self) -> &'static str {
        match (&self.active_table, self.disabled) {
            (_, true) => "disabled",
            (None, false) => "down",
            (Some(t), false) if self.tables.first() != Some(t) => "active (using backup table)",
            _ => "active",
        }
    }
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

/// One open session (`show sessions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStatus {
    /// Session id (unique in the process).
    pub id: u64,
    /// The worker thread that serves it.
    pub worker: u32,
    /// The client's address.
    pub client: SocketAddr,
    /// The host's address.
    pub backend: SocketAddr,
    /// Relay name.
    pub relay: String,
    /// Relay id.
    pub relay_id: u32,
    /// Host id.
    pub host_id: u32,
    /// Time since the client was accepted.
    pub age_ms: u64,
    /// Time since a byte last moved.
    pub idle_ms: u64,
    /// Bytes client -> host so far.
    pub bytes_out: u64,
    /// Bytes host -> client so far.
    pub bytes_in: u64,
}

/// The interval of the session-rate counts (`show relays`), in seconds.
pub const INTERVAL_S: u64 = 60;

/// What `show relays` prints for a relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateStats {
    /// Sessions in the last full interval.
    pub last: u64,
    /// Sessions in the last hour.
    pub last_hour: u64,
    /// Sessions in the last day.
    pub last_day: u64,
    /// Average sessions per interval since start.
    pub avg: u64,
    /// Average sessions per hour since start.
    pub avg_hour: u64,
    /// Average sessions per day since start.
    pub avg_day: u64,
}

/// Admission figures, for status and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionStatus {
    /// Concurrent sessions at most.
    pub cap: u32,
    /// Sessions holding a slot now.
    pub in_use: u32,
    /// Concurrent connections from one address at most (0 = no limit).
    pub per_source: u32,
    /// Connections closed at once because their address was at its cap.
    pub refused_per_source: u64,
    /// Times an accept loop found every slot taken and waited.
    pub waits_at_cap: u64,
}

/// What a reload changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// The generation now in effect.
    pub generation: u64,
    /// Relays in the new config.
    pub relays: usize,
    /// Table instances in the new config.
    pub tables: usize,
    /// Hosts (per table instance) in the new config.
    pub hosts: usize,
    /// Hosts that are new (they start `unknown` and are checked at once).
    pub hosts_new: usize,
    /// Hosts that left the config.
    pub hosts_removed: usize,
    /// Listening addresses kept (the same sockets: nothing refused).
    pub listeners_kept: usize,
    /// Listening addresses opened.
    pub listeners_opened: usize,
    /// Listening addresses closed (their open sessions run to their end).
    pub listeners_closed: usize,
    /// Changes that take effect only at a restart.
    pub notes: Vec<String>,
}

/// What `host`/`table`/`relay` commands name: an id or a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Target {
    /// The id `show summary` prints.
    Id(u32),
    /// A name (a host also as `name:port`; a table also without `:port`).
    Name(String),
}

impl Target {
    /// An id when `s` is all digits, else a name (relayctl's rule).
    pub fn parse(s: &str) -> Target {
        match s.parse::<u32>() {
            Ok(id) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Target::Id(id),
            _ => Target::Name(s.to_string()),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Id(id) => write!(f, "{id}"),
            Target::Name(n) => f.write_str(n),
        }
    }
}

/// What `host ...` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostAction {
    /// Treat as down and stop checking it.
    Disable,
    /// Undo `disable` and `drain`; check it at once.
    Enable,
    /// No new sessions; open ones go on.
    Drain,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A host's state changed (relayctl `host_status`).
    HostStatus {
        /// Host id.
        id: u32,
        /// Host name.
        name: String,
        /// Table instance.
        table: String,
        /// The new state.
        state: HostState,
    },
    /// `host disable` (relayctl `ctl_host_disable`).
    HostDisable {
        /// Host id.
        id: u32,
        /// Host name.
        name: String,
    },
    /// `host enable`.
    HostEnable {
        /// Host id.
        id: u32,
        /// Host name.
        name: String,
    },
    /// `host drain` (ours).
    HostDrain {
        /// Host id.
        id: u32,
        /// Host name.
        name: String,
    },
    /// `table disable`.
    TableDisable {
        /// Table id.
        id: u32,
        /// Table instance name.
        name: String,
    },
    /// `table enable`.
    TableEnable {
        /// Table id.
        id: u32,
        /// Table instance name.
        name: String,
    },
    /// `relay disable` (relayctl `ctl_rdr_disable` is the redirect counterpart).
    RelayDisable {
        /// Relay id.
        id: u32,
        /// Relay name.
        name: String,
    },
    /// `relay enable`.
    RelayEnable {
        /// Relay id.
        id: u32,
        /// Relay name.
        name: String,
    },
    /// A new config generation took effect.
    Reload {
        /// Its number.
        generation: u64,
    },
    /// `relay drain` (ours): not ready, still serving.
    RelayDrain {
        /// Sessions open when it took effect.
        sessions_open: u64,
    },
    /// `relay undrain` (ours): ready again.
    RelayUndrain {
        /// Sessions open when it took effect.
        sessions_open: u64,
    },
}

impl EventKind {
    /// relayctl's name of the event type.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::HostStatus { .. } => "host_status",
            EventKind::HostDisable { .. } => "ctl_host_disable",
            EventKind::HostEnable { .. } => "ctl_host_enable",
            EventKind::HostDrain { .. } => "ctl_host_drain",
            EventKind::TableDisable { .. } => "ctl_table_disable",
            EventKind::TableEnable { .. } => "ctl_table_enable",
            EventKind::RelayDisable { .. } => "ctl_relay_disable",
            EventKind::RelayEnable { .. } => "ctl_relay_enable",
            EventKind::Reload { .. } => "ctl_reload",
            EventKind::RelayDrain { .. } => "ctl_relay_drain",
            EventKind::RelayUndrain { .. } => "ctl_relay_undrain",
        }
    }

    /// Our number for the event type (printed where relayctl prints the imsg type).
    pub fn code(&self) -> u32 {
        match self {
            EventKind::HostStatus { .. } => 1,
            EventKind::HostDisable { .. } => 2,
            EventKind::HostEnable { .. } => 3,
            EventKind::HostDrain { .. } => 4,
            EventKind::TableDisable { .. } => 5,
            EventKind::TableEnable { .. } => 6,
            EventKind::RelayDisable { .. } => 7,
            EventKind::RelayEnable { .. } => 8,
            EventKind::Reload { .. } => 9,
            EventKind::RelayDrain { .. } => 10,
            EventKind::RelayUndrain { .. } => 11,
        }
    }
}

/// One event with its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The relay's process id.
    pub pid: u32,
    /// What happened.
    pub kind: EventKind,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_errors_never_count_against_the_host() {
        let e = ConnectErrors {
            refused: 1,
            timeout: 2,
            unreachable: 3,
            local: 40,
        };
        assert_eq!(e.against_host(), 6);
        assert_eq!(e.summary(), "1 refused, 2 timeout, 3 unreachable, 40 local");
        assert_eq!(ConnectErrors::default().summary(), "");
    }

    #[test]
    fn a_reason_is_its_word_in_json() {
        let words: Vec<String> = ConnectReason::ALL
            .iter()
            .map(|r| serde_json::to_string(r).unwrap_or_default())
            .collect();
        assert_eq!(
            words,
            ["\"refused\"", "\"timeout\"", "\"unreachable\"", "\"local\""]
        );
    }
}

//! State changes as they happen, for `hasocks ctl monitor` (relayctl's `monitor`): host state
//! changes, enable/disable/drain from the control socket, reloads.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::status::HostState;

/// How many events a slow monitor may fall behind before it misses some.
const BACKLOG: usize = 1024;

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

/// The fan-out of events to every monitor.
#[derive(Debug)]
pub(crate) struct Events {
    tx: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Events {
    /// Sends an event to every monitor (none listening is fine).
    pub fn emit(&self, kind: EventKind) {
        let _ = self.tx.send(Event {
            at_ms: unix_ms(SystemTime::now()),
            pid: std::process::id(),
            kind,
        });
    }

    /// A receiver of every later event.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

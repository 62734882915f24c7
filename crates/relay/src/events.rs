//! State changes as they happen, for `hasocks ctl monitor` (relayctl's `monitor`): host state
//! changes, enable/disable/drain from the control socket, reloads.

use std::time::SystemTime;

use tokio::sync::broadcast;

/// How many events a slow monitor may fall behind before it misses some.
const BACKLOG: usize = 1024;

pub use hasocks_ctl_proto::relay::{Event, EventKind};

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

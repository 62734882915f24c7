#![forbid(unsafe_code)]
//! The layer-4 relay (what `hasocks relay -f relayd.conf` runs): protocol-blind TCP forwarding
//! to a pool of hosts, with rendezvous-hash affinity, health checks, backup tables, reload
//! without loss and a control socket.
//!
//! State comes in two kinds: long-lived (worker threads, listeners by address, one record per
//! relay, table and host, the registry of open sessions) and a config generation (tables,
//! modes, checks, timeouts compiled from one file), swapped whole on reload.
//!
//! Data flow: accept -> the current generation's relay for that address -> candidates (first
//! table with an up host, then backups) -> connect with retries, before any byte is
//! forwarded -> optional PROXY v2 header -> copy both ways -> log.

pub mod admin_source;
mod admission;
mod checks;
pub mod daemon;
mod error;
mod events;
mod generation;
mod glob;
mod handle;
pub mod handover;
mod health;
mod rates;
mod records;
pub mod select;
mod session;
mod sessions;
mod workers;

pub use error::{CtlError, RelayError};
pub use handle::RelayHandle;
// The relay's plain-data view is the control protocol's (hasocks-ctl-proto).
pub use hasocks_ctl_proto::relay::{
    AdmissionStatus, Event, EventKind, HostAction, HostState, HostStatus, RateStats, RelayStatus,
    ReloadReport, SessionStatus, Status, TableStatus, Target,
};

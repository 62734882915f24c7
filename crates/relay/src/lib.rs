#![forbid(unsafe_code)]
//! The layer-4 relay (what `hasocks relay -f relayd.conf` runs): protocol-blind TCP forwarding
//! to a pool of hosts, with rendezvous-hash affinity, health checks, backup tables, reload
//! without loss and a control socket.
//!
//! State comes in two kinds: long-lived (worker threads, listeners by address, one record per
//! relay, table and host, the registry of open sessions) and a config generation (tables,
//! modes, checks, timeouts compiled from one file), swapped whole on reload.
//!
//! Data flow: accept -> the current generation's relay for that address -> its pools'
//! candidates, lazily (the primary pool's hosts that take traffic in the mode's order, then
//! the backups') -> connect with retries, before any byte is forwarded, each failure
//! classified and counted on its host -> optional PROXY v2 header -> copy both ways -> log.
//!
//! Where things are: `handle` (the long-lived state and its methods; `handle/reload.rs`, the
//! prepare and commit steps), `generation` (one config compiled), `pool` (a table's hosts,
//! checks, selection, the connect step), `records` (what outlives generations), `listeners`,
//! `workers` and `session` (the data path), `status` and `control` (what ctl and the admin
//! listener see and do).

pub mod admin_source;
mod admission;
mod control;
pub mod daemon;
mod error;
mod events;
mod generation;
mod handle;
pub mod handover;
mod listeners;
pub mod pool;
mod rates;
mod records;
mod redirects;
mod session;
mod sessions;
mod status;
mod workers;

pub use error::{CtlError, NotReady, RelayError, Unready};
pub use handle::RelayHandle;
pub use pool::select;
// The relay's plain-data view is the control protocol's (hasocks-ctl-proto).
pub use hasocks_ctl_proto::relay::{
    AdmissionStatus, ConnectErrors, ConnectReason, Event, EventKind, HostAction, HostState,
    HostStatus, RateStats, RelayStatus, ReloadReport, SessionStatus, Status, TableStatus, Target,
};

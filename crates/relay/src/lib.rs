#![forbid(unsafe_code)]
//! The layer-4 relay (what `hasocks relay -f relayd.conf` runs): protocol-blind TCP forwarding
//! to a pool of hosts, with rendezvous-hash affinity, health checks and backup tables.
//!
//! Data flow: accept -> candidates from the health snapshot (first table with an up host,
//! then backups) -> connect with retries, before any byte is forwarded -> optional PROXY v2
//! header -> copy both ways -> log.

mod checks;
mod error;
mod glob;
mod handle;
mod health;
pub mod select;
mod session;
mod status;
mod table;

pub use error::RelayError;
pub use handle::RelayHandle;
pub use status::{HostState, HostStatus, RelayStatus, Status, TableStatus};

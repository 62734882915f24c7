//! The SOCKS server: sessions, rules, CONNECT, BIND and UDP ASSOCIATE, logs, reload.
#![forbid(unsafe_code)]

pub mod admin_source;
pub mod admission;
pub mod daemon;
pub mod generation;
mod handle;
mod handover;
pub mod limits;
pub mod logger;
pub mod privs;
pub mod rules;
pub mod session;
pub mod stats;

pub use handle::{ReloadReport, ServerHandle, StartError};
pub use logger::{Level, Logger};
pub use stats::Stats;

//! The SOCKS server: sessions, rules, CONNECT, BIND and UDP ASSOCIATE, logs, reload.
#![forbid(unsafe_code)]

pub mod admin_source;
pub mod admission;
pub mod daemon;
pub mod limits;
pub mod logger;
pub mod privs;
pub mod rules;
pub mod runtime;
mod server;
pub mod session;
pub mod stats;
pub mod upgrade;

pub use logger::{Level, Logger};
pub use server::{ReloadReport, ServerHandle, StartError};
pub use stats::Stats;

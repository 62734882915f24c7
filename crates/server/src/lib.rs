//! The SOCKS server: sessions, rules, CONNECT (BIND and UDP ASSOCIATE to come), logs, reload.
#![forbid(unsafe_code)]

pub mod limits;
pub mod logger;
pub mod privs;
pub mod rules;
pub mod runtime;
mod server;
pub mod session;

pub use logger::{Level, Logger};
pub use server::{ServerHandle, StartError};

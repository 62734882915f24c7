//! The SOCKS server (what `hasocks server -f sockd.conf` runs): sessions, authentication,
//! rules and limits, CONNECT, BIND and UDP ASSOCIATE, logs, reload, admission.
//!
//! State comes in two kinds: long-lived, in the [`ServerHandle`] (listeners by configured
//! address, the admission caps, counters, the password checker and rule limit states), and a
//! config [`generation`] (rules compiled, names resolved, log destinations open), swapped whole
//! on reload; a session keeps the generation it started with.
//!
//! Data flow: accept (admission: caps, per-source, eviction) -> [`session`]: optional PROXY
//! header -> client rules -> method negotiation and authentication -> request -> socks rules
//! -> CONNECT / BIND / UDP ASSOCIATE -> copy both ways -> log line.
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
pub mod route;
pub mod rules;
pub mod session;
pub mod stats;

pub use handle::{ReloadReport, ServerHandle, StartError};
pub use logger::{Level, Logger};
pub use stats::Stats;

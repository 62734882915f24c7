//! Load generators for SOCKS servers and relays, as a library: `hasocks bench` is
//! [`bench`](mod@bench) wired to a command line, the failover and upgrade tests drive [`mix`],
//! and the data path's own cost is measured by [`pump`].
//!
//! Data flow: [`bench::Options`] (the command line's values) become a [`Route`] (proxy or
//! direct, target, credentials, source address) or a [`udp::UdpLoad`]; a load ([`tcp`],
//! [`udp`]) drives sessions along it against a target of its own ([`target`], [`zerocopy`])
//! or the one given, counts every failure as a [`SessionError`] without stopping, and returns
//! a [`Report`] that prints as the line of text or the JSON object the bench scripts parse.
#![forbid(unsafe_code)]

pub mod bench;
pub mod error;
pub mod mix;
pub mod pump;
pub mod report;
pub mod route;
pub mod target;
pub mod tcp;
pub mod udp;
pub mod zerocopy;

pub use bench::{run, Mode, Options};
pub use error::{SessionError, SetupError};
pub use report::Report;
pub use route::Route;

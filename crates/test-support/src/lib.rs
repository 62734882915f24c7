//! Test plumbing written once and used by every crate's tests: targets to connect to (echo,
//! id, one-shot, stoppable backends), waiting on a condition with a deadline, free ports, raw
//! SOCKS bytes, config builders, and the operator-like load of `hasocks-loadgen` paced for
//! tests. Dev-only: no product crate depends on it.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod blocking;
pub mod conf_builders;
pub mod ctl;
pub mod fake_socks;
pub mod http;
pub mod load;
pub mod ports;
pub mod procs;
pub mod socks;
pub mod targets;
pub mod wait;

pub use conf_builders::*;
pub use http::*;
pub use ports::*;
pub use socks::*;
pub use targets::*;
pub use wait::*;

//! One daemon skeleton for both `hasocks server` and `hasocks relay`: signals, binary upgrade
//! (the listening sockets handed over with SCM_RIGHTS), systemd (notify, watchdog, socket
//! activation), the control socket and its listener, the admin listener's start and stop,
//! and the drain at the end. A daemon implements [`Daemon`] (reload, execute a command, stop
//! accepting, hand over, shut down, status); [`run`] does the rest, the same for both.
//!
//! Data flow: the CLI's options -> [`Options`] + the daemon's config -> [`Plan`] -> [`run`]
//! -> signals and control commands -> the daemon's methods -> [`Drain`] at the end.
#![forbid(unsafe_code)]

pub mod control;
mod daemon;
pub mod drain;
pub mod handover;
mod options;
pub mod successor;
pub mod systemd;

pub use daemon::{run, Daemon, Handover, Plan, RunError};
pub use drain::Drain;
pub use handover::HandoverError;
pub use options::Options;

#![forbid(unsafe_code)]
//! A small SOCKS5 client for probing servers: the relay's health check,
//! `hasocks check` and `hasocks bench` all use it.
//!
//! Every SOCKS byte goes through the `socks-wire` codec. Each exchange runs
//! under one deadline, and a timeout names the phase that ran out of time so
//! that a failing check says *where* the server got stuck.

mod client;
mod e2e;
mod error;
mod random;
mod rendezvous;

pub use client::{socks5_connect, socks5_connect_by, socks5_over, Auth, Direction, Tap};
pub use e2e::{
    end_to_end, end_to_end_on, end_to_end_traced, end_to_end_via, EndToEnd, PROBE_BYTES,
};
pub use error::ProbeError;
pub use random::fill_random;
pub use rendezvous::Rendezvous;

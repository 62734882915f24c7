#![forbid(unsafe_code)]
//! A small SOCKS5 client for probing servers: the relay's health check,
//! `hasocks check` (all of its logic, in [`check`]) and `hasocks bench` all use it, and the
//! server's routes speak to their upstreams through [`chain`] (SOCKS5, SOCKS4, HTTP CONNECT)
//! and order them by [`placement`] (the relay's rendezvous scoring).
//!
//! Data flow: a `HOST:PORT` text is parsed by `hasocks_conf::HostPort` (the one service-name policy),
//! resolved or turned into a SOCKS target by [`address`], then the client handshake
//! ([`socks5_connect`]) or an end-to-end check ([`end_to_end`]) runs against it.
//!
//! Every SOCKS byte goes through the `socks-wire` codec. Each exchange runs
//! under one deadline, and a timeout names the phase that ran out of time so
//! that a failing check says *where* the server got stuck.

pub mod address;
pub mod chain;
pub mod check;
mod client;
mod e2e;
mod error;
mod gssapi;
pub mod placement;
mod random;
mod rendezvous;

pub use address::{resolve, resolve_parsed, target_of, AddressError};
pub use client::{
    socks5_command, socks5_connect, socks5_connect_by, socks5_offer, socks5_over, socks5_pipelined,
    socks5_second_reply, Auth, Direction, Offer, Tap,
};
pub use e2e::{
    end_to_end, end_to_end_on, end_to_end_through, end_to_end_traced, end_to_end_via, EndToEnd,
    PROBE_BYTES,
};
pub use error::ProbeError;
pub use gssapi::{end_to_end_via_gss, GssAuth};
pub use random::fill_random;
pub use rendezvous::Rendezvous;

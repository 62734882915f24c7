//! The data path shared by the SOCKS server and the layer-4 relay: socket set-up, accept
//! loops that survive fd exhaustion and admit by caps, the HAProxy PROXY protocol, and the
//! bidirectional copy with byte counts (splice).
//!
//! Data flow: listener ([`listen`], [`admission`]) -> accepted socket ([`sock`]) -> optional
//! PROXY header ([`proxy`]) -> the daemon's session -> [`copy`] both ways. Warnings on hot
//! paths are folded ([`ratelog`]); [`clock`] is the cheap time source they use.
#![forbid(unsafe_code)]

pub mod admission;
pub mod clock;
pub mod copy;
pub mod listen;
pub mod proxy;
pub mod ratelog;
pub mod sock;

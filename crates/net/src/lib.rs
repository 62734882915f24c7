//! The data path shared by the SOCKS server and the layer-4 relay: bidirectional copy with
//! byte counts, socket set-up, accept loops that survive fd exhaustion, the HAProxy PROXY
//! protocol, and graceful shutdown.
#![forbid(unsafe_code)]

pub mod admission;
pub mod clock;
pub mod copy;
pub mod ctlsock;
pub mod handover;
pub mod listen;
pub mod proxy;
pub mod ratelog;
pub mod shutdown;
pub mod sock;
pub mod systemd;

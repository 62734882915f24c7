//! The relay tests' own helpers; the shared ones come from `test-support`.
#![allow(dead_code)]

use std::net::SocketAddr;

use relay::{HostState, RelayHandle};
pub use test_support::*;

/// The relay's first listen address.
pub fn addr_of(h: &RelayHandle) -> SocketAddr {
    h.listen_addrs()
        .first()
        .map(|(_, a)| *a)
        .expect("relay listens")
}

/// State of host `i` of table instance `table` (`name:port`).
pub fn state(h: &RelayHandle, table: &str, i: usize) -> HostState {
    h.snapshot()
        .table(table)
        .and_then(|t| t.hosts.get(i).map(|h| h.state))
        .expect("table and host exist")
}

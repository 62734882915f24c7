//! The server tests' own helpers; the shared ones come from `test-support`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;

use hasocks_server::ServerHandle;
pub use hasocks_test_support::*;

/// Starts a server from sockd.conf text (use `port = 0` in `internal:`).
pub async fn start(conf_text: &str) -> (ServerHandle, SocketAddr) {
    let cfg = hasocks_conf::sockd::parse(conf_text, Path::new("test.conf")).expect("config parses");
    let h = ServerHandle::start(cfg).await.expect("server starts");
    let addr = h.local_addrs()[0];
    (h, addr)
}

/// A permissive config on 127.0.0.1, port 0, with extra lines before the rules.
pub fn open_conf(extra: &str) -> String {
    open_sockd_conf(extra)
}

//! What the `hasocks` binary's tests share: the binary, in-process SOCKS servers (a relay's
//! backends), relayd.conf text for a relay in front of a pool, and a relay process. The
//! helpers every crate's tests use come from `test-support`.
// Each test file is its own crate and uses only a part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};

use hasocks_server::ServerHandle;
use hasocks_test_support::blocking::Running;
use hasocks_test_support::sockd_conf_on;

/// The `hasocks` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_hasocks")
}

/// An in-process SOCKS server from sockd.conf text (with `port = 0`); its handle and port.
pub async fn start_server(sockd_conf: &str) -> (ServerHandle, u16) {
    let cfg = hasocks_conf::sockd::parse(sockd_conf, Path::new("sockd.conf")).expect("sockd.conf");
    let h = ServerHandle::start(cfg).await.expect("server starts");
    let port = h.local_addrs().first().expect("a listener").port();
    (h, port)
}

/// An in-process SOCKS server on `ip` (port 0) that passes every request.
pub async fn socks_server(ip: &str) -> (ServerHandle, u16) {
    start_server(&sockd_conf_on(ip, "pass", "")).await
}

/// relayd.conf text: the `globals` lines, the control `socket`, `table <pool>` of `hosts`
/// (ip, port), and `relay "socks"` listening on 127.0.0.1:`port` with the `body` lines
/// (its `forward to <pool> ...` and any other relay options).
pub fn relayd_conf(
    globals: &str,
    socket: &Path,
    hosts: &[(&str, u16)],
    port: u16,
    body: &str,
) -> String {
    let hosts: Vec<String> = hosts
        .iter()
        .map(|(ip, p)| format!("{ip} port {p}"))
        .collect();
    format!(
        "{globals}\nsocket \"{}\"\ntable <pool> {{ {} }}\n\
         relay \"socks\" {{\n listen on 127.0.0.1 port {port}\n {body}\n}}\n",
        socket.display(),
        hosts.join(", ")
    )
}

/// `hasocks relay -f conf`, its stderr discarded; stopped when dropped.
pub fn start_relay(conf: &Path) -> Running {
    Running(
        Command::new(bin())
            .args(["relay", "-f"])
            .arg(conf)
            .stderr(Stdio::null())
            .spawn()
            .expect("start the relay"),
    )
}

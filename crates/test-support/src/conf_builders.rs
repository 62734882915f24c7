//! Configs built in code: relayd.conf structures (tables, forwards, relays) and sockd.conf
//! text.

use hasocks_conf::relayd::{
    Check, Forward, HostEntry, Listen, LogConnections, Mode, Relay, RelaydConfig, Table, TcpOptions,
};

/// A table whose hosts are `127.0.0.1` with their own ports (one entry per port).
pub fn table(name: &str, ports: &[u16]) -> Table {
    Table {
        name: name.to_string(),
        disabled: false,
        hosts: ports
            .iter()
            .map(|p| HostEntry {
                name: "127.0.0.1".to_string(),
                port: Some(*p),
                retry: 0,
                line: 1,
            })
            .collect(),
        interval_s: 3600,
        timeout_ms: 1000,
        line: 1,
    }
}

/// A forward to `table` with `mode` and `check` (checks only at start and on `poll`).
pub fn forward(table: &str, mode: Mode, check: Option<Check>) -> Forward {
    Forward {
        table: table.to_string(),
        port: 1,
        mode,
        check,
        timeout_ms: None,
        interval_s: None,
        line: 1,
    }
}

/// A relay named `socks` listening on 127.0.0.1:0.
pub fn relay(forwards: Vec<Forward>) -> Relay {
    Relay {
        name: "socks".to_string(),
        listens: vec![Listen {
            addr: "127.0.0.1".to_string(),
            port: 0,
        }],
        forwards,
        session_timeout_s: 600,
        disabled: false,
        send_proxy_v2: false,
        first_byte_timeout_s: None,
        protocol: None,
        tcp: TcpOptions::DEFAULT,
        line: 1,
    }
}

/// A whole relayd config (connections logged, checks hourly unless polled; no first-byte
/// wait, since the test backends speak first).
pub fn config(tables: Vec<Table>, relays: Vec<Relay>) -> RelaydConfig {
    RelaydConfig {
        interval_s: 3600,
        timeout_ms: 1000,
        log_host_checks: false,
        log_connections: LogConnections::All,
        socket: None,
        prefork: None,
        admin: None,
        max_sessions: None,
        max_sessions_per_source: None,
        first_byte_timeout_s: 0,
        freebind: true,
        tcp_keepalive_s: 60,
        tables,
        protocols: Vec::new(),
        relays,
        redirects: Vec::new(),
        redirect_keep_on_exit: false,
        warnings: Vec::new(),
    }
}

/// A permissive sockd.conf on 127.0.0.1, port 0, with extra lines before the rules.
pub fn open_sockd_conf(extra: &str) -> String {
    format!(
        "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nsocksmethod: none\n{extra}\n\
         client pass {{ from: 0/0 to: 0/0 }}\nsocks pass {{ from: 0/0 to: 0/0 }}\n"
    )
}

/// A sockd.conf on `ip` (port 0) whose socks rule is `pass` or `block`, with extra settings.
pub fn sockd_conf_on(ip: &str, rule: &str, extra: &str) -> String {
    format!(
        "internal: {ip} port = 0\nexternal: {ip}\nclientmethod: none\nsocksmethod: none\n{extra}\n\
         client pass {{ from: 0/0 to: 0/0 }}\n\
         socks {rule} {{ from: 0/0 to: 0/0 }}\n"
    )
}

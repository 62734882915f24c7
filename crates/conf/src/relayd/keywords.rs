//! Keyword tables of relayd.conf as hasocks reads it, one per place in the grammar.
//!
//! The parser dispatches on these tables (a word outside them is never accepted where the
//! table applies), so they are the one list of what hasocks understands; the documentation
//! test walks them to prove every keyword is described in `docs/relayd.conf.md` and in
//! hasocks-relayd.conf(5).

/// Top-level statements: relayd's global options, `include`, `table`, `relay`, `protocol`
/// (and `tcp protocol`), and the `hasocks.*` additions.
pub const GLOBAL: &[&str] = &[
    "interval",
    "timeout",
    "log",
    "socket",
    "prefork",
    "include",
    "table",
    "relay",
    "protocol",
    "tcp",
    "redirect",
    "hasocks.maxconn",
    "hasocks.maxconn.source",
    "hasocks.timeout.firstbyte",
    "hasocks.tcp.keepalive",
    "hasocks.freebind",
    "hasocks.admin",
    "hasocks.redirect.on-exit",
];

/// The first word after `log`: `state changes`, `host checks`, `connection [errors]`, and
/// relayd's older spellings `updates` and `all`.
pub const LOG: &[&str] = &["state", "host", "connection", "updates", "all"];

/// Options after a host in a table: relayd's `retry N`, and ours, `port N`.
pub const HOST_OPTIONS: &[&str] = &["retry", "port"];

/// Statements inside a `relay "name" { }` block (`send` is ours: `send proxy-v2`).
pub const RELAY: &[&str] = &[
    "listen",
    "forward",
    "session",
    "disable",
    "send",
    "protocol",
    "hasocks.timeout.firstbyte",
];

/// Statements inside a `protocol NAME { }` block: only `tcp` (layer 7 ones are refused).
pub const PROTOCOL: &[&str] = &["tcp"];

/// relayd's TCP options, after `tcp` or inside `tcp { }` (`socket buffer`, `ip ttl`,
/// `ip minttl`, `no nodelay|sack|splice` start with the words listed).
pub const TCP: &[&str] = &["backlog", "nodelay", "sack", "socket", "splice", "ip", "no"];

/// Statements inside a `redirect "name" { }` block.
pub const REDIRECT: &[&str] = &["listen", "forward", "session", "disable", "sticky-address"];

/// Options of a `forward to <table>` line.
pub const FORWARD: &[&str] = &["port", "mode", "check", "timeout", "interval"];

/// Scheduling modes after `mode`.
pub const MODES: &[&str] = &[
    "roundrobin",
    "random",
    "loadbalance",
    "source-hash",
    "hash",
    "least-states",
];

/// Health checks after `check` (`socks` is ours).
pub const CHECKS: &[&str] = &["tcp", "send", "binary", "script", "socks"];

/// relayd keywords that start a statement or option hasocks does not implement (layer 3
/// redirections, layer 7 protocols, routers, TLS, SNMP, carp demotion...): refused with
/// "not supported by hasocks" (layer 7 ones with their own reason), never ignored.
pub const UNSUPPORTED: &[&str] = &[
    "http",
    "https",
    "tls",
    "dns",
    "router",
    "route",
    "rtable",
    "rtlabel",
    "snmp",
    "agentx",
    "demote",
    "transparent",
    "ssl",
    "match",
    "pass",
    "block",
    "label",
    "tag",
    "tagged",
    "inet",
    "inet6",
    "ca",
    "cert",
    "keypair",
    "ciphers",
    "ecdhe",
    "edh",
    "priority",
    "parent",
];

/// Every keyword of every table above except [`UNSUPPORTED`], each once.
pub fn supported() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = [
        GLOBAL,
        LOG,
        HOST_OPTIONS,
        RELAY,
        REDIRECT,
        FORWARD,
        MODES,
        CHECKS,
        PROTOCOL,
        TCP,
    ]
    .concat();
    all.sort_unstable();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Parses `text` and returns the error message, if any.
    fn error(text: &str) -> Option<String> {
        super::super::parse(text, Path::new("t"), &[])
            .err()
            .map(|e| e.message)
    }

    /// Whether an error shows the parser did not take `kw` itself (not merely its value).
    fn refused(kw: &str, m: &str) -> bool {
        let q = format!("\"{kw}\"");
        [
            format!("unknown keyword {q}"),
            format!("keyword {q} is not supported"),
            format!("unknown mode {q}"),
            format!("unknown check {q}"),
            format!("found {q}"),
        ]
        .iter()
        .any(|p| m.contains(p.as_str()))
    }

    #[test]
    fn every_table_keyword_is_accepted_where_its_table_applies() {
        let table = "table <t> { 127.0.0.2 }\n";
        let relay = |body: &str| {
            format!("{table}relay \"r\" {{\n listen on 127.0.0.1 port 1080\n forward to <t> port 1080\n {body}\n}}\n")
        };
        let mut cases: Vec<(String, String)> = Vec::new();
        for kw in GLOBAL.iter().filter(|k| **k != "include") {
            cases.push((kw.to_string(), format!("{kw} x\n")));
        }
        for kw in LOG {
            cases.push((kw.to_string(), format!("log {kw}\n")));
        }
        for kw in HOST_OPTIONS {
            cases.push((
                kw.to_string(),
                format!("table <t> {{ 127.0.0.2 {kw} x }}\n"),
            ));
        }
        for kw in RELAY {
            cases.push((kw.to_string(), relay(&format!("{kw} x"))));
        }
        for kw in FORWARD {
            cases.push((kw.to_string(), relay(&format!("forward to <t> {kw} x"))));
        }
        for kw in MODES {
            cases.push((kw.to_string(), relay(&format!("forward to <t> mode {kw}"))));
        }
        for kw in CHECKS {
            cases.push((kw.to_string(), relay(&format!("forward to <t> check {kw}"))));
        }
        for kw in PROTOCOL {
            cases.push((
                kw.to_string(),
                format!("protocol p {{\n {kw} nodelay\n}}\n"),
            ));
        }
        for kw in TCP {
            cases.push((
                kw.to_string(),
                format!("protocol p {{\n tcp {{ {kw} 1 }}\n}}\n"),
            ));
        }
        for (kw, text) in cases {
            if let Some(m) = error(&text) {
                assert!(!refused(&kw, &m), "{kw}: {m}\n{text}");
            }
        }
    }

    #[test]
    fn unsupported_keywords_are_refused_by_name() {
        for kw in ["router", "snmp"] {
            let m = error(&format!("{kw} x\n")).unwrap_or_default();
            assert!(m.contains("not supported by hasocks"), "{kw}: {m}");
        }
    }

    #[test]
    fn supported_keywords_are_listed_once_and_none_is_unsupported() {
        let all = supported();
        assert!(all.contains(&"hasocks.maxconn") && all.contains(&"least-states"));
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        for kw in &all {
            assert!(!UNSUPPORTED.contains(kw), "{kw}");
        }
    }
}

//! Property tests: no input makes the relayd.conf parser panic, and generated configurations
//! survive a render-then-parse round trip unchanged.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hasocks_conf::relayd::{
    parse, Check, Forward, HostEntry, Listen, LogConnections, Mode, Relay, RelaydConfig, Table,
    TcpOptions,
};
use proptest::prelude::*;

/// Words and punctuation that make random inputs reach deep into the grammar.
const VOCAB: &[&str] = &[
    "table",
    "<t>",
    "<",
    ">",
    "{",
    "}",
    ",",
    "=",
    "relay",
    "\"r\"",
    "listen",
    "on",
    "port",
    "1080",
    "forward",
    "to",
    "mode",
    "loadbalance",
    "hash",
    "source-hash",
    "roundrobin",
    "check",
    "tcp",
    "send",
    "binary",
    "expect",
    "nothing",
    "script",
    "socks",
    "connect",
    "user",
    "password",
    "timeout",
    "interval",
    "retry",
    "session",
    "disable",
    "proxy-v2",
    "include",
    "$m",
    "m",
    "\"",
    "'",
    "\\",
    "\n",
    "\\\n",
    "#",
    "10.0.0.1",
    "::1",
    "0x00112233445566778899aabbccddeeff",
    "log",
    "state",
    "changes",
    "connection",
    "errors",
    "redirect",
    "0",
    "-1",
    "99999999999",
    "\"0500\"",
    "t",
    "x",
    " ",
    "\t",
    "\r\n",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(VOCAB), 0..60).prop_map(|v| v.join(" "))
}

fn soup_tight() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(VOCAB), 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in ".*") {
        let _ = parse(&text, Path::new("fuzz.conf"), &[]);
    }

    #[test]
    fn keyword_soup_never_panics(text in soup(), tight in soup_tight()) {
        let o = [("m".to_string(), "10.0.0.1 port".to_string())];
        let _ = parse(&text, Path::new("fuzz.conf"), &o);
        let _ = parse(&tight, Path::new("fuzz.conf"), &o);
    }

    #[test]
    fn errors_point_inside_the_input(text in soup()) {
        if let Err(e) = parse(&text, Path::new("fuzz.conf"), &[]) {
            let lines = u32::try_from(text.split('\n').count()).unwrap_or(u32::MAX);
            prop_assert!(e.line >= 1 && e.line <= lines, "{e} for {text:?}");
            prop_assert!(e.col >= 1, "{e}");
        }
    }

    #[test]
    fn generated_configs_round_trip(mut cfg in config()) {
        let text = render(&mut cfg);
        let mut got = match parse(&text, Path::new("gen.conf"), &[]) {
            Ok(c) => c,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text}"))),
        };
        got.warnings.clear();
        prop_assert_eq!(got, cfg, "config text:\n{}", text);
    }
}

fn ipv4() -> impl Strategy<Value = String> {
    (1u8..=254, 0u8..=255, 1u8..=254).prop_map(|(a, b, c)| format!("{a}.{b}.0.{c}"))
}

fn host() -> impl Strategy<Value = HostEntry> {
    (
        prop_oneof![ipv4(), "[a-z]{1,6}\\.example"],
        0u32..4,
        prop::option::of(1u16..=65535),
    )
        .prop_map(|(name, retry, port)| HostEntry {
            name,
            port,
            retry,
            line: 0,
        })
}

fn key() -> impl Strategy<Value = Option<[u8; 16]>> {
    prop::option::of(any::<[u8; 16]>())
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        Just(Mode::RoundRobin),
        Just(Mode::Random),
        Just(Mode::LeastStates),
        key().prop_map(Mode::LoadBalance),
        key().prop_map(Mode::SourceHash),
        key().prop_map(Mode::Hash),
    ]
}

fn check() -> impl Strategy<Value = Check> {
    let text = "[a-zA-Z0-9 *?:.$-]{0,12}";
    prop_oneof![
        Just(Check::Tcp),
        (text, text).prop_map(|(s, expect)| Check::Send {
            send: s.into_bytes(),
            expect
        }),
        (
            prop::collection::vec(any::<u8>(), 0..6),
            prop::collection::vec(any::<u8>(), 1..6)
        )
            .prop_map(|(send, expect)| Check::Binary { send, expect }),
        "/[a-z/]{1,12}".prop_map(|p| Check::Script(PathBuf::from(p))),
        (
            prop::option::of((ipv4(), 1u16..=65535)),
            prop::option::of(("[a-z]{1,8}", "[a-z0-9 ]{0,8}"))
        )
            .prop_map(|(target, auth)| Check::Socks { target, auth }),
    ]
}

/// Globals, then tables, then relays; forwards refer to tables by index (fixed up below).
fn config() -> impl Strategy<Value = RelaydConfig> {
    let globals = (
        1u32..=60,
        any::<bool>(),
        0u8..3,
        prop::option::of("/[a-z]{1,8}"),
        prop::option::of(1u32..=64),
    );
    let tables = prop::collection::vec((any::<bool>(), prop::collection::vec(host(), 1..5)), 1..4);
    let forward = (
        any::<prop::sample::Index>(),
        prop::option::of(1u16..=65535),
        mode(),
        prop::option::of(check()),
        any::<bool>(),
        prop::option::of(1u32..4),
    );
    let relay = (
        prop::collection::vec((ipv4(), 1u16..=65535), 1..3),
        prop::collection::vec(forward, 1..3),
        0u32..=2_147_483_647,
        any::<bool>(),
        any::<bool>(),
    );
    (globals, tables, prop::collection::vec(relay, 0..3)).prop_map(|(g, tables, relays)| {
        let (interval_s, log_host_checks, log_conn, socket, prefork) = g;
        let timeout_ms = interval_s * 1000 / 2;
        let tables: Vec<Table> = tables
            .into_iter()
            .enumerate()
            .map(|(i, (disabled, hosts))| Table {
                name: format!("t{i}"),
                disabled,
                hosts,
                interval_s,
                timeout_ms,
                line: 0,
            })
            .collect();
        let relays = relays
            .into_iter()
            .enumerate()
            .map(
                |(i, (listens, forwards, session_timeout_s, disabled, send_proxy_v2))| {
                    let listens: Vec<Listen> = listens
                        .into_iter()
                        .map(|(addr, port)| Listen { addr, port })
                        .collect();
                    let first_port = listens[0].port;
                    let forwards = forwards
                        .into_iter()
                        .map(
                            |(table, port, mode, check, with_timeout, interval_mult)| Forward {
                                table: tables[table.index(tables.len())].name.clone(),
                                port: port.unwrap_or(first_port),
                                mode,
                                check,
                                timeout_ms: with_timeout.then_some(timeout_ms / 2 + 1),
                                interval_s: interval_mult.map(|m| m * interval_s),
                                line: 0,
                            },
                        )
                        .collect();
                    Relay {
                        name: format!("relay {i}"),
                        listens,
                        forwards,
                        session_timeout_s,
                        disabled,
                        send_proxy_v2,
                        first_byte_timeout_s: None,
                        protocol: None,
                        tcp: TcpOptions::DEFAULT,
                        line: 0,
                    }
                },
            )
            .collect();
        RelaydConfig {
            interval_s,
            timeout_ms,
            log_host_checks,
            log_connections: [
                LogConnections::Off,
                LogConnections::All,
                LogConnections::Errors,
            ][usize::from(log_conn)],
            socket: socket.map(PathBuf::from),
            prefork,
            admin: None,
            max_sessions: None,
            max_sessions_per_source: None,
            first_byte_timeout_s: 30,
            freebind: true,
            tcp_keepalive_s: 60,
            tables,
            protocols: Vec::new(),
            relays,
            redirects: Vec::new(),
            redirect_keep_on_exit: false,
            warnings: Vec::new(),
        }
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes `cfg` as relayd.conf text and records the line numbers the parser will report.
fn render(cfg: &mut RelaydConfig) -> String {
    let mut out = String::new();
    // Writes one statement; returns the 1-based line it starts on.
    let push = |out: &mut String, s: &str| {
        let line = u32::try_from(out.matches('\n').count() + 1).unwrap_or(u32::MAX);
        out.push_str(s);
        out.push('\n');
        line
    };
    push(&mut out, &format!("interval {}", cfg.interval_s));
    push(&mut out, &format!("timeout {}", cfg.timeout_ms));
    push(
        &mut out,
        if cfg.log_host_checks {
            "log host checks"
        } else {
            "log state changes"
        },
    );
    match cfg.log_connections {
        LogConnections::Off => {}
        LogConnections::All => _ = push(&mut out, "log connection"),
        LogConnections::Errors => _ = push(&mut out, "log connection errors"),
    }
    if let Some(s) = &cfg.socket {
        push(&mut out, &format!("socket \"{}\"", s.display()));
    }
    if let Some(n) = cfg.prefork {
        push(&mut out, &format!("prefork {n}"));
    }
    for t in &mut cfg.tables {
        t.line = push(
            &mut out,
            &format!(
                "table <{}> {}{{",
                t.name,
                if t.disabled { "disable " } else { "" }
            ),
        );
        for h in &mut t.hosts {
            let mut s = format!("  {}", h.name);
            if h.retry > 0 {
                let _ = write!(s, " retry {}", h.retry);
            }
            if let Some(p) = h.port {
                let _ = write!(s, " port {p}");
            }
            s.push(',');
            h.line = push(&mut out, &s);
        }
        push(&mut out, "}");
    }
    for r in &mut cfg.relays {
        r.line = push(&mut out, &format!("relay \"{}\" {{", r.name));
        for l in &r.listens {
            push(&mut out, &format!("  listen on {} port {}", l.addr, l.port));
        }
        for f in &mut r.forwards {
            let mut s = format!("  forward to <{}> port {}", f.table, f.port);
            let key =
                |k: &Option<[u8; 16]>| k.map(|k| format!(" 0x{}", hex(&k))).unwrap_or_default();
            let m = match &f.mode {
                Mode::RoundRobin => "roundrobin".to_string(),
                Mode::Random => "random".to_string(),
                Mode::LeastStates => "least-states".to_string(),
                Mode::LoadBalance(k) => format!("loadbalance{}", key(k)),
                Mode::SourceHash(k) => format!("source-hash{}", key(k)),
                Mode::Hash(k) => format!("hash{}", key(k)),
            };
            let _ = write!(s, " mode {m}");
            if let Some(t) = f.timeout_ms {
                let _ = write!(s, " timeout {t}");
            }
            if let Some(c) = &f.check {
                s.push_str(" \\\n    check ");
                match c {
                    Check::Tcp => s.push_str("tcp"),
                    Check::Send { send, expect } if send.is_empty() => {
                        let _ = write!(s, "send nothing expect \"{expect}\"");
                    }
                    Check::Send { send, expect } => {
                        let _ = write!(
                            s,
                            "send \"{}\" expect \"{expect}\"",
                            String::from_utf8_lossy(send)
                        );
                    }
                    Check::Binary { send, expect } => {
                        let _ = write!(
                            s,
                            "binary send \"{}\" expect \"{}\"",
                            hex(send),
                            hex(expect)
                        );
                    }
                    Check::Script(p) => {
                        let _ = write!(s, "script \"{}\"", p.display());
                    }
                    Check::SocksGssapi { gssapi } => {
                        let _ = write!(
                            s,
                            "socks hasocks.gssapi keytab \"{}\" principal \"{}\"",
                            gssapi.keytab, gssapi.principal
                        );
                        if let Some(v) = &gssapi.service {
                            let _ = write!(s, " service \"{v}\"");
                        }
                    }
                    Check::Socks { target, auth } => {
                        s.push_str("socks");
                        if let Some((u, p)) = auth {
                            let _ = write!(s, " user \"{u}\" password \"{p}\"");
                        }
                        if let Some((a, p)) = target {
                            let _ = write!(s, " connect {a} port {p}");
                        }
                    }
                }
            }
            if let Some(i) = f.interval_s {
                let _ = write!(s, " interval {i}");
            }
            // With a continuation line, the forward's line is still its first one.
            f.line = push(&mut out, &s);
        }
        push(
            &mut out,
            &format!("  session timeout {}", r.session_timeout_s),
        );
        if r.disabled {
            push(&mut out, "  disable");
        }
        if r.send_proxy_v2 {
            push(&mut out, "  send proxy-v2");
        }
        push(&mut out, "}");
    }
    out
}

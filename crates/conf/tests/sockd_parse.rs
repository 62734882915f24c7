//! sockd.conf parsing of realistic configs, and one test per error class with its exact
//! `file:line:col`.

use std::path::Path;

use hasocks_conf::sockd::{
    load, parse, AddrSpec, Command, HostSpec, LogTarget, Method, PortOp, PortSpec, Protocol,
    Rotation, SockdConfig, SocksVersion, Verdict,
};

const SEED: &str = "\
errorlog: syslog
logoutput: /var/log/sockd.log

internal: 127.0.0.2     #IP-DANTE2 for second node
external: 127.0.0.3  #IP-DANTEEXT2 for second node
socksmethod: none

client pass {
        from: 0/0 to: 0/0
        log: error connect disconnect
}

socks pass {
        from: 0/0 to: 0/0
        log: error connect disconnect
}
";

fn p(text: &str) -> SockdConfig {
    parse(text, Path::new("/etc/sockd.conf")).unwrap()
}

/// Parses `text` expecting an error; returns it printed (`file:line:col: message`).
fn e(text: &str) -> String {
    parse(text, Path::new("/etc/sockd.conf"))
        .unwrap_err()
        .to_string()
}

#[test]
fn seed_minimal_config_parses() {
    let c = p(SEED);
    assert_eq!(c.errorlog, vec![LogTarget::Syslog("daemon".into())]);
    assert_eq!(
        c.logoutput,
        vec![LogTarget::File("/var/log/sockd.log".into())]
    );
    assert_eq!(c.internals.len(), 1);
    assert_eq!(
        c.internals[0].host,
        HostSpec::Ip("127.0.0.2".parse().unwrap())
    );
    assert_eq!((c.internals[0].port, c.internals[0].line), (1080, 4));
    assert_eq!(
        c.externals,
        vec![HostSpec::Ip("127.0.0.3".parse().unwrap())]
    );
    assert_eq!(c.socksmethods, vec![Method::None]);
    assert_eq!(c.client_rules.len(), 1);
    assert_eq!(c.socks_rules.len(), 1);
    for (r, line) in [(&c.client_rules[0], 8), (&c.socks_rules[0], 13)] {
        assert_eq!(r.line, line);
        assert_eq!(r.verdict, Verdict::Pass);
        assert_eq!(r.from.addr, AddrSpec::Any);
        assert_eq!(r.to.addr, AddrSpec::Any);
        assert!(r.log.error && r.log.connect && r.log.disconnect && !r.log.data);
    }
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn seed_without_socksmethod_warns_that_everything_is_refused() {
    let c = p(&SEED.replace("socksmethod: none", ""));
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(
        c.warnings[0].message,
        "no socksmethod set: every SOCKS request will be refused (add `socksmethod: none`)"
    );
}

const EVERYTHING: &str = "\
# every keyword hasocks reads
logoutput: stderr stdout syslog/local0 /var/log/sockd.log
errorlog: syslog
internal: 127.0.0.1 port = 1080
internal: ::1 port=1081
internal: lo port 1082
external: 192.0.2.1
external: eth1
external.rotation: route
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
user.libwrap: libwrap
timeout.negotiate: 10
timeout.connect: 20
timeout.io: 600
timeout.io.udp: 60
timeout.tcp_fin_wait: 5
debug: 2
compatibility: sameport
srchost: nodnsmismatch nodnsunknown
udp.connectdst: yes
hasocks.udp.advertise: 203.0.113.5
hasocks.proxyprotocol.from: 127.0.0.0/8 ::1

client pass {
    from: 10.0.0.0/255.0.0.0 port 1-65535 to: 0/0
    clientmethod: none
    log: connect error
}
client block { from: 0/0 to: 0/0 log: connect }

socks block {
    from: 0/0 to: .Example.COM port = http
    command: bind bindreply
    log: iooperation
}
socks pass {
    from: 10.1.2.3 port >= 1024
    to: fe80::/10 port neq 25
    command: connect udpassociate udpreply
    protocol: tcp udp
    proxyprotocol: socks_v4 socks_v5
    socksmethod: none
    log: connect disconnect data error ioop tcpinfo
    timeout.negotiate: 1
    timeout.connect: 2
    timeout.io: 3
    timeout.io.tcp: 4
    timeout.tcp_fin_wait: 1
    udp.portrange: 40000-40100
}
socks pass { from:0/0 to:localhost port ssh - https }
";

#[test]
fn config_with_every_keyword_parses() {
    let c = p(EVERYTHING);
    assert_eq!(
        c.internals.iter().map(|i| i.port).collect::<Vec<_>>(),
        vec![1080, 1081, 1082]
    );
    assert_eq!(c.internals[2].host, HostSpec::Name("lo".into()));
    assert_eq!(c.externals[1], HostSpec::Name("eth1".into()));
    assert_eq!(c.external_rotation, Rotation::Route);
    assert_eq!(c.logoutput.len(), 4);
    assert_eq!(c.logoutput[2], LogTarget::Syslog("local0".into()));
    assert_eq!(c.clientmethods, vec![Method::None]);
    assert_eq!(c.user_privileged.as_deref(), Some("root"));
    assert_eq!(c.user_unprivileged.as_deref(), Some("nobody"));
    let t = c.timeouts;
    assert_eq!(
        (t.negotiate, t.connect, t.io_tcp, t.io_udp),
        (10, 20, 600, 60)
    );
    assert_eq!(c.debug, 2);
    assert_eq!(c.udp_advertise, Some("203.0.113.5".parse().unwrap()));
    assert_eq!(
        c.proxy_from,
        vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]
    );
    // user.libwrap, timeout.tcp_fin_wait (x2), compatibility, srchost, udp.connectdst.
    assert_eq!(c.warnings.len(), 6, "{:?}", c.warnings);

    assert_eq!(c.client_rules.len(), 2);
    let r = &c.client_rules[0];
    assert_eq!(r.from.addr, AddrSpec::Net("10.0.0.0/8".parse().unwrap()));
    assert_eq!(r.from.port, PortSpec::Range(1, 65535));
    assert_eq!(c.client_rules[1].verdict, Verdict::Block);
    assert_eq!(c.client_rules[1].line, 32);

    assert_eq!(c.socks_rules.len(), 3);
    let b = &c.socks_rules[0];
    assert_eq!(b.to.addr, AddrSpec::Domain("example.com".into()));
    assert_eq!(b.to.port, PortSpec::Op(PortOp::Eq, 80));
    assert_eq!(b.commands, vec![Command::Bind, Command::BindReply]);
    let s = &c.socks_rules[1];
    assert_eq!(s.from.addr, AddrSpec::Net("10.1.2.3/32".parse().unwrap()));
    assert_eq!(s.from.port, PortSpec::Op(PortOp::Ge, 1024));
    assert_eq!(s.to.addr, AddrSpec::Net("fe80::/10".parse().unwrap()));
    assert_eq!(s.to.port, PortSpec::Op(PortOp::Neq, 25));
    assert_eq!(s.protocols, vec![Protocol::Tcp, Protocol::Udp]);
    assert_eq!(s.proxyprotocols, vec![SocksVersion::V4, SocksVersion::V5]);
    assert_eq!(s.timeouts.io_tcp, Some(4));
    assert_eq!(s.timeouts.io_udp, Some(3));
    assert_eq!(s.udp_portrange, Some((40000, 40100)));
    let last = &c.socks_rules[2];
    assert_eq!(last.to.addr, AddrSpec::Name("localhost".into()));
    assert_eq!(last.to.port, PortSpec::Range(22, 443));
}

#[test]
fn printed_config_reads_back_equal() {
    for text in [SEED, EVERYTHING] {
        let a = p(text);
        let printed = a.to_string();
        let b = p(&printed);
        assert_eq!(b.to_string(), printed);
        assert_eq!(a.client_rules.len(), b.client_rules.len());
        assert_eq!(a.socksmethods, b.socksmethods);
        assert_eq!(a.timeouts, b.timeouts);
        assert_eq!(a.socks_rules[0].to, b.socks_rules[0].to);
    }
}

#[test]
fn load_reads_a_file_and_reports_a_missing_one_at_zero() {
    let dir = std::env::temp_dir().join(format!("hasocks-sockd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sockd.conf");
    std::fs::write(&path, SEED).unwrap();
    assert_eq!(load(&path).unwrap().socks_rules.len(), 1);
    let missing = dir.join("missing.conf");
    let err = load(&missing).unwrap_err();
    assert_eq!((err.line, err.col), (0, 0));
    assert!(err
        .to_string()
        .starts_with(&format!("{}:0:0: cannot read config", missing.display())));
    std::fs::remove_dir_all(&dir).unwrap();
}

// One test per error class: exact position, message naming the keyword.

#[test]
fn unsupported_dante_keyword_in_rule() {
    let text = "internal: lo\nsocks pass {\n    from: 0/0 to: 0/0\n    redirect: 10240\n}\n";
    assert_eq!(
        e(text),
        "/etc/sockd.conf:4:5: keyword \"redirect\" is not supported by hasocks"
    );
}

#[test]
fn unsupported_dante_keywords_each_named() {
    for kw in [
        "session.inheritable",
        "redirect",
        "libwrap",
        "method",
        "clientcompatibility",
    ] {
        let text = format!("internal: lo\nsocks pass {{\n  {kw}: x\n}}\n");
        // libwrap's message goes on with its reason.
        assert!(
            e(&text).starts_with(&format!(
                "/etc/sockd.conf:3:3: keyword \"{kw}\" is not supported by hasocks"
            )),
            "{kw}"
        );
    }
    let text = "internal: lo\nsocks pass {\n  via: direct\n}\n";
    assert_eq!(
        e(text),
        "/etc/sockd.conf:3:3: keyword \"via\" is only valid inside a route"
    );
    for (kw, rest) in [("hostid", "pass {"), ("monitor", "{")] {
        let text = format!("internal: lo\n{kw} {rest}\n}}\n");
        assert_eq!(
            e(&text),
            format!("/etc/sockd.conf:2:1: keyword \"{kw}\" is not supported by hasocks")
        );
    }
}

#[test]
fn unknown_keyword() {
    assert_eq!(
        e("internal: lo\n  xyz: 1\n"),
        "/etc/sockd.conf:2:3: unknown keyword \"xyz\""
    );
    assert_eq!(
        e("internal: lo\nclient pass {\n from: 0/0 frm: 0/0\n}"),
        "/etc/sockd.conf:3:12: unknown keyword \"frm\""
    );
}

#[test]
fn unsupported_socksmethod() {
    for m in ["rfc931", "bsdauth", "ldapauth"] {
        assert!(
            e(&format!("internal: lo\nsocksmethod: {m}\n")).starts_with(&format!(
                "/etc/sockd.conf:2:14: socksmethod \"{m}\" is not supported by hasocks"
            ))
        );
    }
    assert!(e("internal: lo\nclientmethod: none rfc931\n").starts_with(
        "/etc/sockd.conf:2:20: clientmethod \"rfc931\" is not supported by hasocks: an ident"
    ));
}

#[test]
fn bad_number() {
    assert_eq!(
        e("internal: lo\ntimeout.io: 1x\n"),
        format!(
            "/etc/sockd.conf:2:13: invalid number \"1x\" (expected 0 to {})",
            u32::MAX
        )
    );
    assert!(
        e("internal: lo\ndebug: 99999999999\n").starts_with("/etc/sockd.conf:2:8: invalid number")
    );
}

#[test]
fn port_out_of_range() {
    assert_eq!(
        e("internal: 127.0.0.1 port = 65536\n"),
        "/etc/sockd.conf:1:28: port 65536 is out of range (0-65535)"
    );
    assert_eq!(
        e("internal: lo\nsocks pass { to: 0/0 port 1 - 99999 }"),
        "/etc/sockd.conf:2:31: port 99999 is out of range (0-65535)"
    );
}

#[test]
fn prefix_too_long() {
    assert_eq!(
        e("internal: lo\nclient pass {\n  from: 10.0.0.0/33 to: 0/0\n}\n"),
        "/etc/sockd.conf:3:9: prefix length /33 is too long for 10.0.0.0 (at most /32)"
    );
    assert!(e("internal: lo\nhasocks.proxyprotocol.from: ::1/200")
        .starts_with("/etc/sockd.conf:2:29: prefix"));
}

#[test]
fn unterminated_brace() {
    assert_eq!(
        e("internal: lo\nclient pass {\n  from: 0/0 to: 0/0\n"),
        "/etc/sockd.conf:2:13: unterminated \"{\": the client rule opened here has no \"}\""
    );
}

#[test]
fn missing_closing_brace_before_next_rule() {
    assert_eq!(
        e("internal: lo\nclient pass {\n  from: 0/0 to: 0/0\nsocks pass {\n}\n"),
        "/etc/sockd.conf:4:1: missing \"}\" before \"socks\" (client rule opened at line 2)"
    );
}

#[test]
fn setting_after_rule() {
    assert_eq!(
        e("internal: lo\nclient pass {\n}\nexternal: eth0\n"),
        "/etc/sockd.conf:4:1: setting \"external\" must come before the rules (first rule at line 2)"
    );
}

#[test]
fn no_internal_address() {
    assert_eq!(
        e("socksmethod: none\n"),
        "/etc/sockd.conf:0:0: no internal: address (need at least one `internal:` line)"
    );
}

#[test]
fn unknown_value_names_the_keyword() {
    assert_eq!(
        e("internal: lo\nexternal.rotation: random"),
        "/etc/sockd.conf:2:20: unknown external.rotation \"random\" (none, same-same, route)"
    );
    assert_eq!(
        e("internal: lo\nsocks pass { log: everything }"),
        "/etc/sockd.conf:2:19: unknown log \"everything\""
    );
    assert_eq!(
        e("internal: lo\nsocks pass { protocol: sctp }"),
        "/etc/sockd.conf:2:24: unknown protocol \"sctp\""
    );
    assert_eq!(
        e("internal: lo\nlogoutput: syslog/nope"),
        "/etc/sockd.conf:2:12: unknown syslog facility \"nope\""
    );
    assert_eq!(
        e("internal: lo\nsocks pass { to: 0/0 port = gopher }"),
        "/etc/sockd.conf:2:29: unknown port or service name \"gopher\""
    );
}

#[test]
fn bad_address() {
    assert_eq!(
        e("internal: 10.0.0.300"),
        "/etc/sockd.conf:1:11: invalid IP address \"10.0.0.300\""
    );
    assert_eq!(
        e("internal: lo\nsocks pass { to: 10.0.0.0/255.255.0.255 }"),
        "/etc/sockd.conf:2:18: netmask \"255.255.0.255\" is not contiguous"
    );
    assert_eq!(
        e("internal: lo\nhasocks.udp.advertise: eth0"),
        "/etc/sockd.conf:2:24: invalid IP address \"eth0\""
    );
}

#[test]
fn stray_closing_brace() {
    assert_eq!(
        e("internal: lo\n}\n"),
        "/etc/sockd.conf:2:1: unexpected \"}\""
    );
}

#[test]
fn control_character() {
    assert_eq!(
        e("internal: lo\n\u{0}"),
        "/etc/sockd.conf:2:1: unexpected control character '\\0'"
    );
}

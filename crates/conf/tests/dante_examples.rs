//! Dante's own example configs (Debian's dante-server package,
//! /usr/share/doc/dante-server/examples), with their example lines uncommented, in
//! `tests/data/dante/`: every keyword in them is read with Dante's meaning, or refused at its
//! file:line:col with the reason. The test walks each file: a refusal must be one of the
//! expected ones; its line is then commented out and the rest read again, to the end.

use std::path::PathBuf;

use hasocks_conf::sockd::{
    AddrSpec, Command, HostSpec, Method, PortOp, PortSpec, SockdConfig, Verdict, Via,
};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/dante")
        .join(name)
}

/// Reads `name`, commenting out each refused line in turn; returns the config of what is
/// left and the refusals as (line, col, message).
fn walk(name: &str) -> (SockdConfig, Vec<(u32, u32, String)>) {
    let path = data(name);
    let mut text = std::fs::read_to_string(&path).unwrap();
    let mut refusals = Vec::new();
    loop {
        match hasocks_conf::sockd::parse(&text, &path) {
            Ok(c) => return (c, refusals),
            Err(e) => {
                assert!(e.line > 0, "{e}");
                refusals.push((e.line, e.col, e.message.clone()));
                let mut lines: Vec<String> = text.lines().map(String::from).collect();
                let l = &mut lines[e.line as usize - 1];
                *l = format!("#{l}");
                text = lines.join("\n");
                assert!(refusals.len() < 20, "{refusals:?}");
            }
        }
    }
}

/// The warning at `line`, if any.
fn warning(c: &SockdConfig, line: u32) -> String {
    c.warnings
        .iter()
        .filter(|w| w.line == line)
        .map(|w| w.message.clone())
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn danted_conf_is_read_with_dantes_meaning_or_refused_with_reasons() {
    let (c, refusals) = walk("danted.conf");
    let expected: [(u32, u32, &str); 4] = [
        (
            69,
            23,
            "socksmethod \"rfc931\" is not supported by hasocks: an ident (RFC 1413)",
        ),
        (
            167,
            23,
            "clientmethod \"rfc931\" is not supported by hasocks: an ident",
        ),
        (
            202,
            9,
            "keyword \"libwrap\" is not supported by hasocks: it runs TCP wrappers",
        ),
        // Dante refuses it too ("method username (2) is not a valid method for
        // clientmethods").
        (243, 23, "\"username\" cannot be a clientmethod"),
    ];
    assert_eq!(refusals.len(), expected.len(), "{refusals:#?}");
    for ((l, col, m), (el, ecol, em)) in refusals.iter().zip(expected) {
        assert_eq!((*l, *col), (el, ecol), "{m}");
        assert!(m.starts_with(em), "line {l}: {m}");
    }
    // Accepted with Dante's warnings: the deprecated spellings and the harmless settings.
    assert!(warning(&c, 72).contains("read as \"pam.username\""));
    assert!(warning(&c, 114).contains("\"extension: bind\" is deprecated"));
    for line in [89, 90, 102, 106, 134] {
        assert!(
            warning(&c, line).contains("is ignored by hasocks"),
            "line {line}"
        );
    }
    assert_eq!(
        c.socksmethods,
        vec![Method::Username, Method::None, Method::PamUsername]
    );
    assert_eq!(c.internals.len(), 2);
    assert_eq!(
        c.externals,
        vec![HostSpec::Ip("192.168.1.1".parse().unwrap())]
    );
    // Rules as Dante reads them: order, verdicts, interfaces and domains as names.
    let verdicts: Vec<Verdict> = c.socks_rules.iter().map(|r| r.verdict).collect();
    assert_eq!(verdicts.len(), 9);
    assert_eq!(c.socks_rules[0].to.addr, AddrSpec::Name("lo0".into()));
    assert_eq!(
        c.socks_rules[4].commands,
        vec![Command::BindReply, Command::UdpReply]
    );
    assert_eq!(
        c.socks_rules[5].to.addr,
        AddrSpec::Domain("example.com".into())
    );
    // The route: http connects from 10/8 go through socks.example.net's SOCKS port.
    let r = &c.routing.routes[0];
    assert_eq!(r.from.addr, AddrSpec::Net("10.0.0.0/8".parse().unwrap()));
    assert_eq!(r.to.port, PortSpec::Op(PortOp::Eq, 80));
    assert_eq!(
        r.via,
        Via::Proxy(HostSpec::Name("socks.example.net".into()), 1080)
    );
}

#[test]
fn danted_basic_and_chaining_are_read_whole() {
    let (c, refusals) = walk("danted-basic.conf");
    assert!(refusals.is_empty(), "{refusals:?}");
    assert_eq!(c.socks_rules.len(), 3);
    assert_eq!(c.socks_rules[1].to.port, PortSpec::Op(PortOp::Le, 1023));
    assert_eq!(c.client_rules[0].from.addr, AddrSpec::Name("fxp0".into()));
    let (c, refusals) = walk("danted-chaining.conf");
    assert!(refusals.is_empty(), "{refusals:?}");
    let r = &c.routing.routes[0];
    assert_eq!(
        r.via,
        Via::Proxy(HostSpec::Name("sockd2.example.org".into()), 1080)
    );
    assert_eq!(r.commands, vec![Command::Connect]);
    assert_eq!(r.to.port, PortSpec::Op(PortOp::Eq, 80));
}

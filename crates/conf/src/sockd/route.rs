//! `route { from: ... to: ... via: HOST port = N | direct ... }`: Dante's server chaining
//! (`danted.conf(5)` ROUTES, `dante.conf(5)` for the syntax), checked as Dante checks it,
//! and refused with a reason where hasocks cannot carry what the route asks for.

use super::addr::{parse_hostspec, parse_port};
use super::cursor::{Cursor, Word};
use super::keywords::{is_route_item, is_rule_item, is_setting, is_unsupported};
use super::lexer::{Sym, Tok, Token};
use super::rule::{command, from_or_to, methods, protocol};
use super::{
    Command, Endpoint, HostSpec, Method, Protocol, ProxyProtocol, Route, SockdConfig, Via,
};
use crate::ConfError;

/// The port of a `via:` without one (Dante's SOCKS port).
const DEFAULT_VIA_PORT: u16 = 1080;

/// Where the items that the whole-route checks complain about were written.
#[derive(Default)]
struct ItemsAt {
    via: Option<Word>,
    proxyprotocol: Option<Word>,
    protocol: Vec<(Protocol, Word)>,
    command: Vec<(Command, Word)>,
    username: Option<Word>,
}

/// Parses a route starting at its `route` keyword. `globals` holds the settings (a
/// `username` route needs a global method that gives one).
pub(super) fn route(c: &mut Cursor<'_>, globals: &SockdConfig) -> Result<Route, ConfError> {
    let kw = c.word("route")?;
    let open = match c.peek() {
        Some(Token {
            tok: Tok::LBrace,
            line,
            col,
        }) => (*line, *col),
        _ => return Err(c.err_here("expected \"{\" after \"route\"")),
    };
    c.bump();
    let mut r = Route {
        line: kw.line,
        from: Endpoint::any(),
        to: Endpoint::any(),
        via: Via::Direct,
        commands: Vec::new(),
        protocols: Vec::new(),
        proxyprotocols: Vec::new(),
        methods: Vec::new(),
    };
    let mut at = ItemsAt::default();
    let mut seen = [false; 2];
    while let Some(item) = c.block_item(open, "route")? {
        if !is_route_item(&item.text) {
            let msg = if item.text == "clientcompatibility" {
                "keyword \"clientcompatibility\" is not supported by hasocks: its one value, \
                 necgssapi, is for GSSAPI towards the upstream, which hasocks does not speak"
                    .to_string()
            } else if is_unsupported(&item.text) {
                super::keywords::refused(&item.text)
            } else if is_rule_item(&item.text) || is_setting(&item.text) {
                format!(
                    "keyword \"{}\" is not valid in a route (a route has from, to, via, \
                     command, protocol, proxyprotocol and method)",
                    item.text
                )
            } else {
                format!("unknown keyword \"{}\"", item.text)
            };
            return Err(c.err_word(&item, msg));
        }
        c.colon(&item)?;
        match item.text.as_str() {
            "from" | "to" => from_or_to(c, &item, (&mut r.from, &mut r.to), &mut seen, "route")?,
            "via" => {
                if at.via.is_some() {
                    return Err(c.err_word(&item, "duplicate \"via:\" in route"));
                }
                r.via = via(c, &item)?;
                at.via = Some(item);
            }
            "command" => {
                for w in c.values(&item)? {
                    let cmd = command(&w.text)
                        .ok_or_else(|| c.err_word(&w, format!("unknown command \"{}\"", w.text)))?;
                    if matches!(cmd, Command::BindReply | Command::UdpReply) {
                        c.warn(
                            &w,
                            format!(
                                "command \"{}\" has no effect in a route: a route is chosen per \
                                 request, and the bind or udpassociate route carries its replies",
                                w.text
                            ),
                        );
                    } else {
                        r.commands.push(cmd);
                        at.command.push((cmd, w));
                    }
                }
            }
            "protocol" => {
                for w in c.values(&item)? {
                    let p = protocol(&w.text).ok_or_else(|| {
                        c.err_word(&w, format!("unknown protocol \"{}\"", w.text))
                    })?;
                    r.protocols.push(p);
                    at.protocol.push((p, w));
                }
            }
            "proxyprotocol" => {
                for w in c.values(&item)? {
                    r.proxyprotocols.push(proxy_protocol(c, &w)?);
                }
                at.proxyprotocol.get_or_insert(item);
            }
            "method" | "socksmethod" => {
                for (m, w) in methods(c, &item)? {
                    match m {
                        Method::None => {}
                        Method::Username => {
                            at.username.get_or_insert(w);
                        }
                        _ => {
                            let why = if w.text == "gssapi" {
                                "hasocks does not speak GSS-API to an upstream"
                            } else {
                                "the others check a client here; they are nothing to offer \
                                 an upstream"
                            };
                            return Err(c.err_word(
                                &w,
                                format!(
                                    "a route offers its upstream method none or username, not \
                                     \"{}\" ({why})",
                                    w.text
                                ),
                            ));
                        }
                    }
                    if !r.methods.contains(&m) {
                        r.methods.push(m);
                    }
                }
            }
            // `extension:` (Dante's bind extension), deprecated by Dante itself.
            _ => extension(c, &item)?,
        }
    }
    if at.via.is_none() {
        return Err(c.err_word(
            &kw,
            "route has no \"via:\" (an upstream \"HOST port = N\", or \"direct\")",
        ));
    }
    check_route(c, &r, &at, globals)?;
    Ok(r)
}

/// One `proxyprotocol:` word; `upnp` is refused with its reason.
fn proxy_protocol(c: &Cursor<'_>, w: &Word) -> Result<ProxyProtocol, ConfError> {
    match w.text.as_str() {
        "socks_v4" => Ok(ProxyProtocol::SocksV4),
        "socks_v5" => Ok(ProxyProtocol::SocksV5),
        "http" => Ok(ProxyProtocol::Http),
        "upnp" => Err(c.err_word(
            w,
            "proxyprotocol \"upnp\" is not supported by hasocks: UPnP asks a home router to \
             open a port, it is no proxy a server can chain through",
        )),
        v => Err(c.err_word(w, format!("unknown proxyprotocol \"{v}\""))),
    }
}

/// `via: direct`, or `via: ADDRESS|NAME [port = N]`.
fn via(c: &mut Cursor<'_>, kw: &Word) -> Result<Via, ConfError> {
    let w = c.one_value(kw)?;
    if w.text == "direct" {
        return Ok(Via::Direct);
    }
    if w.text.contains('/') || w.text.starts_with('.') {
        return Err(c.err_word(
            &w,
            format!(
                "via: \"{}\" is a network or domain; an upstream is one address or host name",
                w.text
            ),
        ));
    }
    let host = parse_hostspec(&w.text).map_err(|m| c.err_word(&w, m))?;
    if let HostSpec::Ip(ip) = host {
        if ip.is_unspecified() {
            return Err(c.err_word(&w, "via: an unspecified address is no upstream"));
        }
    }
    if c.peek_word() != Some("port") || c.starts_item(0) {
        return Ok(Via::Proxy(host, DEFAULT_VIA_PORT));
    }
    c.bump();
    if let Some(Token {
        tok: Tok::Op(s), ..
    }) = c.peek()
    {
        if *s != Sym::Eq {
            return Err(c.err_here(
                "via: the upstream's port takes \"=\" only (it is one port, not a condition)",
            ));
        }
        c.bump();
    }
    let p = c.word("a port number")?;
    let port = parse_port(&p.text).map_err(|m| c.err_word(&p, m))?;
    if port == 0 {
        return Err(c.err_word(&p, "via: port 0 is no upstream"));
    }
    Ok(Via::Proxy(host, port))
}

/// `extension: bind` warns (Dante deprecates it too); other values are errors.
pub(super) fn extension(c: &mut Cursor<'_>, kw: &Word) -> Result<(), ConfError> {
    for w in c.values(kw)? {
        if w.text != "bind" {
            return Err(c.err_word(&w, format!("unknown extension \"{}\"", w.text)));
        }
        c.warn(
            &w,
            "\"extension: bind\" is deprecated (by Dante too) and ignored: hasocks does not \
             implement Dante's private BIND extension; standard BIND works",
        );
    }
    Ok(())
}

/// Dante's whole-route checks, and the combinations hasocks cannot carry, each at the item
/// it is about.
fn check_route(
    c: &mut Cursor<'_>,
    r: &Route,
    at: &ItemsAt,
    globals: &SockdConfig,
) -> Result<(), ConfError> {
    let socks = r.proxyprotocols.iter().any(|p| *p != ProxyProtocol::Http);
    if let Some(w) = &at.proxyprotocol {
        if socks && r.proxyprotocols.contains(&ProxyProtocol::Http) {
            return Err(c.err_word(
                w,
                "cannot combine proxyprotocol socks with other proxyprotocols (Dante's rule: an \
                 upstream speaks SOCKS or HTTP)",
            ));
        }
    }
    let proto = r.upstream_protocol();
    let direct = r.via == Via::Direct;
    if let (Some(w), false) = (&at.username, direct) {
        if proto != ProxyProtocol::SocksV5 {
            return Err(c.err_word(
                w,
                format!(
                    "route specifies method username, but that is not supported by the \
                     specified proxy protocol(s): {} (username needs socks_v5)",
                    proto.word()
                ),
            ));
        }
        if !globals.socksmethods.iter().any(|m| m.provides_name()) {
            return Err(c.err_word(
                w,
                "route specifies method username, but no method of the global socksmethod list \
                 gives a user name and password to forward (username, pam.username, \
                 hasocks.passwordfile)",
            ));
        }
        c.warn(
            w,
            "this route forwards each client's user name and password to its upstream in \
             cleartext (RFC 1929), as Dante does",
        );
    }
    if direct {
        return Ok(());
    }
    let why = |cmd: Command| match (proto, cmd) {
        (ProxyProtocol::Http, _) => Some("an HTTP proxy carries CONNECT only"),
        (ProxyProtocol::SocksV4, Command::UdpAssociate) => Some("SOCKS4 has no UDP"),
        (ProxyProtocol::SocksV4, _) => {
            Some("hasocks chains BIND through socks_v5 upstreams only; add socks_v5")
        }
        _ => None,
    };
    for (cmd, w) in &at.command {
        if let Some(reason) = why(*cmd).filter(|_| *cmd != Command::Connect) {
            return Err(c.err_word(
                w,
                format!(
                    "command \"{}\" cannot go through proxyprotocol {}: {reason}",
                    w.text,
                    proto.word()
                ),
            ));
        }
    }
    if let Some((_, w)) = at.protocol.iter().find(|(p, _)| *p == Protocol::Udp) {
        if proto != ProxyProtocol::SocksV5 && !r.protocols.contains(&Protocol::Tcp) {
            return Err(c.err_word(
                w,
                format!(
                    "protocol udp cannot go through proxyprotocol {}: only a socks_v5 upstream \
                     carries UDP",
                    proto.word()
                ),
            ));
        }
    }
    if let (Some(w), true) = (&at.via, r.effective_commands().is_empty()) {
        return Err(c.err_word(
            w,
            "this route matches no request: its command: and protocol: exclude each other",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::path::Path;

    use crate::sockd::{
        parse, AddrSpec, Command, HostSpec, Method, PortOp, PortSpec, Protocol, ProxyProtocol,
        Route, RouteSelect, SockdConfig, Via,
    };

    const HEAD: &str = "internal: lo\nsocksmethod: username none\n";

    fn cfg(body: &str) -> Result<SockdConfig, (u32, u32, String)> {
        parse(&format!("{HEAD}{body}"), Path::new("r.conf")).map_err(|e| (e.line, e.col, e.message))
    }

    fn route(body: &str) -> Route {
        let mut c = cfg(&format!("route {{\n{body}\n}}\n")).unwrap_or_else(|e| panic!("{e:?}"));
        c.routing.routes.remove(0)
    }

    fn err(body: &str) -> (u32, u32, String) {
        cfg(&format!("route {{\n{body}\n}}\n")).unwrap_err()
    }

    #[test]
    fn danted_example_route_reads_as_dante_means_it() {
        let r =
            route("from: 10.0.0.0/8 to: 0.0.0.0/0 port = http via: socks.example.net port = socks");
        assert_eq!(r.line, 3);
        assert_eq!(r.to.port, PortSpec::Op(PortOp::Eq, 80));
        assert_eq!(
            r.via,
            Via::Proxy(HostSpec::Name("socks.example.net".into()), 1080)
        );
        assert_eq!(r.upstream_protocol(), ProxyProtocol::SocksV5);
        assert_eq!(
            r.effective_commands(),
            vec![Command::Connect, Command::Bind, Command::UdpAssociate]
        );
    }

    #[test]
    fn every_via_form() {
        for (text, via) in [
            (
                "192.0.2.1 port = 1081",
                Via::Proxy(HostSpec::Ip("192.0.2.1".parse().unwrap()), 1081),
            ),
            (
                "::1 port = 1081",
                Via::Proxy(HostSpec::Ip(IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1])), 1081),
            ),
            (
                "proxy.example port 3128",
                Via::Proxy(HostSpec::Name("proxy.example".into()), 3128),
            ),
            (
                "192.0.2.1",
                Via::Proxy(HostSpec::Ip("192.0.2.1".parse().unwrap()), 1080),
            ),
            ("direct", Via::Direct),
        ] {
            assert_eq!(
                route(&format!("from: 0/0 to: 0/0 via: {text}")).via,
                via,
                "{text}"
            );
        }
        for (text, want) in [
            ("10.0.0.0/8 port = 1080", "is a network or domain"),
            (".example.com port = 1080", "is a network or domain"),
            ("0.0.0.0 port = 1080", "unspecified address"),
            ("192.0.2.1 port > 1080", "takes \"=\" only"),
            ("192.0.2.1 port = 0", "port 0"),
            ("192.0.2.1 port = 70000", "out of range"),
        ] {
            let (l, _, m) = err(&format!("from: 0/0 to: 0/0 via: {text}"));
            assert_eq!(l, 4, "{text}");
            assert!(m.contains(want), "{text}: {m}");
        }
    }

    #[test]
    fn every_address_form_in_from_and_to() {
        for (text, addr) in [
            ("0/0", AddrSpec::Any),
            ("10.1.0.0/16", AddrSpec::Net("10.1.0.0/16".parse().unwrap())),
            (
                "10.0.0.0/255.0.0.0",
                AddrSpec::Net("10.0.0.0/8".parse().unwrap()),
            ),
            (
                "2001:db8::/32",
                AddrSpec::Net("2001:db8::/32".parse().unwrap()),
            ),
            ("192.0.2.9", AddrSpec::Net("192.0.2.9/32".parse().unwrap())),
            (".example.com", AddrSpec::Domain("example.com".into())),
            (".", AddrSpec::Domain(String::new())),
            ("host.example", AddrSpec::Name("host.example".into())),
            ("lo", AddrSpec::Name("lo".into())),
        ] {
            let r = route(&format!(
                "from: {text} port 1-9 to: {text} port != 7 via: direct"
            ));
            assert_eq!((&r.from.addr, &r.to.addr), (&addr, &addr), "{text}");
            assert_eq!(r.from.port, PortSpec::Range(1, 9));
            assert_eq!(r.to.port, PortSpec::Op(PortOp::Neq, 7));
        }
    }

    #[test]
    fn method_is_dantes_word_and_username_warns_of_cleartext() {
        let c = cfg("route {\nfrom: 0/0 to: 0/0 via: 127.0.0.1 port = 1\nmethod: none username\n}")
            .unwrap();
        assert_eq!(
            c.routing.routes[0].methods,
            vec![Method::None, Method::Username]
        );
        let w = &c.warnings[0];
        assert_eq!((w.line, w.col), (5, 14));
        assert!(w.message.contains("cleartext"), "{}", w.message);
        let r = route("via: 127.0.0.1 port = 1 socksmethod: none");
        assert_eq!(r.methods, vec![Method::None]);
    }

    #[test]
    fn dantes_route_checks_are_positioned_errors() {
        let (l, c, m) = err("via: 127.0.0.1 port = 1\nproxyprotocol: socks_v4 socks_v5 http");
        assert_eq!((l, c), (5, 1));
        assert!(m.contains("cannot combine proxyprotocol socks"), "{m}");
        let (l, c, m) = err("via: 127.0.0.1 port = 1\nproxyprotocol: socks_v4\nmethod: username");
        assert_eq!((l, c), (6, 9));
        assert!(
            m.contains("not supported by the specified proxy protocol(s): socks_v4"),
            "{m}"
        );
        let text = "internal: lo\nsocksmethod: none\nroute {\nvia: ::1\nmethod: username\n}";
        let e = parse(text, Path::new("r")).unwrap_err();
        assert!(
            e.message
                .contains("no method of the global socksmethod list"),
            "{e}"
        );
        let (_, _, m) = err("from: 0/0 to: 0/0");
        assert!(m.contains("route has no \"via:\""), "{m}");
    }

    #[test]
    fn http_upstreams_carry_connect_only() {
        let r = route("via: 127.0.0.1 port = 3128\nproxyprotocol: http");
        assert_eq!(r.upstream_protocol(), ProxyProtocol::Http);
        assert_eq!(r.effective_commands(), vec![Command::Connect]);
        let (l, c, m) =
            err("via: 127.0.0.1 port = 3128\nproxyprotocol: http\ncommand: connect bind");
        assert_eq!((l, c), (6, 18));
        assert!(m.contains("an HTTP proxy carries CONNECT only"), "{m}");
        let (_, _, m) = err("via: 127.0.0.1 port = 3128\nproxyprotocol: http\nprotocol: udp");
        assert!(m.contains("only a socks_v5 upstream carries UDP"), "{m}");
        let (_, _, m) = err("via: 127.0.0.1\nproxyprotocol: socks_v4\ncommand: udpassociate");
        assert!(m.contains("SOCKS4 has no UDP"), "{m}");
        let (_, _, m) = err("via: 127.0.0.1\nproxyprotocol: http\nmethod: username");
        assert!(m.contains("username needs socks_v5"), "{m}");
    }

    #[test]
    fn protocol_and_command_narrow_the_route() {
        let r = route("via: 127.0.0.1\nprotocol: udp");
        assert_eq!(r.effective_commands(), vec![Command::UdpAssociate]);
        assert_eq!(r.protocols, vec![Protocol::Udp]);
        let r = route("via: 127.0.0.1\ncommand: connect bind\nprotocol: tcp");
        assert_eq!(
            r.effective_commands(),
            vec![Command::Connect, Command::Bind]
        );
        let (_, _, m) = err("via: 127.0.0.1\ncommand: connect\nprotocol: udp");
        assert!(m.contains("matches no request"), "{m}");
        let c = cfg("route {\nvia: direct\ncommand: bindreply connect\n}").unwrap();
        assert!(c.warnings[0].message.contains("no effect in a route"));
    }

    #[test]
    fn what_hasocks_cannot_do_in_a_route_is_refused_with_its_reason() {
        for (body, want) in [
            ("via: 127.0.0.1\nproxyprotocol: upnp", "UPnP"),
            (
                "via: 127.0.0.1\nclientcompatibility: necgssapi",
                "necgssapi",
            ),
            (
                "via: 127.0.0.1\ngssapi.servicename: rcmd",
                "not supported by hasocks",
            ),
            (
                "via: 127.0.0.1\nmethod: gssapi",
                "does not speak GSS-API to an upstream",
            ),
            ("via: 127.0.0.1\nmethod: pam.any", "none or username"),
            ("via: 127.0.0.1\nlog: connect", "not valid in a route"),
            ("via: 127.0.0.1\nvia: direct", "duplicate \"via:\""),
        ] {
            let (l, _, m) = err(body);
            assert_eq!(l, 5, "{body}");
            assert!(m.contains(want), "{body}: {m}");
        }
    }

    #[test]
    fn route_settings_and_deprecated_spellings() {
        let c = cfg(
            "route.maxfail: 3\nroute.badexpire: 0\nhasocks.route.select: source-hash\n\
             hasocks.route.timeout: 2\nhasocks.route.check.interval: 5\nextension: bind\n\
             socksmethod: pam\n",
        )
        .unwrap();
        let r = &c.routing;
        assert_eq!(
            (r.maxfail, r.badexpire, r.timeout, r.check_interval),
            (3, 0, 2, 5)
        );
        assert_eq!(r.select, RouteSelect::SourceHash);
        assert!(c.socksmethods.contains(&Method::PamUsername));
        let msgs: Vec<&str> = c.warnings.iter().map(|w| w.message.as_str()).collect();
        assert!(
            msgs.iter().any(|m| m.contains("extension: bind")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains("read as \"pam.username\"")),
            "{msgs:?}"
        );
        let (_, _, m) = cfg("extension: forward").unwrap_err();
        assert!(m.contains("unknown extension"), "{m}");
        let (_, _, m) = cfg("socksmethod: rfc931").unwrap_err();
        assert!(m.contains("RFC 1413"), "{m}");
    }

    #[test]
    fn routes_come_after_the_settings_and_mix_with_rules() {
        let c = cfg("socks pass {\n}\nroute {\nvia: direct\n}\nsocks block {\n}\n").unwrap();
        assert_eq!((c.socks_rules.len(), c.routing.routes.len()), (2, 1));
        let (l, _, m) = cfg("route {\nvia: direct\n}\nroute.maxfail: 2\n").unwrap_err();
        assert_eq!(l, 6);
        assert!(m.contains("must come before"), "{m}");
        let (l, c, m) = cfg("route {\nvia: direct\nsocks pass {\n}\n").unwrap_err();
        assert_eq!((l, c), (5, 1));
        assert!(m.contains("missing \"}\""), "{m}");
        let (_, _, m) = cfg("socks pass {\n}\nroute\n").unwrap_err();
        assert!(m.contains("expected \"{\" after \"route\""), "{m}");
    }

    #[test]
    fn a_route_prints_back_to_itself() {
        let text = format!(
            "{HEAD}route.maxfail: 2\nroute {{\nfrom: 10.0.0.0/8 port 1-2 to: . via: ::1 port = 9\n\
             command: connect\nprotocol: tcp\nproxyprotocol: socks_v5\nmethod: username none\n}}\n"
        );
        let c = parse(&text, Path::new("r")).unwrap();
        let again = parse(&c.to_string(), Path::new("r")).unwrap();
        assert_eq!(again.without_positions(), c.without_positions());
    }
}

//! `client pass|block { ... }` and `socks pass|block { ... }` rules, their endpoints and lists.

use super::addr::{parse_addr_spec, parse_port, parse_u32};
use super::cursor::{Cursor, Word};
use super::keywords::{self, is_rule_item, is_setting, is_unsupported};
use super::lexer::{Tok, Token};
use super::{
    Command, Endpoint, LogFlags, Method, MethodUse, PortOp, PortSpec, Protocol, Rule, SockdConfig,
    SocksVersion, StateKey, Throttle, Verdict,
};
use crate::ConfError;

/// Parses a rule starting at its `client`/`socks` keyword; returns whether it is a client rule.
/// `globals` holds the settings (which all come before the rules): a rule's methods must be
/// among the global ones.
pub(super) fn rule(c: &mut Cursor<'_>, globals: &SockdConfig) -> Result<(bool, Rule), ConfError> {
    let kind = c.word("client or socks")?;
    let verdict_w = c.word("pass or block")?;
    let verdict = if verdict_w.text == "pass" {
        Verdict::Pass
    } else {
        Verdict::Block
    };
    let open = match c.peek() {
        Some(Token {
            tok: Tok::LBrace,
            line,
            col,
        }) => (*line, *col),
        _ => {
            return Err(c.err_here(format!(
                "expected \"{{\" after \"{} {}\"",
                kind.text, verdict_w.text
            )))
        }
    };
    c.bump();
    let mut r = Rule::new(kind.line, verdict);
    let mut seen = [false; 2];
    // Where the items that later checks complain about were written.
    let mut at = ItemsAt::default();
    let what = format!("{} rule", kind.text);
    while let Some(kw) = c.block_item(open, &what)? {
        if !is_rule_item(&kw.text) {
            let msg = if is_setting(&kw.text) {
                format!("setting \"{}\" cannot appear inside a rule", kw.text)
            } else if is_unsupported(&kw.text) {
                super::keywords::refused(&kw.text)
            } else if keywords::is_route_item(&kw.text) {
                format!("keyword \"{}\" is only valid inside a route", kw.text)
            } else {
                format!("unknown keyword \"{}\"", kw.text)
            };
            return Err(c.err_word(&kw, msg));
        }
        c.colon(&kw)?;
        match kw.text.as_str() {
            "from" | "to" => from_or_to(c, &kw, (&mut r.from, &mut r.to), &mut seen, "rule")?,
            "command" => r.commands.extend(list(c, &kw, command)?),
            "protocol" => r.protocols.extend(list(c, &kw, protocol)?),
            "proxyprotocol" => r.proxyprotocols.extend(list(c, &kw, socks_version)?),
            "socksmethod" => {
                for (m, w) in methods(c, &kw)? {
                    subset(c, &w, m, &globals.socksmethods, "socksmethod")?;
                    r.socksmethods.push(m);
                }
            }
            "clientmethod" => {
                for (m, w) in client_methods(c, &kw)? {
                    let global = effective_clientmethods(&globals.clientmethods);
                    subset(c, &w, m, &global, "clientmethod")?;
                    r.auth.clientmethods.push(m);
                }
            }
            "user" | "group" => {
                let names = c.line_words(&kw)?.into_iter().map(|w| w.text);
                if kw.text == "user" {
                    r.auth.users.extend(names);
                } else {
                    r.auth.groups.extend(names);
                }
                at.names.get_or_insert(kw.clone());
            }
            "pam.servicename" => r.auth.pam_servicename = Some(c.one_value(&kw)?.text),
            "gssapi.servicename" | "gssapi.keytab" | "gssapi.enctype" => {
                if kind.text != "client" {
                    c.warn(
                        &kw,
                        format!(
                            "\"{}\" in a socks rule changes nothing: the method is negotiated \
                             before the socks rules, under the client rule's gssapi.* settings",
                            kw.text
                        ),
                    );
                }
                super::gssapi::item(c, &kw, &mut r.auth.gssapi)?
            }
            "session.max" => r.limits.max = Some(c.parsed(&kw, positive)?),
            "session.throttle" => r.limits.throttle = Some(c.parsed(&kw, throttle)?),
            "session.state.key" => {
                let w = c.one_value(&kw)?;
                r.limits.state_key = Some(match w.text.as_str() {
                    "from" => StateKey::From,
                    "hostid" => {
                        return Err(c.err_word(
                            &w,
                            "session.state.key \"hostid\" is not supported by hasocks \
                             (it needs the TCP hostid option); use \"from\"",
                        ))
                    }
                    other => {
                        return Err(c.err_word(&w, format!("unknown session.state.key \"{other}\"")))
                    }
                });
                at.state_key = Some(kw.clone());
            }
            "session.state.max" => {
                r.limits.state_max = Some(c.parsed(&kw, positive)?);
                at.state_limit.get_or_insert(kw.clone());
            }
            "session.state.throttle" => {
                r.limits.state_throttle = Some(c.parsed(&kw, throttle)?);
                at.state_limit.get_or_insert(kw.clone());
            }
            "bandwidth" => {
                r.limits.bandwidth = Some(c.parsed(&kw, |v| {
                    v.parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("bandwidth needs bytes per second > 0, not \"{v}\""))
                })?)
            }
            "log" => {
                for w in c.values(&kw)? {
                    set_log_flag(&mut r.log, &w.text).map_err(|m| c.err_word(&w, m))?;
                }
            }
            "timeout.negotiate" => r.timeouts.negotiate = Some(c.parsed(&kw, parse_u32)?),
            "timeout.connect" => r.timeouts.connect = Some(c.parsed(&kw, parse_u32)?),
            "timeout.io" => {
                let n = c.parsed(&kw, parse_u32)?;
                r.timeouts.io_tcp = Some(n);
                r.timeouts.io_udp = Some(n);
            }
            "timeout.io.tcp" => r.timeouts.io_tcp = Some(c.parsed(&kw, parse_u32)?),
            "timeout.io.udp" => r.timeouts.io_udp = Some(c.parsed(&kw, parse_u32)?),
            "timeout.tcp_fin_wait" => {
                c.parsed(&kw, parse_u32)?;
                c.warn(&kw, "\"timeout.tcp_fin_wait\" is ignored by hasocks");
            }
            _ => {
                // udp.portrange
                let first = c.one_value(&kw)?;
                match port_range(c, &first)? {
                    (a, Some(b)) => r.udp_portrange = Some((a, b)),
                    (_, None) => {
                        return Err(c.err_word(&first, "udp.portrange needs a range \"A-B\""));
                    }
                }
            }
        }
    }
    let is_client = kind.text == "client";
    check_rule(c, &r, is_client, globals, &at)?;
    Ok((is_client, r))
}

/// Positions of rule items that the whole-rule checks point at.
#[derive(Default)]
struct ItemsAt {
    names: Option<Word>,
    state_key: Option<Word>,
    state_limit: Option<Word>,
}

/// Dante's whole-rule checks (`sockd/rule.c`, `lib/config_parse.y`), each at the item it is
/// about.
fn check_rule(
    c: &Cursor<'_>,
    r: &Rule,
    is_client: bool,
    globals: &SockdConfig,
    at: &ItemsAt,
) -> Result<(), ConfError> {
    let kind = if is_client { "client" } else { "socks" };
    if let Some(kw) = &at.names {
        // A client rule is decided before any SOCKS byte: only its clientmethod could give a
        // name, and none of the ones hasocks has (none, pam.any, pam.address) can.
        let (what, list): (&str, Vec<Method>) = if is_client {
            (
                "clientmethod",
                effective_clientmethods(&r.auth.clientmethods),
            )
        } else if r.socksmethods.is_empty() {
            ("socksmethod", globals.socksmethods.clone())
        } else {
            ("socksmethod", r.socksmethods.clone())
        };
        let explicit = if is_client {
            !r.auth.clientmethods.is_empty()
        } else {
            !r.socksmethods.is_empty()
        };
        let unnamed = list.iter().find(|m| !m.provides_name());
        let fails = if explicit || is_client {
            unnamed.is_some()
        } else {
            !list.iter().any(|m| m.provides_name())
        };
        if fails {
            let m = unnamed.map_or("none", |m| m.word());
            return Err(c.err_word(
                kw,
                format!(
                    "the settings in this {kind}-rule requires the client to provide a \
                     user/group-name in some way, but this rule specifies, implicitly or \
                     explicitly, the {what} {m}, which cannot be depended on to provide this \
                     information"
                ),
            ));
        }
    }
    let l = &r.limits;
    if let (Some(kw), None) = (&at.state_limit, l.state_key) {
        let which = if l.state_max.is_some() {
            "state.session.max"
        } else {
            "state.session.throttle"
        };
        return Err(c.err_word(kw, format!("{which} is set, but session.state.key is not")));
    }
    if let (Some(kw), None, None) = (&at.state_key, l.state_max, l.state_throttle) {
        return Err(c.err_word(
            kw,
            "session state key is set, but no value has been given to session.state.max or \
             session.state.throttle",
        ));
    }
    Ok(())
}

/// The clientmethods in force when `list` is empty: `none`, as Dante's code sets.
pub(super) fn effective_clientmethods(list: &[Method]) -> Vec<Method> {
    if list.is_empty() {
        vec![Method::None]
    } else {
        list.to_vec()
    }
}

/// A rule may only use methods of the global list (Dante's wording).
fn subset(
    c: &Cursor<'_>,
    w: &Word,
    m: Method,
    global: &[Method],
    what: &str,
) -> Result<(), ConfError> {
    if global.contains(&m) {
        return Ok(());
    }
    let list: Vec<&str> = global.iter().map(|m| m.word()).collect();
    Err(c.err_word(
        w,
        format!(
            "{what} \"{}\" is set in the rule, but not in the global {what} specification \
             (containing \"{}\"): only methods of the global list can be used in a rule",
            m.word(),
            list.join(", ")
        ),
    ))
}

/// A count that must be above zero.
fn positive(v: &str) -> Result<u32, String> {
    parse_u32(v).and_then(|n| {
        if n > 0 {
            Ok(n)
        } else {
            Err("the value must be greater than 0".into())
        }
    })
}

/// `N/S`, both above zero.
fn throttle(v: &str) -> Result<Throttle, String> {
    let (n, s) = v
        .split_once('/')
        .ok_or_else(|| format!("expected sessions/seconds such as \"10/1\", not \"{v}\""))?;
    Ok(Throttle {
        sessions: positive(n)?,
        seconds: positive(s)?,
    })
}

/// Parses each value word of a list item with `f`.
fn list<T>(c: &mut Cursor<'_>, kw: &Word, f: fn(&str) -> Option<T>) -> Result<Vec<T>, ConfError> {
    let mut out = Vec::new();
    for w in c.values(kw)? {
        match f(&w.text) {
            Some(v) => out.push(v),
            None => return Err(c.err_word(&w, format!("unknown {} \"{}\"", kw.text, w.text))),
        }
    }
    Ok(out)
}

pub(super) fn command(v: &str) -> Option<Command> {
    Some(match v {
        "connect" => Command::Connect,
        "bind" => Command::Bind,
        "udpassociate" => Command::UdpAssociate,
        "bindreply" => Command::BindReply,
        "udpreply" => Command::UdpReply,
        _ => return None,
    })
}

pub(super) fn protocol(v: &str) -> Option<Protocol> {
    match v {
        "tcp" => Some(Protocol::Tcp),
        "udp" => Some(Protocol::Udp),
        _ => None,
    }
}

fn socks_version(v: &str) -> Option<SocksVersion> {
    match v {
        "socks_v4" => Some(SocksVersion::V4),
        "socks_v5" => Some(SocksVersion::V5),
        _ => None,
    }
}

/// Sets the flag a `log:` word names.
fn set_log_flag(f: &mut LogFlags, v: &str) -> Result<(), String> {
    let flag = match v {
        "connect" => &mut f.connect,
        "disconnect" => &mut f.disconnect,
        "data" => &mut f.data,
        "error" => &mut f.error,
        "iooperation" | "ioop" => &mut f.iooperation,
        "tcpinfo" => &mut f.tcpinfo,
        _ => return Err(format!("unknown log \"{v}\"")),
    };
    *flag = true;
    Ok(())
}

/// A `socksmethod:` list, each method with its word (for messages).
pub(super) fn methods(c: &mut Cursor<'_>, kw: &Word) -> Result<Vec<(Method, Word)>, ConfError> {
    let mut out = Vec::new();
    for w in c.values(kw)? {
        let m = match keywords::method(&w.text) {
            Some(m) => m,
            None if keywords::UNSUPPORTED_METHODS.contains(&w.text.as_str()) => {
                let why = keywords::method_refusal(&w.text)
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                return Err(c.err_word(
                    &w,
                    format!(
                        "{} \"{}\" is not supported by hasocks{why}",
                        kw.text, w.text
                    ),
                ));
            }
            None => match keywords::deprecated_method(&w.text) {
                Some(m) => {
                    c.warn(
                        &w,
                        format!(
                            "method \"{}\" is deprecated (Dante 1.4 too): read as \"{}\", \
                             what Dante assumes (a user name and password checked by PAM)",
                            w.text,
                            m.word()
                        ),
                    );
                    m
                }
                None => return Err(c.err_word(&w, format!("unknown {} \"{}\"", kw.text, w.text))),
            },
        };
        c.method_uses.push(MethodUse {
            method: m,
            file: c.file.to_path_buf(),
            line: w.line,
            col: w.col,
        });
        out.push((m, w));
    }
    Ok(out)
}

/// A `clientmethod:` list: only the methods decided before negotiation.
pub(super) fn client_methods(
    c: &mut Cursor<'_>,
    kw: &Word,
) -> Result<Vec<(Method, Word)>, ConfError> {
    let out = methods(c, kw)?;
    if let Some((m, w)) = out.iter().find(|(m, _)| !m.is_client_method()) {
        return Err(c.err_word(
            w,
            format!(
                "\"{}\" cannot be a clientmethod (none, pam.any, pam.address)",
                m.word()
            ),
        ));
    }
    Ok(out)
}

/// A `from:` or `to:` item of a rule or route (`what`): its endpoint goes to the first or
/// second of `ends`; `seen` marks each, and a second one of the same is an error.
pub(super) fn from_or_to(
    c: &mut Cursor<'_>,
    kw: &Word,
    ends: (&mut Endpoint, &mut Endpoint),
    seen: &mut [bool; 2],
    what: &str,
) -> Result<(), ConfError> {
    let i = usize::from(kw.text != "from");
    if std::mem::replace(&mut seen[i], true) {
        return Err(c.err_word(kw, format!("duplicate \"{}:\" in {what}", kw.text)));
    }
    let e = endpoint(c, kw)?;
    *(if i == 0 { ends.0 } else { ends.1 }) = e;
    Ok(())
}

/// A `from:`/`to:` address with its optional port condition.
fn endpoint(c: &mut Cursor<'_>, kw: &Word) -> Result<Endpoint, ConfError> {
    let addr = c.parsed(kw, parse_addr_spec)?;
    if c.peek_word() != Some("port") || c.starts_item(0) {
        return Ok(Endpoint {
            addr,
            port: PortSpec::Any,
        });
    }
    c.bump();
    let op = match c.peek().map(|t| &t.tok) {
        Some(Tok::Op(s)) => Some(*s),
        Some(Tok::Word(w)) => match w.as_str() {
            "eq" => Some(PortOp::Eq),
            "neq" => Some(PortOp::Neq),
            "ge" => Some(PortOp::Ge),
            "le" => Some(PortOp::Le),
            "gt" => Some(PortOp::Gt),
            "lt" => Some(PortOp::Lt),
            _ => None,
        },
        _ => None,
    };
    let port = match op {
        Some(op) => {
            c.bump();
            let w = c.word("a port number")?;
            PortSpec::Op(op, parse_port(&w.text).map_err(|m| c.err_word(&w, m))?)
        }
        None => {
            let w = c.word("a port number, range or operator")?;
            match port_range(c, &w)? {
                (a, Some(b)) => PortSpec::Range(a, b),
                (a, None) => PortSpec::Op(PortOp::Eq, a),
            }
        }
    };
    Ok(Endpoint { addr, port })
}

/// `A`, `A-B`, `A -B`, `A- B` or `A - B` starting at word `first`; checks `A <= B`.
fn port_range(c: &mut Cursor<'_>, first: &Word) -> Result<(u16, Option<u16>), ConfError> {
    let at = |c: &Cursor<'_>, w: &Word, s: &str| parse_port(s).map_err(|m| c.err_word(w, m));
    let (a, b) = match first.text.split_once('-') {
        Some((a, b)) if !a.is_empty() => {
            let pa = at(c, first, a)?;
            if b.is_empty() {
                let w = c.word("the end of the port range")?;
                (pa, Some(at(c, &w, &w.text)?))
            } else {
                let off = u32::try_from(a.chars().count() + 1).unwrap_or(0);
                let bw = Word {
                    text: b.into(),
                    line: first.line,
                    col: first.col.saturating_add(off),
                };
                (pa, Some(at(c, &bw, b)?))
            }
        }
        _ => {
            let pa = at(c, first, &first.text)?;
            match c.peek_word() {
                Some("-") if !c.starts_item(0) => {
                    c.bump();
                    let w = c.word("the end of the port range")?;
                    (pa, Some(at(c, &w, &w.text)?))
                }
                Some(w) if w.len() > 1 && w.starts_with('-') && !c.starts_item(0) => {
                    let w = c.word("the end of the port range")?;
                    let bw = Word {
                        text: w.text[1..].into(),
                        line: w.line,
                        col: w.col.saturating_add(1),
                    };
                    (pa, Some(at(c, &bw, &bw.text)?))
                }
                _ => (pa, None),
            }
        }
    };
    if let Some(b) = b {
        if a > b {
            return Err(c.err_word(
                first,
                format!("port range {a}-{b} is empty (start is above end)"),
            ));
        }
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::sockd::{
        parse, AddrSpec, Command, Endpoint, Method, PortOp, PortSpec, Protocol, Rule, SocksVersion,
        StateKey, Throttle, Verdict,
    };

    fn rule(body: &str) -> Rule {
        let text = format!("internal: lo\nsocksmethod: none\nsocks block {{\n{body}\n}}\n");
        let mut c = parse(&text, Path::new("r.conf")).unwrap();
        c.socks_rules.remove(0)
    }

    fn err(body: &str) -> (u32, u32, String) {
        let text = format!("internal: lo\nsocks pass {{\n{body}\n}}\n");
        let e = parse(&text, Path::new("r.conf")).unwrap_err();
        (e.line, e.col, e.message)
    }

    #[test]
    fn from_and_to_on_one_line_with_ports() {
        let r = rule("from: 10.0.0.0/8 port 1024-65535 to:.Example.com port = http");
        assert_eq!(r.line, 3);
        assert_eq!(r.verdict, Verdict::Block);
        assert_eq!(r.from.port, PortSpec::Range(1024, 65535));
        assert_eq!(r.to.addr, AddrSpec::Domain("example.com".into()));
        assert_eq!(r.to.port, PortSpec::Op(PortOp::Eq, 80));
    }

    #[test]
    fn every_port_operator_form() {
        for (text, spec) in [
            ("port eq 1", PortSpec::Op(PortOp::Eq, 1)),
            ("port neq 1", PortSpec::Op(PortOp::Neq, 1)),
            ("port != 1", PortSpec::Op(PortOp::Neq, 1)),
            ("port >= 1", PortSpec::Op(PortOp::Ge, 1)),
            ("port<=1", PortSpec::Op(PortOp::Le, 1)),
            ("port gt 1", PortSpec::Op(PortOp::Gt, 1)),
            ("port < 1", PortSpec::Op(PortOp::Lt, 1)),
            ("port 1 - 2", PortSpec::Range(1, 2)),
            ("port 1 -2", PortSpec::Range(1, 2)),
            ("port 1- 2", PortSpec::Range(1, 2)),
            ("port 22", PortSpec::Op(PortOp::Eq, 22)),
        ] {
            let r = rule(&format!("to: 0/0 {text}"));
            assert_eq!(
                r.to,
                Endpoint {
                    addr: AddrSpec::Any,
                    port: spec
                },
                "{text}"
            );
        }
    }

    #[test]
    fn lists_append_and_logs_combine() {
        let r = rule(
            "command: connect bind\ncommand: udpassociate bindreply udpreply\nprotocol: tcp udp\n\
             proxyprotocol: socks_v4 socks_v5 socksmethod: none\nlog: error connect\nlog: disconnect data ioop tcpinfo",
        );
        assert_eq!(
            r.commands,
            vec![
                Command::Connect,
                Command::Bind,
                Command::UdpAssociate,
                Command::BindReply,
                Command::UdpReply
            ]
        );
        assert_eq!(r.protocols, vec![Protocol::Tcp, Protocol::Udp]);
        assert_eq!(r.proxyprotocols, vec![SocksVersion::V4, SocksVersion::V5]);
        assert_eq!(r.socksmethods, vec![Method::None]);
        let l = r.log;
        assert!(l.error && l.connect && l.disconnect && l.data && l.iooperation && l.tcpinfo);
    }

    #[test]
    fn rule_timeouts_and_udp_portrange() {
        let r = rule("timeout.io: 9 timeout.io.tcp: 7 timeout.negotiate: 1 timeout.connect: 2\nudp.portrange: 40000 - 40010");
        assert_eq!(r.timeouts.io_tcp, Some(7));
        assert_eq!(r.timeouts.io_udp, Some(9));
        assert_eq!(
            (r.timeouts.negotiate, r.timeouts.connect),
            (Some(1), Some(2))
        );
        assert_eq!(r.udp_portrange, Some((40000, 40010)));
        assert_eq!(rule("udp.portrange: 5-6").udp_portrange, Some((5, 6)));
    }

    #[test]
    fn rule_errors_point_at_the_token() {
        assert_eq!(
            err("  redirect: 1"),
            (
                3,
                3,
                "keyword \"redirect\" is not supported by hasocks".into()
            )
        );
        assert_eq!(err("from: 0/0 to: 0/0 port = 70000").0, 3);
        assert_eq!(err("from: 0/0 to: 0/0 port = 70000").1, 26);
        assert_eq!(
            err("udp.portrange: 9-70000"),
            (3, 18, "port 70000 is out of range (0-65535)".into())
        );
        assert_eq!(
            err("udp.portrange: 9-1").2,
            "port range 9-1 is empty (start is above end)"
        );
        assert_eq!(
            err("command: connect jump"),
            (3, 18, "unknown command \"jump\"".into())
        );
        assert_eq!(
            err("to: 0/0 port = gopher").2,
            "unknown port or service name \"gopher\""
        );
        assert_eq!(
            err("from: 1.2.3.4/40").2,
            "prefix length /40 is too long for 1.2.3.4 (at most /32)"
        );
        assert_eq!(err("from: 0/0 from: 0/0").1, 11);
        assert_eq!(
            err("internal: lo").2,
            "setting \"internal\" cannot appear inside a rule"
        );
        assert!(err("socksmethod: pam.any")
            .2
            .starts_with("socksmethod \"pam.any\" is set in the rule, but not in the global"));
    }

    #[test]
    fn unterminated_brace_points_at_the_brace() {
        let e = parse("internal: lo\nclient pass {\n from: 0/0", Path::new("r")).unwrap_err();
        assert_eq!((e.line, e.col), (2, 13));
        assert!(e.message.contains("unterminated"));
        let e = parse(
            "internal: lo\nclient pass {\nsocks pass {\n}",
            Path::new("r"),
        )
        .unwrap_err();
        assert_eq!((e.line, e.col), (3, 1));
        assert!(e.message.contains("missing \"}\""));
    }

    /// Parses a config with methods that give names, then one socks rule with `body`.
    fn named(body: &str) -> Result<Rule, (u32, u32, String)> {
        let text = format!(
            "internal: lo\nsocksmethod: username none pam.any\nclientmethod: none pam.address\n\
             socks pass {{\n{body}\n}}\n"
        );
        parse(&text, Path::new("r.conf"))
            .map(|mut c| c.socks_rules.remove(0))
            .map_err(|e| (e.line, e.col, e.message))
    }

    #[test]
    fn user_and_group_lists_run_to_the_end_of_the_line() {
        let r = named("user: alice bob\ngroup: staff\nuser: carol").unwrap();
        assert_eq!(r.auth.users, vec!["alice", "bob", "carol"]);
        assert_eq!(r.auth.groups, vec!["staff"]);
    }

    #[test]
    fn anything_after_a_user_list_on_its_line_is_an_error() {
        let (l, c, m) = named("group: proxyusers log: connect").unwrap_err();
        assert_eq!((l, c), (5, 19));
        assert!(m.contains("\"log:\" must go on a line of its own"), "{m}");
        let (l, c, m) = named("user: alice }").unwrap_err();
        assert_eq!((l, c), (5, 13));
        assert!(m.contains("\"}\" must go on a line of its own"), "{m}");
    }

    #[test]
    fn user_rule_needs_a_method_that_gives_a_name() {
        let (l, c, m) = named("socksmethod: none\nuser: alice").unwrap_err();
        assert_eq!((l, c), (6, 1));
        assert!(
            m.contains("the socksmethod none, which cannot be depended on"),
            "{m}"
        );
        assert!(named("socksmethod: username pam.any\nuser: alice").is_err());
        // Inherited from the global list: methods without a name are dropped, not an error.
        assert!(named("user: alice").is_ok());
        let text = "internal: lo\nsocksmethod: none\nsocks pass {\nuser: alice\n}\n";
        assert!(parse(text, Path::new("r.conf")).is_err());
        let text = "internal: lo\nsocksmethod: username\nclient pass {\nuser: alice\n}\n";
        let e = parse(text, Path::new("r.conf")).unwrap_err();
        assert!(e.message.contains("client-rule"), "{}", e.message);
    }

    #[test]
    fn rule_methods_must_be_among_the_global_ones() {
        let (l, c, m) = named("socksmethod: pam.username").unwrap_err();
        assert_eq!((l, c), (5, 14));
        assert!(
            m.contains("\"pam.username\" is set in the rule, but not in the global socksmethod"),
            "{m}"
        );
        let (_, _, m) = named("clientmethod: pam.any").unwrap_err();
        assert!(m.contains("global clientmethod"), "{m}");
        let r = named("socksmethod: username\nclientmethod: pam.address").unwrap();
        assert_eq!(r.socksmethods, vec![Method::Username]);
        assert_eq!(r.auth.clientmethods, vec![Method::PamAddress]);
    }

    #[test]
    fn session_limits_and_bandwidth() {
        let r = named(
            "session.max: 3\nsession.throttle: 10/2\nsession.state.key: from\n\
             session.state.max: 1\nsession.state.throttle: 4/1\nbandwidth: 65536\n\
             pam.servicename: proxy",
        )
        .unwrap();
        let l = r.limits;
        assert_eq!(l.max, Some(3));
        assert_eq!(
            l.throttle,
            Some(Throttle {
                sessions: 10,
                seconds: 2
            })
        );
        assert_eq!(l.state_key, Some(StateKey::From));
        assert_eq!(l.state_max, Some(1));
        assert_eq!(l.state_throttle.map(|t| t.sessions), Some(4));
        assert_eq!(l.bandwidth, Some(65536));
        assert_eq!(r.auth.pam_servicename.as_deref(), Some("proxy"));
    }

    #[test]
    fn session_state_limits_need_the_key_and_the_key_needs_a_limit() {
        let (l, c, m) = named("session.state.max: 2").unwrap_err();
        assert_eq!((l, c), (5, 1));
        assert_eq!(m, "state.session.max is set, but session.state.key is not");
        let (_, _, m) = named("session.state.key: from").unwrap_err();
        assert!(m.contains("no value has been given"), "{m}");
        let (l, c, m) = named("session.state.key: hostid\nsession.state.max: 2").unwrap_err();
        assert_eq!((l, c), (5, 20));
        assert!(m.contains("\"hostid\" is not supported by hasocks"), "{m}");
        assert!(named("session.max: 0").is_err());
        assert!(named("session.throttle: 5").is_err());
        assert!(named("bandwidth: 0").is_err());
    }

    #[test]
    fn auth_and_limits_print_back_to_the_same_rule() {
        let r = named(
            "socksmethod: username\nclientmethod: pam.address\nuser: alice bob\ngroup: staff\n\
             session.max: 3\nsession.state.key: from\nsession.state.max: 1\nbandwidth: 9",
        )
        .unwrap();
        let text = format!(
            "internal: lo\nsocksmethod: username none pam.any\nclientmethod: none pam.address\nsocks {r}"
        );
        let again = parse(&text, Path::new("r.conf"))
            .unwrap()
            .socks_rules
            .remove(0);
        assert_eq!(
            Rule {
                line: r.line,
                ..again
            },
            r
        );
    }
}

//! Top level of sockd.conf: server settings, then rules.

use super::addr::{parse_hostspec, parse_net, parse_port, parse_u32};
use super::cursor::{show, Cursor, Word};
use super::keywords::{is_rule_item, is_setting, is_unsupported, FACILITIES};
use super::lexer::{Sym, Tok, Token};
use super::route::{extension, route};
use super::rule::{client_methods, methods, rule};
use super::{Internal, LogTarget, Method, Rotation, RouteSelect, SockdConfig, Timeouts};
use crate::ConfError;

/// A count that must be at least 1.
fn at_least_one(v: &str) -> Result<u32, String> {
    match parse_u32(v)? {
        0 => Err("the value must be at least 1".into()),
        n => Ok(n),
    }
}

/// Dante's internal default port (`SOCKD_PORT`).
const DEFAULT_PORT: u16 = 1080;

/// Parses a whole token list into a config.
pub(super) fn parse_config(c: &mut Cursor<'_>) -> Result<SockdConfig, ConfError> {
    let mut cfg = SockdConfig {
        internals: Vec::new(),
        externals: Vec::new(),
        external_rotation: Rotation::None,
        logoutput: Vec::new(),
        errorlog: Vec::new(),
        socksmethods: Vec::new(),
        clientmethods: Vec::new(),
        pam_servicename: None,
        gssapi: Default::default(),
        password_file: None,
        socket: None,
        auth_cache: None,
        user_privileged: None,
        user_unprivileged: None,
        timeouts: Timeouts::default(),
        debug: 0,
        client_rules: Vec::new(),
        socks_rules: Vec::new(),
        udp_advertise: None,
        admin: None,
        proxy_from: Vec::new(),
        warnings: Vec::new(),
        method_uses: Vec::new(),
        admission: Default::default(),
        routing: Default::default(),
    };
    let mut saw_socksmethod = false;
    // The first `hasocks.passwordfile` method word: it needs the setting of that name.
    let mut passwordfile_method: Option<Word> = None;
    let mut first_rule: Option<u32> = None;
    while let Some(t) = c.peek().cloned() {
        let Some(kw) = t.as_word() else {
            return Err(c.err_here(format!("unexpected {}", show(&t.tok))));
        };
        let next = c.peek_at(1).map(|t| t.tok.clone());
        let next_is_verdict = matches!(&next, Some(Tok::Word(n)) if n == "pass" || n == "block");
        if matches!(kw.text.as_str(), "client" | "socks") && next != Some(Tok::Colon) {
            if !next_is_verdict {
                c.bump();
                return Err(c.err_here(format!(
                    "expected \"pass\" or \"block\" after \"{}\"",
                    kw.text
                )));
            }
            let (is_client, r) = rule(c, &cfg)?;
            first_rule.get_or_insert(r.line);
            if is_client {
                cfg.client_rules.push(r);
            } else {
                cfg.socks_rules.push(r);
            }
            continue;
        }
        if kw.text == "route" && next != Some(Tok::Colon) {
            let r = route(c, &cfg)?;
            first_rule.get_or_insert(r.line);
            cfg.routing.routes.push(r);
            continue;
        }
        c.bump();
        if !is_setting(&kw.text) {
            let msg = if is_rule_item(&kw.text) {
                format!(
                    "keyword \"{}\" is only valid inside a client or socks rule",
                    kw.text
                )
            } else if is_unsupported(&kw.text) {
                super::keywords::refused(&kw.text)
            } else if super::keywords::is_route_item(&kw.text) {
                format!("keyword \"{}\" is only valid inside a route", kw.text)
            } else {
                format!("unknown keyword \"{}\"", kw.text)
            };
            return Err(c.err_word(&kw, msg));
        }
        if let Some(l) = first_rule {
            return Err(c.err_word(
                &kw,
                format!(
                    "setting \"{}\" must come before the rules (first rule at line {l})",
                    kw.text
                ),
            ));
        }
        c.colon(&kw)?;
        if kw.text == "socksmethod" {
            saw_socksmethod = true;
            for (m, w) in methods(c, &kw)? {
                if m == Method::PasswordFile {
                    passwordfile_method.get_or_insert(w);
                }
                cfg.socksmethods.push(m);
            }
            continue;
        }
        setting(c, &kw, &mut cfg)?;
    }
    if let (Some(w), None) = (&passwordfile_method, &cfg.password_file) {
        return Err(c.err_word(
            w,
            "socksmethod \"hasocks.passwordfile\" needs the file: add \
             \"hasocks.passwordfile: FILE\" (an htpasswd file)",
        ));
    }
    if cfg.internals.is_empty() {
        return Err(ConfError::new(
            c.file,
            0,
            0,
            "no internal: address (need at least one `internal:` line)",
        ));
    }
    if !saw_socksmethod {
        c.warnings.push(crate::ConfWarning {
            file: c.file.to_path_buf(),
            line: 0,
            col: 0,
            message:
                "no socksmethod set: every SOCKS request will be refused (add `socksmethod: none`)"
                    .into(),
        });
    }
    cfg.warnings = std::mem::take(&mut c.warnings);
    cfg.method_uses = std::mem::take(&mut c.method_uses);
    Ok(cfg)
}

/// Parses the value of one setting (the keyword and its `:` are consumed).
fn setting(c: &mut Cursor<'_>, kw: &Word, cfg: &mut SockdConfig) -> Result<(), ConfError> {
    match kw.text.as_str() {
        // Dante takes a list of members on one line as well as repeated lines.
        "internal" => loop {
            let host = c.parsed(kw, parse_hostspec)?;
            let port = internal_port(c)?;
            cfg.internals.push(Internal {
                host,
                port,
                line: kw.line,
            });
            if c.starts_item(0) {
                break;
            }
        },
        "external" => {
            for w in c.values(kw)? {
                cfg.externals
                    .push(parse_hostspec(&w.text).map_err(|m| c.err_word(&w, m))?);
            }
        }
        "external.rotation" => {
            cfg.external_rotation = c.parsed(kw, |v| match v {
                "none" => Ok(Rotation::None),
                "same-same" => Ok(Rotation::SameSame),
                "route" => Ok(Rotation::Route),
                _ => Err(format!(
                    "unknown external.rotation \"{v}\" (none, same-same, route)"
                )),
            })?
        }
        "logoutput" | "errorlog" => {
            let mut targets = Vec::new();
            for w in c.values(kw)? {
                targets.push(log_target(&w.text).map_err(|m| c.err_word(&w, m))?);
            }
            let list = if kw.text == "logoutput" {
                &mut cfg.logoutput
            } else {
                &mut cfg.errorlog
            };
            list.extend(targets);
        }
        "clientmethod" => cfg
            .clientmethods
            .extend(client_methods(c, kw)?.into_iter().map(|(m, _)| m)),
        "pam.servicename" => cfg.pam_servicename = Some(c.one_value(kw)?.text),
        "gssapi.servicename" | "gssapi.keytab" | "gssapi.enctype" => {
            super::gssapi::item(c, kw, &mut cfg.gssapi)?
        }
        "hasocks.passwordfile" => cfg.password_file = Some(c.one_value(kw)?.text.into()),
        "hasocks.socket" => cfg.socket = Some(c.one_value(kw)?.text.into()),
        "hasocks.auth.cache" => cfg.auth_cache = Some(c.parsed(kw, parse_u32)?),
        "hasocks.maxconn" => cfg.admission.total = Some(c.parsed(kw, at_least_one)?),
        "hasocks.maxconn.negotiating" => {
            cfg.admission.negotiating = Some(c.parsed(kw, at_least_one)?)
        }
        "hasocks.maxconn.negotiating.source" => {
            cfg.admission.negotiating_per_source = Some(c.parsed(kw, parse_u32)?)
        }
        "user.privileged" => cfg.user_privileged = Some(user_name(c, kw)?),
        "user.unprivileged" | "user.notprivileged" => {
            cfg.user_unprivileged = Some(user_name(c, kw)?)
        }
        "timeout.negotiate" => cfg.timeouts.negotiate = c.parsed(kw, parse_u32)?,
        "timeout.connect" => cfg.timeouts.connect = c.parsed(kw, parse_u32)?,
        "timeout.io" => {
            let n = c.parsed(kw, parse_u32)?;
            cfg.timeouts.io_tcp = n;
            cfg.timeouts.io_udp = n;
        }
        "timeout.io.tcp" => cfg.timeouts.io_tcp = c.parsed(kw, parse_u32)?,
        "timeout.io.udp" => cfg.timeouts.io_udp = c.parsed(kw, parse_u32)?,
        "debug" => cfg.debug = c.parsed(kw, parse_u32)?,
        "hasocks.udp.advertise" => {
            cfg.udp_advertise = Some(c.parsed(kw, |v| {
                v.parse().map_err(|_| format!("invalid IP address \"{v}\""))
            })?)
        }
        "hasocks.admin" => {
            if cfg.admin.is_some() {
                return Err(c.err_word(kw, "hasocks.admin: given twice".to_string()));
            }
            let host = c.parsed(kw, parse_hostspec)?;
            if c.peek_word() != Some("port") {
                return Err(c.err_word(
                    kw,
                    "hasocks.admin: needs an address and \"port = N\"".to_string(),
                ));
            }
            let port = internal_port(c)?;
            cfg.admin = Some(Internal {
                host,
                port,
                line: kw.line,
            });
        }
        "route.maxfail" => cfg.routing.maxfail = c.parsed(kw, parse_u32)?,
        "route.badexpire" => cfg.routing.badexpire = c.parsed(kw, parse_u32)?,
        "hasocks.route.timeout" => cfg.routing.timeout = c.parsed(kw, parse_u32)?,
        "hasocks.route.check.interval" => cfg.routing.check_interval = c.parsed(kw, parse_u32)?,
        "hasocks.route.select" => {
            cfg.routing.select = c.parsed(kw, |v| match v {
                "failover" => Ok(RouteSelect::Failover),
                "source-hash" => Ok(RouteSelect::SourceHash),
                _ => Err(format!(
                    "unknown hasocks.route.select \"{v}\" (failover, source-hash)"
                )),
            })?
        }
        "extension" => extension(c, kw)?,
        "hasocks.proxyprotocol.from" => {
            for w in c.values(kw)? {
                cfg.proxy_from
                    .push(parse_net(&w.text).map_err(|m| c.err_word(&w, m))?);
            }
        }
        _ => ignored_setting(c, kw)?,
    }
    Ok(())
}

/// The optional `port = N` (or `port N`) after an `internal:` address.
fn internal_port(c: &mut Cursor<'_>) -> Result<u16, ConfError> {
    if c.peek_word() != Some("port") || c.starts_item(0) {
        return Ok(DEFAULT_PORT);
    }
    c.bump();
    if let Some(Token {
        tok: Tok::Op(s), ..
    }) = c.peek()
    {
        if *s != Sym::Eq {
            return Err(c.err_here("internal: port takes \"=\" only"));
        }
        c.bump();
    }
    let w = c.word("a port number")?;
    parse_port(&w.text).map_err(|m| c.err_word(&w, m))
}

/// One `logoutput:`/`errorlog:` destination.
fn log_target(v: &str) -> Result<LogTarget, String> {
    Ok(match v {
        "stderr" => LogTarget::Stderr,
        "stdout" => LogTarget::Stdout,
        "syslog" => LogTarget::Syslog("daemon".into()),
        _ => match v.strip_prefix("syslog/") {
            Some(f) => {
                let f = f.to_ascii_lowercase();
                if !FACILITIES.contains(&f.as_str()) {
                    return Err(format!("unknown syslog facility \"{f}\""));
                }
                LogTarget::Syslog(f)
            }
            None => LogTarget::File(v.into()),
        },
    })
}

/// The user name of `user.*:`.
fn user_name(c: &mut Cursor<'_>, kw: &Word) -> Result<String, ConfError> {
    Ok(c.one_value(kw)?.text)
}

/// Dante settings that change nothing here: checked, then ignored with a warning.
fn ignored_setting(c: &mut Cursor<'_>, kw: &Word) -> Result<(), ConfError> {
    let allowed: &[&str] = match kw.text.as_str() {
        "compatibility" => &["sameport", "draft-5.05", "reuseaddr"],
        "srchost" => &[
            "nodnsmismatch",
            "nodnsunknown",
            "checkreplyauth",
            "nodnsunknown",
        ],
        "udp.connectdst" => &["yes", "no"],
        "timeout.tcp_fin_wait" => {
            c.parsed(kw, parse_u32)?;
            &[]
        }
        // user.libwrap: any user name.
        _ => {
            c.one_value(kw)?;
            &[]
        }
    };
    if !allowed.is_empty() {
        for w in c.values(kw)? {
            if !allowed.contains(&w.text.as_str()) {
                return Err(c.err_word(&w, format!("unknown {} value \"{}\"", kw.text, w.text)));
            }
        }
    }
    c.warn(kw, format!("\"{}\" is ignored by hasocks", kw.text));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::path::Path;

    use crate::sockd::{parse, HostSpec, LogTarget, Method, Rotation, SockdConfig};
    use crate::ConfError;

    fn p(s: &str) -> Result<SockdConfig, ConfError> {
        parse(s, Path::new("s.conf"))
    }

    fn err(s: &str) -> (u32, u32, String) {
        let e = p(s).unwrap_err();
        (e.line, e.col, e.message)
    }

    #[test]
    fn internal_defaults_to_port_1080_and_takes_glued_port() {
        let c = p("internal: 127.0.0.1\ninternal: eth0 port=1081\nsocksmethod: none").unwrap();
        assert_eq!(
            c.internals[0].host,
            HostSpec::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(c.internals[0].port, 1080);
        assert_eq!((c.internals[1].port, c.internals[1].line), (1081, 2));
        assert_eq!(c.internals[1].host, HostSpec::Name("eth0".into()));
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn missing_socksmethod_warns() {
        let c = p("internal: ::1 port = 0").unwrap();
        assert_eq!(c.internals[0].port, 0);
        assert!(c.warnings[0].message.contains("no socksmethod set"));
    }

    #[test]
    fn log_targets_and_lists_stop_at_next_keyword() {
        let c =
            p("internal: lo\nlogoutput: stderr syslog /var/log/s.log errorlog: syslog/LOCAL3\n")
                .unwrap();
        assert_eq!(
            c.logoutput,
            vec![
                LogTarget::Stderr,
                LogTarget::Syslog("daemon".into()),
                LogTarget::File("/var/log/s.log".into())
            ]
        );
        assert_eq!(c.errorlog, vec![LogTarget::Syslog("local3".into())]);
    }

    #[test]
    fn timeout_io_sets_both_and_specific_ones_override() {
        let c = p("internal: lo\ntimeout.io: 60\ntimeout.io.udp: 5\nexternal.rotation: same-same\nsocksmethod: none none")
            .unwrap();
        assert_eq!((c.timeouts.io_tcp, c.timeouts.io_udp), (60, 5));
        assert_eq!(c.external_rotation, Rotation::SameSame);
        assert_eq!(c.socksmethods, vec![Method::None, Method::None]);
    }

    #[test]
    fn setting_after_rule_is_an_error_at_the_setting() {
        let (l, col, m) = err("internal: lo\nclient pass {\n}\n  debug: 1\n");
        assert_eq!((l, col), (4, 3));
        assert!(m.contains("\"debug\"") && m.contains("line 2"), "{m}");
    }

    #[test]
    fn no_internal_is_an_error_at_zero() {
        let (l, col, m) = err("socksmethod: none");
        assert_eq!((l, col), (0, 0));
        assert!(m.contains("no internal: address"));
    }

    #[test]
    fn every_method_word_is_its_own_method() {
        let c = p(
            "internal: lo\nsocksmethod: none username pam.any pam.address pam.username\n\
                   socksmethod: hasocks.passwordfile hasocks.socks4userid gssapi\n\
                   clientmethod: pam.address none pam.any\npam.servicename: proxy\n\
                   hasocks.passwordfile: /etc/hasocks.htpasswd\nhasocks.auth.cache: 0",
        )
        .unwrap();
        // Every method, in the order written.
        assert_eq!(c.socksmethods, super::super::keywords::METHODS.to_vec());
        assert_eq!(
            c.clientmethods,
            vec![Method::PamAddress, Method::None, Method::PamAny]
        );
        assert_eq!(c.pam_servicename.as_deref(), Some("proxy"));
        assert_eq!(c.auth_cache, Some(0));
        assert_eq!(
            c.password_file.as_deref(),
            Some(Path::new("/etc/hasocks.htpasswd"))
        );
    }

    #[test]
    fn methods_hasocks_lacks_are_named_and_clientmethods_are_checked() {
        let (l, col, m) = err("internal: lo\nsocksmethod: none rfc931");
        assert_eq!((l, col), (2, 19));
        assert!(
            m.starts_with("socksmethod \"rfc931\" is not supported by hasocks: "),
            "{m}"
        );
        let (l, col, m) = err("internal: lo\nclientmethod: username");
        assert_eq!((l, col), (2, 15));
        assert!(m.contains("\"username\" cannot be a clientmethod"), "{m}");
    }

    #[test]
    fn passwordfile_method_without_the_file_is_an_error_at_the_method() {
        let (l, col, m) = err("internal: lo\nsocksmethod: hasocks.passwordfile");
        assert_eq!((l, col), (2, 14));
        assert!(m.contains("hasocks.passwordfile: FILE"), "{m}");
    }

    #[test]
    fn rule_keywords_at_top_level_say_so() {
        let (_, _, m) = err("internal: lo\nsession.max: 3");
        assert_eq!(
            m,
            "keyword \"session.max\" is only valid inside a client or socks rule"
        );
    }

    #[test]
    fn ignored_settings_warn_and_bad_values_fail() {
        let c = p("internal: lo\nsocksmethod: none\ncompatibility: sameport\nuser.libwrap: x\nudp.connectdst: no\ntimeout.tcp_fin_wait: 3\nsrchost: nodnsunknown nodnsmismatch").unwrap();
        assert_eq!(c.warnings.len(), 5);
        assert_eq!((c.warnings[0].line, c.warnings[0].col), (3, 1));
        let (l, col, _) = err("internal: lo\ncompatibility: weird");
        assert_eq!((l, col), (2, 16));
    }

    #[test]
    fn internal_and_external_take_lists() {
        let c = p("internal: 127.0.0.1 port = 1 ::1 lo port=3\nexternal: eth0 eth1").unwrap();
        let ports: Vec<u16> = c.internals.iter().map(|i| i.port).collect();
        assert_eq!(ports, vec![1, 1080, 3]);
        assert_eq!(c.externals.len(), 2);
    }

    #[test]
    fn user_notprivileged_is_unprivileged() {
        let c = p("internal: lo\nuser.notprivileged: nobody\nuser.privileged: root").unwrap();
        assert_eq!(c.user_unprivileged.as_deref(), Some("nobody"));
        assert_eq!(c.user_privileged.as_deref(), Some("root"));
    }

    #[test]
    fn hasocks_socket_names_the_control_socket_and_takes_one_path() {
        let c = p("internal: lo\nhasocks.socket: /run/x/server.sock").unwrap();
        assert_eq!(c.socket.as_deref(), Some(Path::new("/run/x/server.sock")));
        assert_eq!(p("internal: lo").unwrap().socket, None);
        let e = p("internal: lo\nhasocks.socket: /a /b").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn hasocks_admin_takes_an_address_and_a_port_once() {
        let c = p("internal: lo\nhasocks.admin: 127.0.0.1 port = 9101").unwrap();
        let a = c.admin.expect("admin listener");
        assert_eq!(
            (a.host.to_string(), a.port),
            ("127.0.0.1".to_string(), 9101)
        );
        let e = p("internal: lo\nhasocks.admin: 127.0.0.1").unwrap_err();
        assert!(e.message.contains("port = N"), "{e}");
        let e = p("internal: lo\nhasocks.admin: ::1 port = 1\nhasocks.admin: ::1 port = 2")
            .unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn proxy_from_and_udp_advertise_are_ours() {
        let c = p("internal: lo\nhasocks.proxyprotocol.from: 10.0.0.0/8 ::1\nhasocks.udp.advertise: 192.0.2.7")
            .unwrap();
        assert_eq!(c.proxy_from.len(), 2);
        assert_eq!(c.udp_advertise, Some("192.0.2.7".parse().unwrap()));
    }

    #[test]
    fn unknown_and_unsupported_keywords_are_named() {
        assert_eq!(
            err("internal: lo\n  xyz: 1"),
            (2, 3, "unknown keyword \"xyz\"".into())
        );
        assert_eq!(
            err("internal: lo\nredirect {\n}"),
            (
                2,
                1,
                "keyword \"redirect\" is not supported by hasocks".into()
            )
        );
        assert_eq!(
            err("from: 0/0").2,
            "keyword \"from\" is only valid inside a client or socks rule"
        );
    }

    #[test]
    fn stray_tokens_and_missing_colon_are_errors() {
        assert_eq!(err("}").0, 1);
        assert_eq!(
            err("internal 1.2.3.4"),
            (1, 10, "expected \":\" after \"internal\"".into())
        );
        assert_eq!(err("internal:").2, "expected a value after \"internal:\"");
        assert_eq!(err("client pass").2, "expected \"{\" after \"client pass\"");
        assert_eq!(
            err("client x {").2,
            "expected \"pass\" or \"block\" after \"client\""
        );
    }
}

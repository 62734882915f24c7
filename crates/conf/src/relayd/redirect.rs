//! `redirect "name" { ... }` blocks: relayd's layer 3 redirection, which hasocks puts into
//! the kernel (nftables DNAT + conntrack). Same tables, forwards and checks as a relay.

use super::keywords;
use super::lexer::{TokKind, Token};
use super::parser::{Parser, Res};
use super::words::{is_reserved, is_unsupported, not_supported};
use super::{Mode, Redirect, RedirectListen};

/// The longest idle timeout conntrack can hold (hasocks_redirect::plan::MAX_SESSION_TIMEOUT_S):
/// a flow's timeout is 32-bit jiffies compared as signed.
const CONNTRACK_MAX_TIMEOUT_S: u32 = 2_000_000;

impl Parser {
    /// The redirect block after the `redirect` keyword `kw`.
    pub(crate) fn redirect(&mut self, kw: &Token) -> Res<()> {
        let t = self.s.next()?;
        let name = match &t.kind {
            TokKind::Str(s) if !s.is_empty() => s.clone(),
            TokKind::Word(w) if !is_reserved(w) => w.clone(),
            TokKind::Word(w) => {
                return Err(self.s.err(
                    &t,
                    format!("\"{w}\" is a keyword: write the redirect name in quotes"),
                ));
            }
            _ => {
                return Err(self.s.err(
                    &t,
                    "a redirect needs a name, e.g. redirect \"socks\" { ... }",
                ));
            }
        };
        if self.cfg.redirects.iter().any(|r| r.name == name) {
            return Err(self.s.err(&t, format!("redirect \"{name}\" defined twice")));
        }
        let open = self.s.next()?;
        if !open.is_punct('{') {
            return Err(self.s.err(
                &open,
                format!(
                    "expected '{{' after redirect \"{name}\", found {}",
                    open.describe()
                ),
            ));
        }
        let at = format!("{}:{}:{}", self.s.path(kw.file).display(), kw.line, kw.col);
        let mut r = Redirect {
            name,
            listens: Vec::new(),
            forwards: Vec::new(),
            sticky: false,
            session_timeout_s: 600,
            disabled: false,
            at,
            line: kw.line,
        };
        let mut default_port = Vec::new();
        loop {
            let t = self.s.next()?;
            let w = match &t.kind {
                TokKind::Newline => continue,
                TokKind::Punct('}') => break,
                TokKind::Eof => {
                    return Err(self.s.err(
                        &t,
                        format!("redirect \"{}\" is not closed: missing '}}'", r.name),
                    ));
                }
                TokKind::Word(w) => w.clone(),
                _ => {
                    return Err(self.s.err(
                        &t,
                        format!("unexpected {}; expected a redirect option", t.describe()),
                    ))
                }
            };
            if !keywords::REDIRECT.contains(&w.as_str()) {
                let msg = if w == "route" {
                    format!(
                        "{}: direct server return is not built (see docs/redirect.md)",
                        not_supported("route to")
                    )
                } else if is_unsupported(&w) || w == "tag" || w == "match" {
                    not_supported(&w)
                } else {
                    format!("unknown keyword \"{w}\"")
                };
                return Err(self.s.err(&t, msg));
            }
            match w.as_str() {
                "listen" => {
                    let listen = self.listen()?;
                    let interface = if self.s.peek()?.is_word("interface") {
                        self.s.next()?;
                        Some(self.value("an interface name after \"interface\"")?.0)
                    } else {
                        None
                    };
                    r.listens.push(RedirectListen { listen, interface });
                }
                "forward" => {
                    let (fwd, port_given) = self.forward(&t)?;
                    if let Mode::Hash(_) = &fwd.mode {
                        return Err(self.s.err(
                            &t,
                            "mode hash is for relays only (as in relayd): a redirect would send every client to one host",
                        ));
                    }
                    default_port.push(!port_given);
                    r.forwards.push(fwd);
                }
                "session" => {
                    self.expect_word("timeout", "session")?;
                    r.session_timeout_s = self.number("session timeout", 0, 2_147_483_647)?.0;
                    if r.session_timeout_s > CONNTRACK_MAX_TIMEOUT_S {
                        self.warn(
                            &t,
                            format!("session timeout in a redirect: conntrack holds an idle flow at most {CONNTRACK_MAX_TIMEOUT_S} s (about 23 days); that is used"),
                        );
                    }
                }
                "disable" => r.disabled = true,
                "sticky-address" => r.sticky = true,
                _ => return Err(self.s.err(&t, format!("unknown keyword \"{w}\""))),
            }
            let end = self.s.peek()?;
            if !(end.ends_line() || end.is_punct('}')) {
                return Err(self.s.err(
                    &end,
                    format!("unexpected {} at the end of the statement", end.describe()),
                ));
            }
        }
        let Some(first_port) = r.listens.first().map(|l| l.listen.port) else {
            return Err(self.s.err(
                kw,
                format!("redirect \"{}\" has no \"listen on\" line", r.name),
            ));
        };
        if r.forwards.is_empty() {
            return Err(self.s.err(
                kw,
                format!("redirect \"{}\" has no \"forward to\" line", r.name),
            ));
        }
        for (f, default) in r.forwards.iter_mut().zip(default_port) {
            if default {
                f.port = first_port;
            }
        }
        self.cfg.redirects.push(r);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::stream::Stream;
    use super::*;
    use crate::relayd::{Check, RelaydConfig};

    fn run(text: &str) -> Res<RelaydConfig> {
        Parser::new(Stream::new(text, Path::new("r.conf"))).run()
    }

    const HEAD: &str = "table <t> { 10.79.2.2, 10.79.2.3 retry 1 }\ntable <b> { 10.79.3.2 }\n";

    #[test]
    fn a_relayd_redirect_is_read_with_backups_checks_and_interface() {
        let c = run(&format!(
            "{HEAD}redirect \"www\" {{\n listen on 10.79.1.1 port 1080 interface veth1\n forward to <t> mode source-hash \"k\" check socks\n forward to <b> port 1081 check tcp\n sticky-address\n}}\n"
        ))
        .unwrap();
        let r = &c.redirects[0];
        assert_eq!(r.name, "www");
        assert_eq!(r.listens[0].interface.as_deref(), Some("veth1"));
        assert_eq!(r.listens[0].listen.port, 1080);
        assert_eq!((r.forwards[0].port, r.forwards[1].port), (1080, 1081));
        assert_eq!(r.forwards[1].check, Some(Check::Tcp));
        assert!(r.sticky && !r.disabled);
        assert_eq!(r.at, "r.conf:3:1");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn mode_hash_and_route_to_are_refused_at_their_place() {
        let e = run(&format!(
            "{HEAD}redirect r {{\n listen on a port 1\n forward to <t> mode hash\n}}\n"
        ))
        .unwrap_err();
        assert_eq!(e.line, 5);
        assert!(e.message.contains("relays only"), "{e}");
        let e = run(&format!(
            "{HEAD}redirect r {{\n listen on a port 1\n route to <t>\n}}\n"
        ))
        .unwrap_err();
        assert_eq!((e.line, e.col), (5, 2));
        assert!(e.message.contains("route to"), "{e}");
    }

    #[test]
    fn a_redirect_needs_listen_and_forward_and_a_defined_table() {
        let e = run(&format!("{HEAD}redirect r {{\n listen on a port 1\n}}\n")).unwrap_err();
        assert!(e.message.contains("no \"forward to\""), "{e}");
        let e = run(&format!(
            "{HEAD}redirect r {{\n listen on a port 1\n forward to <nope>\n}}\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("not defined"), "{e}");
    }

    #[test]
    fn session_timeout_is_kept_and_only_a_value_beyond_conntrack_warns() {
        let conf = |t: &str| {
            run(&format!(
                "{HEAD}redirect r {{\n listen on a port 1\n forward to <t>\n session timeout {t}\n}}\n"
            ))
            .unwrap()
        };
        let timeout_warnings = |c: &RelaydConfig| {
            c.warnings
                .iter()
                .filter(|w| w.message.contains("session timeout"))
                .map(|w| (w.line, w.col, w.message.contains("2000000")))
                .collect::<Vec<_>>()
        };
        let c = conf("30");
        assert_eq!(c.redirects[0].session_timeout_s, 30);
        assert!(timeout_warnings(&c).is_empty(), "{:?}", c.warnings);
        assert!(timeout_warnings(&conf("0")).is_empty());
        let c = conf("3000000");
        assert_eq!(c.redirects[0].session_timeout_s, 3_000_000);
        assert_eq!(timeout_warnings(&c), vec![(6, 2, true)], "{:?}", c.warnings);
    }

    #[test]
    fn on_exit_takes_flush_or_keep() {
        assert!(
            run("hasocks.redirect.on-exit keep\n")
                .unwrap()
                .redirect_keep_on_exit
        );
        assert!(
            !run("hasocks.redirect.on-exit flush\n")
                .unwrap()
                .redirect_keep_on_exit
        );
        assert!(run("hasocks.redirect.on-exit maybe\n").is_err());
    }
}

//! `relay "name" { ... }` blocks: listen, forward (with mode, check, timeout, interval, port),
//! session timeout, disable, and our `send proxy-v2`.

use std::path::PathBuf;

use super::keywords;
use super::lexer::{TokKind, Token};
use super::parser::{Parser, Res};
use super::words::{self, is_reserved, is_unsupported, not_supported};
use super::{Check, Forward, HashKey, Listen, Mode, Relay};

/// relayd's maximum session timeout (INT_MAX seconds).
const MAX_SESSION_TIMEOUT: u32 = 2_147_483_647;

const NO_TABLE: &str = "forward to needs a <table>, e.g. forward to <sockdhosts> port 1080";

impl Parser {
    /// The relay block after the `relay` keyword `kw`.
    pub(crate) fn relay(&mut self, kw: &Token) -> Res<()> {
        let t = self.s.next()?;
        let name = match &t.kind {
            TokKind::Str(s) if !s.is_empty() => s.clone(),
            TokKind::Word(w) if !is_reserved(w) => w.clone(),
            TokKind::Word(w) => {
                return Err(self.s.err(
                    &t,
                    format!("\"{w}\" is a keyword: write the relay name in quotes"),
                ));
            }
            _ => {
                return Err(self
                    .s
                    .err(&t, "a relay needs a name, e.g. relay \"socks\" { ... }"));
            }
        };
        if let Some(&line) = self.relays.get(&name) {
            return Err(self.s.err(
                &t,
                format!("relay \"{name}\" defined twice (first on line {line})"),
            ));
        }
        let open = self.s.next()?;
        if !open.is_punct('{') {
            return Err(self.s.err(
                &open,
                format!(
                    "expected '{{' after relay \"{name}\", found {}",
                    open.describe()
                ),
            ));
        }
        let mut relay = Relay {
            name,
            listens: Vec::new(),
            forwards: Vec::new(),
            session_timeout_s: 600,
            disabled: false,
            send_proxy_v2: false,
            first_byte_timeout_s: None,
            protocol: None,
            tcp: super::TcpOptions::DEFAULT,
            line: kw.line,
        };
        // Forwards whose port is still to be taken from the first `listen on`.
        let mut default_port = Vec::new();
        loop {
            let t = self.s.next()?;
            let w = match &t.kind {
                TokKind::Newline => continue,
                TokKind::Punct('}') => break,
                TokKind::Eof => {
                    return Err(self.s.err(
                        &t,
                        format!("relay \"{}\" is not closed: missing '}}'", relay.name),
                    ));
                }
                TokKind::Word(w) => w.clone(),
                _ => {
                    return Err(self.s.err(
                        &t,
                        format!("unexpected {}; expected a relay option", t.describe()),
                    ))
                }
            };
            if !keywords::RELAY.contains(&w.as_str()) {
                let msg = if is_unsupported(&w) {
                    not_supported(&w)
                } else {
                    format!("unknown keyword \"{w}\"")
                };
                return Err(self.s.err(&t, msg));
            }
            match w.as_str() {
                "listen" => relay.listens.push(self.listen()?),
                "forward" => {
                    let (fwd, port_given) = self.forward(&t)?;
                    default_port.push(!port_given);
                    relay.forwards.push(fwd);
                }
                "session" => {
                    self.expect_word("timeout", "session")?;
                    relay.session_timeout_s =
                        self.number("session timeout", 0, MAX_SESSION_TIMEOUT)?.0;
                }
                "disable" => relay.disabled = true,
                "hasocks.timeout.firstbyte" => {
                    relay.first_byte_timeout_s =
                        Some(self.number("hasocks.timeout.firstbyte", 0, 86_400)?.0);
                }
                "protocol" => {
                    if relay.protocol.is_some() {
                        return Err(self.s.err(
                            &t,
                            format!("relay \"{}\" names a protocol twice", relay.name),
                        ));
                    }
                    let (name, tcp) = self.relay_protocol()?;
                    relay.protocol = Some(name);
                    relay.tcp = tcp;
                }
                "send" => {
                    self.expect_word("proxy-v2", "send")?;
                    relay.send_proxy_v2 = true;
                }
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
        let Some(first_port) = relay.listens.first().map(|l| l.port) else {
            return Err(self.s.err(
                kw,
                format!("relay \"{}\" has no \"listen on\" line", relay.name),
            ));
        };
        if relay.forwards.is_empty() {
            return Err(self.s.err(
                kw,
                format!("relay \"{}\" has no \"forward to\" line", relay.name),
            ));
        }
        for (f, default) in relay.forwards.iter_mut().zip(default_port) {
            if default {
                f.port = first_port;
            }
        }
        self.relays.insert(relay.name.clone(), relay.line);
        self.cfg.relays.push(relay);
        Ok(())
    }

    /// `listen on ADDR port P` after `listen`.
    pub(crate) fn listen(&mut self) -> Res<Listen> {
        self.expect_word("on", "listen")?;
        let (addr, _) = self.value("an address after \"listen on\"")?;
        self.expect_word("port", "listen on ADDRESS")?;
        let port = self.port()?;
        let t = self.s.peek()?;
        if t.is_word("tls") {
            return Err(self.s.err(&t, not_supported("listen on ... tls")));
        }
        Ok(Listen { addr, port })
    }

    /// `forward to <table> OPTIONS...` after the `forward` keyword `kw`; also tells whether
    /// `port` was given.
    pub(crate) fn forward(&mut self, kw: &Token) -> Res<(Forward, bool)> {
        let to = self.s.next()?;
        if to.is_word("with") {
            return Err(self.s.err(&to, not_supported("forward with tls")));
        }
        if !to.is_word("to") {
            return Err(self.s.err(
                &to,
                format!("expected \"to\" after \"forward\", found {}", to.describe()),
            ));
        }
        let t = self.s.peek()?;
        match &t.kind {
            TokKind::Word(w) if w == "destination" => {
                return Err(self.s.err(&t, not_supported("forward to destination")))
            }
            TokKind::Word(w) if w == "nat" => {
                return Err(self.s.err(&t, not_supported("nat lookup")))
            }
            TokKind::Word(w) | TokKind::Str(w) if !is_reserved(w) => {
                return Err(self.s.err(
                    &t,
                    format!("{NO_TABLE} (forwarding to a single address is not supported by hasocks: put it in a table)"),
                ));
            }
            _ => {}
        }
        let (name_tok, table) = self.table_name(NO_TABLE)?;
        let Some(entry) = self.tables.get_mut(&table) else {
            return Err(self.s.err(
                &name_tok,
                format!("table <{table}> is not defined (define it before the relay)"),
            ));
        };
        entry.1 = true;
        let (table_interval, table_timeout) = self
            .cfg
            .tables
            .get(entry.0)
            .map_or((self.cfg.interval_s, self.cfg.timeout_ms), |t| {
                (t.interval_s, t.timeout_ms)
            });
        let mut fwd = Forward {
            table,
            port: 0,
            mode: Mode::RoundRobin,
            check: None,
            timeout_ms: None,
            interval_s: None,
            line: kw.line,
        };
        let (mut port_given, mut mode_given) = (false, false);
        let mut timeout_tok = None;
        loop {
            let t = self.s.peek()?;
            if t.ends_line() || t.is_punct('}') {
                break;
            }
            self.s.next()?;
            let w = match &t.kind {
                TokKind::Word(w) => w.clone(),
                _ => {
                    return Err(self
                        .s
                        .err(&t, format!("unexpected {} in a forward line", t.describe())))
                }
            };
            if !keywords::FORWARD.contains(&w.as_str()) {
                let msg = if w == "retry" {
                    format!(
                        "{} on a forward line; write \"retry N\" after the hosts of the table",
                        not_supported("retry")
                    )
                } else if is_unsupported(&w) {
                    not_supported(&w)
                } else {
                    format!("unknown keyword \"{w}\"")
                };
                return Err(self.s.err(&t, msg));
            }
            let seen = match w.as_str() {
                "port" => std::mem::replace(&mut port_given, true),
                "mode" => std::mem::replace(&mut mode_given, true),
                "check" => fwd.check.is_some(),
                "timeout" => fwd.timeout_ms.is_some(),
                "interval" => fwd.interval_s.is_some(),
                _ => false,
            };
            if seen {
                return Err(self
                    .s
                    .err(&t, format!("\"{w}\" given twice in one forward line")));
            }
            match w.as_str() {
                "port" => fwd.port = self.port()?,
                "mode" => fwd.mode = self.mode()?,
                "check" => fwd.check = Some(self.check()?),
                "timeout" => {
                    let (n, at) = self.number("timeout", 1, 2_147_483_647)?;
                    fwd.timeout_ms = Some(n);
                    timeout_tok = Some(at);
                }
                "interval" => {
                    let (n, at) = self.number("interval", 1, 2_147_483)?;
                    let global = self.cfg.interval_s;
                    if n % global > 0 {
                        return Err(self.s.err(
                            &at,
                            format!("interval {n} must be a multiple of the global interval ({global} s)"),
                        ));
                    }
                    fwd.interval_s = Some(n);
                }
                _ => return Err(self.s.err(&t, format!("unknown keyword \"{w}\""))),
            }
        }
        let interval = fwd.interval_s.unwrap_or(table_interval);
        let timeout = fwd.timeout_ms.unwrap_or(table_timeout);
        if let Some(at) = timeout_tok.filter(|_| u64::from(timeout) > u64::from(interval) * 1000) {
            // relayd refuses this; the reference configuration relies on it, so only warn.
            self.warn(
                &at,
                format!("check timeout {timeout} ms is longer than the check interval of {interval} s; a check may still run when the next one starts"),
            );
        }
        Ok((fwd, port_given))
    }

    /// The scheduling mode after `mode`.
    fn mode(&mut self) -> Res<Mode> {
        let t = self.s.next()?;
        let w = t.word().filter(|w| keywords::MODES.contains(w));
        let mode = match w.unwrap_or_default() {
            "roundrobin" => Mode::RoundRobin,
            "random" => Mode::Random,
            "least-states" => Mode::LeastStates,
            "loadbalance" => Mode::LoadBalance(self.key()?),
            "source-hash" => Mode::SourceHash(self.key()?),
            "hash" => Mode::Hash(self.key()?),
            _ => {
                return Err(self.s.err(
                    &t,
                    format!(
                        "unknown mode {}; expected roundrobin, random, loadbalance, source-hash, hash or least-states",
                        t.describe()
                    ),
                ))
            }
        };
        Ok(mode)
    }

    /// An optional hash key: a quoted string or a word that is not a keyword.
    fn key(&mut self) -> Res<Option<HashKey>> {
        let t = self.s.peek()?;
        let s = match &t.kind {
            TokKind::Str(s) => s.clone(),
            TokKind::Word(w) if !is_reserved(w) => w.clone(),
            _ => return Ok(None),
        };
        self.s.next()?;
        words::hash_key(&s).map(Some).map_err(|m| self.s.err(&t, m))
    }

    /// The check method after `check`.
    fn check(&mut self) -> Res<Check> {
        let t = self.s.next()?;
        let w = t.word().unwrap_or_default().to_string();
        // Only the table's checks are dispatched; relayd's others are named as unsupported.
        let unsupported = matches!(w.as_str(), "icmp" | "tls" | "http" | "https" | "ssl");
        let known = unsupported || keywords::CHECKS.contains(&w.as_str());
        let check = match if known { w.as_str() } else { "" } {
            "tcp" => Check::Tcp,
            "send" => {
                let send = self.send_data()?.0.into_bytes();
                self.expect_word("expect", "check send DATA")?;
                let (expect, _) = self.value("a pattern after \"expect\"")?;
                self.refuse_tls("check send ... tls")?;
                Check::Send { send, expect }
            }
            "binary" => {
                self.expect_word("send", "check binary")?;
                let (send, at) = self.send_data()?;
                let send =
                    words::hex(&send, "check binary send").map_err(|m| self.s.err(&at, m))?;
                self.expect_word("expect", "check binary send DATA")?;
                let (expect, at) = self.value("hex digits after \"expect\"")?;
                let expect =
                    words::hex(&expect, "check binary expect").map_err(|m| self.s.err(&at, m))?;
                if expect.is_empty() {
                    return Err(self
                        .s
                        .err(&at, "check binary expect needs at least one byte"));
                }
                self.refuse_tls("check binary ... tls")?;
                Check::Binary { send, expect }
            }
            "script" => Check::Script(PathBuf::from(
                self.value("a path after \"check script\"")?.0,
            )),
            "socks" => self.socks_check()?,
            "icmp" | "tls" | "http" | "https" | "ssl" => {
                return Err(self.s.err(&t, not_supported(&format!("check {w}"))));
            }
            _ => {
                return Err(self.s.err(
                    &t,
                    format!(
                        "unknown check {}; expected tcp, send, binary, script or socks",
                        t.describe()
                    ),
                ))
            }
        };
        Ok(check)
    }

    /// The data after `send` (`nothing` or a string) and its token.
    fn send_data(&mut self) -> Res<(String, Token)> {
        let t = self.s.peek()?;
        if t.is_word("nothing") {
            self.s.next()?;
            return Ok((String::new(), t));
        }
        self.value("data or \"nothing\" after \"send\"")
    }

    /// Refuses a trailing `tls` on a check.
    fn refuse_tls(&mut self, what: &str) -> Res<()> {
        let t = self.s.peek()?;
        if t.is_word("tls") {
            return Err(self.s.err(&t, not_supported(what)));
        }
        Ok(())
    }

    /// Ours: `check socks [connect ADDR port P] [user "u" password "p"]` or `check socks
    /// hasocks.gssapi keytab "K" principal "P" [service "S"]`, parts in any order.
    fn socks_check(&mut self) -> Res<Check> {
        let (mut target, mut auth, mut gssapi) = (None, None, None);
        loop {
            let t = self.s.peek()?;
            match t.word().unwrap_or_default() {
                "connect" if target.is_none() => {
                    self.s.next()?;
                    let (addr, _) = self.value("an address after \"connect\"")?;
                    self.expect_word("port", "connect ADDRESS")?;
                    target = Some((addr, self.port()?));
                }
                "user" if auth.is_none() => {
                    self.s.next()?;
                    let (user, at) = self.value("a user name after \"user\"")?;
                    self.expect_word("password", "user NAME")?;
                    let (password, _) = self.value("a password after \"password\"")?;
                    if user.len() > 255 || password.len() > 255 {
                        return Err(self
                            .s
                            .err(&at, "SOCKS user names and passwords are at most 255 bytes"));
                    }
                    auth = Some((user, password));
                }
                "hasocks.gssapi" if gssapi.is_none() && auth.is_none() => {
                    self.s.next()?;
                    gssapi = Some(self.gssapi_check()?);
                }
                "user" | "hasocks.gssapi" if gssapi.is_some() || auth.is_some() => {
                    return Err(self.s.err(
                        &t,
                        "a check socks takes \"user\" or \"hasocks.gssapi\", not both",
                    ));
                }
                w @ ("connect" | "user") => {
                    return Err(self
                        .s
                        .err(&t, format!("\"{w}\" given twice in one check socks")));
                }
                _ => {
                    return match (gssapi, target) {
                        (Some(_), Some(_)) => Err(self.s.err(
                            &t,
                            "check socks with hasocks.gssapi goes through the relay's own \
                             listener: \"connect\" is not supported with it",
                        )),
                        (Some(gssapi), None) => Ok(Check::SocksGssapi { gssapi }),
                        (None, target) => Ok(Check::Socks { target, auth }),
                    }
                }
            }
        }
    }
}

impl Parser {
    /// `keytab "K" principal "P" [service "S"]` after `hasocks.gssapi`.
    fn gssapi_check(&mut self) -> Res<super::GssapiCheck> {
        self.expect_word("keytab", "hasocks.gssapi")?;
        let (keytab, _) = self.value("a keytab after \"keytab\"")?;
        self.expect_word("principal", "hasocks.gssapi keytab K")?;
        let (principal, _) = self.value("a principal after \"principal\"")?;
        let service = if self.s.peek()?.word() == Some("service") {
            self.s.next()?;
            Some(self.value("a service after \"service\"")?.0)
        } else {
            None
        };
        Ok(super::GssapiCheck {
            keytab,
            principal,
            service,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::stream::Stream;
    use super::*;
    use crate::relayd::RelaydConfig;

    fn run(text: &str) -> Res<RelaydConfig> {
        Parser::new(Stream::new(text, Path::new("r.conf"))).run()
    }

    const HEAD: &str = "table <t> { h }\n";

    #[test]
    fn a_socks_check_can_authenticate_with_a_keytab() {
        let text = format!(
            "{HEAD}relay r {{\n listen on a port 1\n forward to <t> check socks \
             hasocks.gssapi keytab \"FILE:/etc/p.keytab\" principal \"probe@R\" \
             service \"rcmd@proxy\"\n}}\n"
        );
        assert_eq!(
            run(&text).unwrap().relays[0].forwards[0].check,
            Some(Check::SocksGssapi {
                gssapi: crate::relayd::GssapiCheck {
                    keytab: "FILE:/etc/p.keytab".into(),
                    principal: "probe@R".into(),
                    service: Some("rcmd@proxy".into()),
                }
            })
        );
        let both = format!(
            "{HEAD}relay r {{\n listen on a port 1\n forward to <t> check socks user u \
             password p hasocks.gssapi keytab k principal p\n}}\n"
        );
        let e = run(&both).unwrap_err();
        assert!(e.message.contains("not both"), "{e}");
        let connect = text.replace("service", "connect 127.0.0.1 port 80 service");
        let e = run(&connect).unwrap_err();
        assert!(e.message.contains("not supported with it"), "{e}");
    }

    #[test]
    fn a_relay_may_be_written_on_one_line() {
        let c = run(&format!("{HEAD}relay r {{ listen on a port 1 }}\n")).unwrap_err();
        assert!(c.message.contains("no \"forward to\""), "{c}");
        let text = format!("{HEAD}relay r {{\n listen on a port 1\n forward to <t> check tcp }}\n");
        assert_eq!(
            run(&text).unwrap().relays[0].forwards[0].check,
            Some(Check::Tcp)
        );
    }

    #[test]
    fn a_keyword_as_a_bare_relay_name_asks_for_quotes() {
        let e = run(&format!("{HEAD}relay http {{\n}}\n")).unwrap_err();
        assert!(e.message.contains("in quotes"), "{e}");
        let c = run(&format!(
            "{HEAD}relay \"http\" {{\n listen on a port 1\n forward to <t>\n}}\n"
        ))
        .unwrap();
        assert_eq!(c.relays[0].name, "http");
    }

    #[test]
    fn the_forward_line_is_the_line_of_its_keyword() {
        let text = format!("{HEAD}relay r {{\n listen on a port 1\n forward \\\n to <t>\n}}\n");
        assert_eq!(run(&text).unwrap().relays[0].forwards[0].line, 4);
    }

    #[test]
    fn a_long_forward_timeout_is_only_a_warning() {
        let text =
            format!("{HEAD}relay r {{\n listen on a port 1\n forward to <t> timeout 10001\n}}\n");
        let c = run(&text).unwrap();
        assert_eq!(c.warnings.len(), 1);
        assert_eq!((c.warnings[0].line, c.warnings[0].col), (4, 25));
        let text = format!("{HEAD}relay r {{\n listen on a port 1\n forward to <t> timeout 10001 interval 20\n}}\n");
        assert!(run(&text).unwrap().warnings.is_empty());
    }

    #[test]
    fn socks_check_parts_may_not_repeat() {
        let text = format!("{HEAD}relay r {{\n listen on a port 1\n forward to <t> check socks user u password p user v password q\n}}\n");
        let e = run(&text).unwrap_err();
        assert_eq!((e.line, e.col), (4, 47));
    }
}

//! The statement parser: macros, includes, global options and tables; relays are in
//! `relay.rs`. Final checks (timeout vs interval, unused tables) run at the end.

use std::collections::HashMap;
use std::path::PathBuf;

use super::keywords;
use super::lexer::{TokKind, Token};
use super::stream::Stream;
use super::words::{self, is_reserved, is_unsupported, not_supported};
use super::{HostEntry, LogConnections, RelaydConfig, Table};
use crate::{ConfError, ConfWarning};

/// relayd's RELAY_MAXHOSTS.
const MAX_TABLE_HOSTS: usize = 32;
/// relayd's TABLE_NAME_SIZE minus the terminating zero.
const MAX_TABLE_NAME: usize = 63;

/// The parser state.
pub(crate) struct Parser {
    pub(crate) s: Stream,
    pub(crate) cfg: RelaydConfig,
    /// Where the last global `timeout` value was written (for the final check).
    timeout_at: Option<Token>,
    /// Table name -> (index in cfg.tables, used by a relay, its `table` keyword).
    pub(crate) tables: HashMap<String, (usize, bool, Token)>,
    /// Relay name -> line of its `relay` keyword (a linear search per relay would make a
    /// file of many small relays quadratic).
    pub(crate) relays: HashMap<String, u32>,
}

/// `(message)` results from the word readers become errors at a token.
pub(crate) type Res<T> = Result<T, ConfError>;

impl Parser {
    /// A parser over a stream, with relayd's defaults.
    pub fn new(s: Stream) -> Self {
        let cfg = RelaydConfig {
            interval_s: 10,
            timeout_ms: 200,
            log_host_checks: false,
            log_connections: LogConnections::Off,
            socket: None,
            prefork: None,
            admin: None,
            max_sessions: None,
            max_sessions_per_source: None,
            first_byte_timeout_s: 30,
            freebind: true,
            tcp_keepalive_s: 60,
            tables: Vec::new(),
            protocols: Vec::new(),
            relays: Vec::new(),
            redirects: Vec::new(),
            redirect_keep_on_exit: false,
            warnings: Vec::new(),
        };
        Self {
            s,
            cfg,
            timeout_at: None,
            tables: HashMap::new(),
            relays: HashMap::new(),
        }
    }

    /// Parses the whole input.
    pub fn run(mut self) -> Res<RelaydConfig> {
        loop {
            let t = self.s.peek()?;
            match &t.kind {
                TokKind::Eof => break,
                TokKind::Newline => {
                    self.s.next()?;
                    continue;
                }
                TokKind::Word(w) => {
                    let w = w.clone();
                    if self.s.peek2()?.is_punct('=') {
                        self.macro_def()?;
                    } else if w == "include" {
                        self.include()?;
                        continue;
                    } else {
                        self.statement(&w)?;
                    }
                }
                _ => {
                    return Err(self.s.err(
                        &t,
                        format!("unexpected {}; expected a keyword", t.describe()),
                    ))
                }
            }
            self.end_of_statement()?;
        }
        self.finish()?;
        Ok(self.cfg)
    }

    /// Requires the end of a line (or of the input) after a statement.
    pub(crate) fn end_of_statement(&mut self) -> Res<()> {
        let t = self.s.next()?;
        if t.ends_line() {
            return Ok(());
        }
        Err(self.s.err(
            &t,
            format!("unexpected {} at the end of the statement", t.describe()),
        ))
    }

    /// Consumes the word `w` or fails naming what it follows.
    pub(crate) fn expect_word(&mut self, w: &str, after: &str) -> Res<Token> {
        let t = self.s.next()?;
        if t.is_word(w) {
            return Ok(t);
        }
        Err(self.s.err(
            &t,
            format!("expected \"{w}\" after \"{after}\", found {}", t.describe()),
        ))
    }

    /// A word or quoted string (a value); `what` names it in the message.
    pub(crate) fn value(&mut self, what: &str) -> Res<(String, Token)> {
        let t = self.s.next()?;
        match &t.kind {
            TokKind::Word(w) if !is_reserved(w) => Ok((w.clone(), t)),
            TokKind::Str(s) => Ok((s.clone(), t)),
            _ => Err(self
                .s
                .err(&t, format!("expected {what}, found {}", t.describe()))),
        }
    }

    /// A number in `min..=max` after the keyword `what`.
    pub(crate) fn number(&mut self, what: &str, min: u32, max: u32) -> Res<(u32, Token)> {
        let t = self.s.next()?;
        let r = match &t.kind {
            TokKind::Word(w) => words::number(w, what, min, max),
            _ => Err(format!("{what} needs a number, found {}", t.describe())),
        };
        r.map(|n| (n, t.clone())).map_err(|m| self.s.err(&t, m))
    }

    /// A port (number or service name) after the keyword `port`.
    pub(crate) fn port(&mut self) -> Res<u16> {
        let t = self.s.next()?;
        let r = match &t.kind {
            TokKind::Word(w) | TokKind::Str(w) => words::port(w),
            _ => Err(format!(
                "port needs a number or service name, found {}",
                t.describe()
            )),
        };
        r.map_err(|m| self.s.err(&t, m))
    }

    /// A remark for the operator at `t`.
    pub(crate) fn warn(&mut self, t: &Token, message: String) {
        let file = self.s.path(t.file);
        self.cfg.warnings.push(ConfWarning {
            file,
            line: t.line,
            col: t.col,
            message,
        });
    }

    /// `name = value`.
    fn macro_def(&mut self) -> Res<()> {
        let name_tok = self.s.next()?;
        let name = name_tok.word().unwrap_or_default().to_string();
        if is_reserved(&name) {
            return Err(self.s.err(
                &name_tok,
                format!("\"{name}\" is a reserved word and cannot be a macro name"),
            ));
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(self.s.err(
                &name_tok,
                format!("invalid macro name \"{name}\": use letters, digits and underscores"),
            ));
        }
        self.s.next()?; // '='
        let t = self.s.next()?;
        let value = match &t.kind {
            TokKind::Word(w) | TokKind::Str(w) => w.clone(),
            _ => {
                return Err(self.s.err(
                    &t,
                    format!(
                        "expected the value of macro \"{name}\", found {}",
                        t.describe()
                    ),
                ))
            }
        };
        self.s.define(&name, &value);
        Ok(())
    }

    /// `include "file"`: the file's statements follow.
    fn include(&mut self) -> Res<()> {
        let kw = self.s.next()?;
        let (path, _) = self.value("a file name after \"include\"")?;
        let end = self.s.peek()?;
        if !end.ends_line() {
            return Err(self.s.err(
                &end,
                format!("unexpected {} after the include file name", end.describe()),
            ));
        }
        if end.kind == TokKind::Newline {
            self.s.next()?;
        }
        self.s.include(&path, &kw)
    }

    /// One top-level statement starting with the word `w`.
    fn statement(&mut self, w: &str) -> Res<()> {
        let kw = self.s.next()?;
        if matches!(w, "http" | "https" | "dns") {
            return self.layer7_protocol(&kw, w);
        }
        if !keywords::GLOBAL.contains(&w) {
            let msg = if is_unsupported(w) || w == "load" {
                not_supported(w)
            } else {
                format!("unknown keyword \"{w}\"")
            };
            return Err(self.s.err(&kw, msg));
        }
        match w {
            "interval" => self.cfg.interval_s = self.number("interval", 1, 2_147_483)?.0,
            "timeout" => {
                let (n, t) = self.number("timeout", 1, 2_147_483_647)?;
                self.cfg.timeout_ms = n;
                self.timeout_at = Some(t);
            }
            "log" => self.log()?,
            "socket" => {
                self.cfg.socket = Some(PathBuf::from(self.value("a path after \"socket\"")?.0))
            }
            "prefork" => self.cfg.prefork = Some(self.number("prefork", 1, 1024)?.0),
            "hasocks.maxconn" => {
                self.cfg.max_sessions = Some(self.number("hasocks.maxconn", 1, 100_000_000)?.0)
            }
            "hasocks.maxconn.source" => {
                self.cfg.max_sessions_per_source =
                    Some(self.number("hasocks.maxconn.source", 0, 100_000_000)?.0)
            }
            "hasocks.timeout.firstbyte" => {
                self.cfg.first_byte_timeout_s =
                    self.number("hasocks.timeout.firstbyte", 0, 86_400)?.0
            }
            "hasocks.tcp.keepalive" => {
                self.cfg.tcp_keepalive_s = self.number("hasocks.tcp.keepalive", 0, 86_400)?.0
            }
            "hasocks.freebind" => {
                let t = self.s.next()?;
                self.cfg.freebind = match t.word() {
                    Some("yes") => true,
                    Some("no") => false,
                    _ => {
                        return Err(self.s.err(
                            &t,
                            format!("hasocks.freebind takes yes or no, found {}", t.describe()),
                        ))
                    }
                };
            }
            "hasocks.admin" => {
                if self.cfg.admin.is_some() {
                    return Err(self.s.err(&kw, "\"hasocks.admin\" given twice"));
                }
                self.expect_word("listen", "hasocks.admin")?;
                self.cfg.admin = Some(self.listen()?);
            }
            "table" => self.table(&kw)?,
            "relay" => self.relay(&kw)?,
            "protocol" => self.protocol(&kw)?,
            "tcp" => {
                self.expect_word("protocol", "tcp")?;
                self.protocol(&kw)?;
            }
            "redirect" => self.redirect(&kw)?,
            "hasocks.redirect.on-exit" => {
                let t = self.s.next()?;
                self.cfg.redirect_keep_on_exit = match t.word() {
                    Some("flush") => false,
                    Some("keep") => true,
                    _ => {
                        return Err(self.s.err(
                            &t,
                            format!(
                                "hasocks.redirect.on-exit takes flush or keep, found {}",
                                t.describe()
                            ),
                        ))
                    }
                };
            }
            _ => return Err(self.s.err(&kw, format!("unknown keyword \"{w}\""))),
        }
        Ok(())
    }

    /// `log state changes | host checks | connection [errors]` (and the older `updates | all`).
    fn log(&mut self) -> Res<()> {
        let t = self.s.next()?;
        let w = t.word().filter(|w| keywords::LOG.contains(w));
        match w.unwrap_or_default() {
            "state" => {
                self.expect_word("changes", "log state")?;
                self.cfg.log_host_checks = false;
            }
            "updates" => self.cfg.log_host_checks = false,
            "host" => {
                self.expect_word("checks", "log host")?;
                self.cfg.log_host_checks = true;
            }
            "all" => self.cfg.log_host_checks = true,
            "connection" => {
                self.cfg.log_connections = if self.s.peek()?.is_word("errors") {
                    self.s.next()?;
                    LogConnections::Errors
                } else {
                    LogConnections::All
                };
            }
            _ => {
                return Err(self.s.err(
                    &t,
                    format!(
                        "expected \"state changes\", \"host checks\" or \"connection [errors]\" after \"log\", found {}",
                        t.describe()
                    ),
                ))
            }
        }
        Ok(())
    }

    /// `table <name> [disable] { host [retry N] [port N], ... }`.
    fn table(&mut self, kw: &Token) -> Res<()> {
        let name_tok =
            self.table_name("a table needs a <name>, e.g. table <sockdhosts> { ... }")?;
        let name = name_tok.1;
        if let Some((i, _, _)) = self.tables.get(&name) {
            let first = self.cfg.tables.get(*i).map_or(0, |t| t.line);
            return Err(self.s.err(
                &name_tok.0,
                format!("table <{name}> defined twice (first on line {first})"),
            ));
        }
        let mut disabled = false;
        if self.s.peek()?.is_word("disable") {
            self.s.next()?;
            disabled = true;
        }
        let open = self.s.next()?;
        if !open.is_punct('{') {
            return Err(self.s.err(
                &open,
                format!(
                    "expected '{{' after table <{name}>, found {}",
                    open.describe()
                ),
            ));
        }
        let hosts = self.hosts(&name)?;
        let interval_s = self.cfg.interval_s;
        let timeout_ms = self.cfg.timeout_ms;
        if u64::from(timeout_ms) > u64::from(interval_s) * 1000 {
            return Err(self.s.err(
                kw,
                format!(
                    "table <{name}> gets the global timeout {timeout_ms} ms, longer than the global interval of {interval_s} s; set interval and timeout before the table"
                ),
            ));
        }
        self.tables
            .insert(name.clone(), (self.cfg.tables.len(), false, kw.clone()));
        self.cfg.tables.push(Table {
            name,
            disabled,
            hosts,
            interval_s,
            timeout_ms,
            line: kw.line,
        });
        Ok(())
    }

    /// `<name>`: returns the name's token (the `<`) and the name; `missing` is the message
    /// when there is no `<name>`.
    pub(crate) fn table_name(&mut self, missing: &str) -> Res<(Token, String)> {
        let open = self.s.next()?;
        if !open.is_punct('<') {
            return Err(self.s.err(&open, missing));
        }
        let t = self.s.next()?;
        let name = match &t.kind {
            TokKind::Word(w) | TokKind::Str(w) if !w.is_empty() => w.clone(),
            _ => return Err(self.s.err(&t, missing)),
        };
        if name.chars().count() > MAX_TABLE_NAME {
            return Err(self.s.err(
                &t,
                format!("table name \"{name}\" is longer than {MAX_TABLE_NAME} characters"),
            ));
        }
        let close = self.s.next()?;
        if !close.is_punct('>') {
            return Err(self.s.err(
                &close,
                format!("expected '>' after <{name}, found {}", close.describe()),
            ));
        }
        Ok((open, name))
    }

    /// The hosts of a table up to the closing `}`.
    fn hosts(&mut self, table: &str) -> Res<Vec<HostEntry>> {
        let mut hosts = Vec::new();
        loop {
            let t = self.s.next()?;
            let host = match &t.kind {
                TokKind::Newline | TokKind::Punct(',') => continue,
                TokKind::Punct('}') => {
                    if hosts.is_empty() {
                        return Err(self.s.err(
                            &t,
                            format!("table <{table}> has no hosts; a table needs at least one"),
                        ));
                    }
                    return Ok(hosts);
                }
                TokKind::Eof => {
                    return Err(self
                        .s
                        .err(&t, format!("table <{table}> is not closed: missing '}}'")))
                }
                TokKind::Word(w) if !is_reserved(w) => w.clone(),
                TokKind::Str(s) if !s.is_empty() => s.clone(),
                _ => {
                    return Err(self.s.err(
                        &t,
                        format!("expected a host in table <{table}>, found {}", t.describe()),
                    ))
                }
            };
            if hosts.len() >= MAX_TABLE_HOSTS {
                return Err(self.s.err(
                    &t,
                    format!("table <{table}> has more than {MAX_TABLE_HOSTS} hosts"),
                ));
            }
            let mut entry = HostEntry {
                name: host,
                port: None,
                retry: 0,
                line: t.line,
            };
            self.host_options(&mut entry)?;
            hosts.push(entry);
        }
    }

    /// `retry N`, `port N` (ours) after a host; relayd's `parent`, `priority`, `ip ttl` are
    /// refused.
    fn host_options(&mut self, entry: &mut HostEntry) -> Res<()> {
        loop {
            let t = self.s.peek()?;
            let w = t.word().unwrap_or_default();
            if !keywords::HOST_OPTIONS.contains(&w) {
                return match w {
                    "parent" | "priority" => Err(self.s.err(&t, not_supported(w))),
                    "ip" => Err(self.s.err(&t, not_supported("ip ttl"))),
                    _ => Ok(()),
                };
            }
            match w {
                "retry" => {
                    self.s.next()?;
                    entry.retry = self.number("retry", 0, 2_147_483_647)?.0;
                }
                "port" => {
                    self.s.next()?;
                    entry.port = Some(self.port()?);
                }
                _ => return Ok(()),
            }
        }
    }

    /// Checks that need the whole file.
    fn finish(&mut self) -> Res<()> {
        let (interval, timeout) = (self.cfg.interval_s, self.cfg.timeout_ms);
        if u64::from(timeout) > u64::from(interval) * 1000 {
            let at = self.timeout_at.clone().unwrap_or(Token {
                kind: TokKind::Eof,
                line: 0,
                col: 0,
                file: 0,
            });
            return Err(self.s.err(
                &at,
                format!("global timeout {timeout} ms exceeds the global interval of {interval} s"),
            ));
        }
        let mut unused: Vec<(usize, String, Token)> = self
            .tables
            .iter()
            .filter(|(_, (_, used, _))| !used)
            .map(|(n, (i, _, kw))| (*i, n.clone(), kw.clone()))
            .collect();
        unused.sort_by_key(|u| u.0);
        for (_, name, kw) in unused {
            self.warn(
                &kw,
                format!("table <{name}> is not used by any relay or redirect"),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn run(text: &str) -> Res<RelaydConfig> {
        Parser::new(Stream::new(text, Path::new("p.conf"))).run()
    }

    #[test]
    fn a_macro_can_be_redefined_and_later_uses_see_the_new_value() {
        let c = run("a=1\ntable <x> { $a.0.0.1 }\na=2\ntable <y> { $a.0.0.1 }\n").unwrap();
        assert_eq!(c.tables[0].hosts[0].name, "1.0.0.1");
        assert_eq!(c.tables[1].hosts[0].name, "2.0.0.1");
    }

    #[test]
    fn a_table_captures_globals_that_stand_before_it() {
        let err = run("interval 1\ntimeout 900\ntimeout 1500\ninterval 10\n").unwrap();
        assert_eq!((err.interval_s, err.timeout_ms), (10, 1500));
        let e = run("interval 1\ntimeout 1000\ntable <t> { h }\n").unwrap();
        assert_eq!(e.tables[0].timeout_ms, 1000);
    }

    #[test]
    fn unused_tables_are_remarked_at_their_keyword() {
        let c = run("\n  table <t> { h }\n").unwrap();
        assert_eq!(c.warnings.len(), 1);
        assert_eq!((c.warnings[0].line, c.warnings[0].col), (2, 3));
        assert!(c.warnings[0].message.contains("<t>"));
    }

    #[test]
    fn host_keywords_without_a_host_are_errors() {
        let e = run("table <t> { retry 2 }\n").unwrap_err();
        assert_eq!((e.line, e.col), (1, 13));
    }

    #[test]
    fn over_long_table_names_are_refused() {
        let name = "n".repeat(64);
        let e = run(&format!("table <{name}> {{ h }}\n")).unwrap_err();
        assert!(e.message.contains("longer than 63"), "{e}");
    }
}

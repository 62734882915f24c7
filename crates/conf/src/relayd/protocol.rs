//! `[tcp] protocol NAME { tcp { ... } }` blocks (relayd's TCP protocol options) and the
//! refusal of layer 7 protocols (`http protocol`, `dns protocol`): hasocks relays TCP.

use super::keywords;
use super::lexer::{TokKind, Token};
use super::parser::{Parser, Res};
use super::words::{is_reserved, is_unsupported, not_supported};
use super::{Protocol, TcpOptions};

/// The reason given for a layer 7 protocol or rule, `what` being what was written.
pub(crate) fn layer7(what: &str) -> String {
    format!(
        "\"{what}\" is layer 7 and not supported: hasocks relays TCP (use \"protocol NAME {{ tcp {{ ... }} }}\")"
    )
}

/// Largest `backlog`: Linux's own limit (the kernel further clamps it to
/// net.core.somaxconn); relayd stops at 512, hasocks' default is 1024.
const MAX_BACKLOG: u32 = 65_535;
/// Largest `socket buffer` (an int for setsockopt; the kernel caps it at wmem_max/rmem_max).
const MAX_BUFFER: u32 = 2_147_483_647;

impl Parser {
    /// A top-level `http`, `https` or `dns` (layer 7 protocols): refused with the reason.
    pub(crate) fn layer7_protocol(&mut self, kw: &Token, w: &str) -> Res<()> {
        let what = if self.s.peek()?.is_word("protocol") {
            format!("{w} protocol")
        } else {
            w.to_string()
        };
        Err(self.s.err(kw, layer7(&what)))
    }

    /// The protocol block after `protocol` (or after `tcp protocol`; `kw` is the first word).
    pub(crate) fn protocol(&mut self, kw: &Token) -> Res<()> {
        let t = self.s.next()?;
        let name = match &t.kind {
            TokKind::Str(s) if !s.is_empty() => s.clone(),
            TokKind::Word(w) if !is_reserved(w) => w.clone(),
            TokKind::Word(w) => {
                return Err(self.s.err(
                    &t,
                    format!("\"{w}\" is a keyword: write the protocol name in quotes"),
                ));
            }
            _ => {
                return Err(self.s.err(
                    &t,
                    "a protocol needs a name, e.g. protocol sshtcp { tcp nodelay }",
                ));
            }
        };
        if let Some(first) = self.cfg.protocols.iter().find(|p| p.name == name) {
            return Err(self.s.err(
                &t,
                format!(
                    "protocol \"{name}\" defined twice (first on line {})",
                    first.line
                ),
            ));
        }
        let mut tcp = TcpOptions::DEFAULT;
        // relayd allows a protocol without a block (all defaults).
        if self.s.peek()?.is_punct('{') {
            self.s.next()?;
            self.protocol_body(&name, &mut tcp)?;
        }
        self.cfg.protocols.push(Protocol {
            name,
            tcp,
            line: kw.line,
        });
        Ok(())
    }

    /// The statements of a protocol block up to its `}`: `tcp OPTION` or `tcp { OPTIONS }`.
    fn protocol_body(&mut self, name: &str, tcp: &mut TcpOptions) -> Res<()> {
        loop {
            let t = self.s.next()?;
            let w = match &t.kind {
                TokKind::Newline => continue,
                TokKind::Punct('}') => return Ok(()),
                TokKind::Eof => {
                    return Err(self.s.err(
                        &t,
                        format!("protocol \"{name}\" is not closed: missing '}}'"),
                    ))
                }
                TokKind::Word(w) => w.clone(),
                _ => {
                    return Err(self
                        .s
                        .err(&t, format!("unexpected {}; expected \"tcp\"", t.describe())))
                }
            };
            if !keywords::PROTOCOL.contains(&w.as_str()) {
                let msg = match w.as_str() {
                    "http" | "https" | "dns" | "match" | "pass" | "block" | "return" => layer7(&w),
                    _ if is_unsupported(&w) => not_supported(&w),
                    _ => format!("unknown keyword \"{w}\" in protocol \"{name}\""),
                };
                return Err(self.s.err(&t, msg));
            }
            if self.s.peek()?.is_punct('{') {
                self.s.next()?;
                self.tcp_options_block(tcp)?;
            } else {
                self.tcp_option(tcp)?;
            }
            let end = self.s.peek()?;
            if !(end.ends_line() || end.is_punct('}')) {
                return Err(self.s.err(
                    &end,
                    format!("unexpected {} at the end of the statement", end.describe()),
                ));
            }
        }
    }

    /// `{ OPTION, OPTION ... }` after `tcp`: separated by commas, newlines or spaces.
    fn tcp_options_block(&mut self, tcp: &mut TcpOptions) -> Res<()> {
        loop {
            let t = self.s.peek()?;
            match &t.kind {
                TokKind::Newline | TokKind::Punct(',') => {
                    self.s.next()?;
                }
                TokKind::Punct('}') => {
                    self.s.next()?;
                    return Ok(());
                }
                TokKind::Eof => {
                    return Err(self.s.err(&t, "tcp { ... } is not closed: missing '}'"))
                }
                _ => self.tcp_option(tcp)?,
            }
        }
    }

    /// One TCP option: `backlog N`, `[no] nodelay`, `[no] sack`, `socket buffer N`,
    /// `[no] splice`, `ip ttl N`, `ip minttl N`.
    fn tcp_option(&mut self, tcp: &mut TcpOptions) -> Res<()> {
        let t = self.s.next()?;
        let w = t.word().unwrap_or_default().to_string();
        if !keywords::TCP.contains(&w.as_str()) {
            let msg = if is_unsupported(&w) {
                not_supported(&w)
            } else {
                format!(
                    "expected a tcp option (backlog, [no] nodelay, [no] sack, socket buffer, [no] splice, ip ttl, ip minttl), found {}",
                    t.describe()
                )
            };
            return Err(self.s.err(&t, msg));
        }
        match w.as_str() {
            "no" => {
                let o = self.s.next()?;
                match o.word().unwrap_or_default() {
                    "nodelay" => tcp.nodelay = Some(false),
                    "splice" => tcp.splice = false,
                    // Linux has SACK only as a system-wide sysctl, so a per-relay "no"
                    // cannot be honoured; ignoring it would silently differ from relayd.
                    "sack" => {
                        return Err(self.s.err(
                            &t,
                            "\"no sack\" is not supported: Linux has no per-socket SACK switch (it is the system-wide sysctl net.ipv4.tcp_sack)",
                        ))
                    }
                    _ => {
                        return Err(self.s.err(
                            &o,
                            format!(
                                "expected nodelay, sack or splice after \"no\", found {}",
                                o.describe()
                            ),
                        ))
                    }
                }
            }
            "nodelay" => tcp.nodelay = Some(true),
            // The kernel default (net.ipv4.tcp_sack = 1): nothing to set.
            "sack" => {}
            "splice" => tcp.splice = true,
            "backlog" => tcp.backlog = Some(self.number("backlog", 0, MAX_BACKLOG)?.0),
            "socket" => {
                self.expect_word("buffer", "socket")?;
                tcp.socket_buffer = Some(self.number("socket buffer", 1, MAX_BUFFER)?.0);
            }
            "ip" => {
                let o = self.s.next()?;
                let which = o.word().unwrap_or_default().to_string();
                if which != "ttl" && which != "minttl" {
                    return Err(self.s.err(
                        &o,
                        format!(
                            "expected ttl or minttl after \"ip\", found {}",
                            o.describe()
                        ),
                    ));
                }
                let (n, _) = self.number(&format!("ip {which}"), 1, 255)?;
                let n = u8::try_from(n).unwrap_or(u8::MAX);
                if which == "ttl" {
                    tcp.ip_ttl = Some(n);
                } else {
                    tcp.ip_minttl = Some(n);
                }
            }
            _ => return Err(self.s.err(&t, format!("unknown tcp option \"{w}\""))),
        }
        Ok(())
    }

    /// `protocol NAME` inside a relay block (after the `protocol` keyword): the options of
    /// that protocol, defined earlier in the file.
    pub(crate) fn relay_protocol(&mut self) -> Res<(String, TcpOptions)> {
        let t = self.s.next()?;
        let name = match &t.kind {
            TokKind::Str(s) | TokKind::Word(s) if !s.is_empty() => s.clone(),
            _ => {
                return Err(self.s.err(
                    &t,
                    format!("expected a protocol name, found {}", t.describe()),
                ))
            }
        };
        match self.cfg.protocols.iter().find(|p| p.name == name) {
            Some(p) => Ok((name, p.tcp)),
            None => Err(self.s.err(
                &t,
                format!("protocol \"{name}\" is not defined (define it before the relay)"),
            )),
        }
    }
}

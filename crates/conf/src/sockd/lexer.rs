//! sockd.conf lexer: words, `:`, port operators and braces, each with its 1-based position.
//!
//! Dante's syntax lets `:` be glued to a keyword (`from:0/0`) while IPv6 addresses are full of
//! colons (`fe80::1`), so a run of non-blank characters is read first and then split at its
//! first colon only when the part before it looks like a keyword and the whole is not IPv6.

use std::net::Ipv6Addr;
use std::path::Path;

use crate::ConfError;

/// Port comparison operators written as symbols (`=` `!=` `>=` `<=` `>` `<`) are the
/// [`PortOp`]s they stand for.
pub(super) use super::PortOp as Sym;

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    /// Anything else: keywords, addresses, numbers, paths.
    Word(String),
    /// `:` ending a keyword.
    Colon,
    /// A symbolic operator.
    Op(Sym),
    /// `{`
    LBrace,
    /// `}`
    RBrace,
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub tok: Tok,
    pub line: u32,
    pub col: u32,
}

/// Characters that end a word (besides whitespace).
fn ends_word(c: char, next: Option<char>) -> bool {
    matches!(c, '#' | '{' | '}' | '=' | '<' | '>') || (c == '!' && next == Some('='))
}

/// Splits `text` into tokens. Fails only on control characters that cannot be part of a word.
pub(super) fn lex(text: &str, file: &Path) -> Result<Vec<Token>, ConfError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut line, mut col) = (1u32, 1u32);
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let next = chars.get(i + 1).copied();
        let (l0, c0) = (line, col);
        let sym = |s: Sym| Token {
            tok: Tok::Op(s),
            line: l0,
            col: c0,
        };
        match c {
            '\n' => {
                line = line.saturating_add(1);
                col = 1;
                i += 1;
                continue;
            }
            c if c.is_whitespace() => {}
            '#' => {
                while chars.get(i).is_some_and(|&c| c != '\n') {
                    i += 1;
                }
                continue;
            }
            '{' => out.push(Token {
                tok: Tok::LBrace,
                line,
                col,
            }),
            '}' => out.push(Token {
                tok: Tok::RBrace,
                line,
                col,
            }),
            '=' => out.push(sym(Sym::Eq)),
            '!' if next == Some('=') => {
                out.push(sym(Sym::Neq));
                i += 1;
                col = col.saturating_add(1);
            }
            '<' | '>' => {
                let eq = next == Some('=');
                out.push(sym(match (c, eq) {
                    ('<', true) => Sym::Le,
                    ('<', false) => Sym::Lt,
                    (_, true) => Sym::Ge,
                    _ => Sym::Gt,
                }));
                if eq {
                    i += 1;
                    col = col.saturating_add(1);
                }
            }
            c if c.is_control() => {
                return Err(ConfError::new(
                    file,
                    line,
                    col,
                    format!("unexpected control character {c:?}"),
                ));
            }
            _ => {
                let start = i;
                while let Some(&w) = chars.get(i) {
                    if w.is_whitespace()
                        || w.is_control()
                        || ends_word(w, chars.get(i + 1).copied())
                    {
                        break;
                    }
                    i += 1;
                }
                let word: String = chars.get(start..i).unwrap_or_default().iter().collect();
                split_word(&word, line, col, &mut out);
                col = col.saturating_add(u32::try_from(i - start).unwrap_or(u32::MAX));
                continue;
            }
        }
        i += 1;
        col = col.saturating_add(1);
    }
    Ok(out)
}

/// Whether `s` (before any `/suffix`) is an IPv6 address.
fn is_ipv6(s: &str) -> bool {
    s.split('/')
        .next()
        .is_some_and(|a| a.parse::<Ipv6Addr>().is_ok())
}

/// Whether `s` can be a keyword (`timeout.io.tcp`, `from`, `udp.portrange`).
fn keyword_like(s: &str) -> bool {
    let mut it = s.chars();
    it.next().is_some_and(|c| c.is_ascii_alphabetic())
        && it.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Emits `word` as tokens, splitting off glued `:` after keywords.
fn split_word(word: &str, line: u32, col: u32, out: &mut Vec<Token>) {
    let Some(i) = word.find(':') else {
        out.push(Token {
            tok: Tok::Word(word.to_string()),
            line,
            col,
        });
        return;
    };
    if is_ipv6(word) {
        out.push(Token {
            tok: Tok::Word(word.to_string()),
            line,
            col,
        });
        return;
    }
    let (prefix, rest) = (&word[..i], &word[i + 1..]);
    // Keywords are lower case; an upper-case prefix is a Kerberos residual type
    // (`gssapi.keytab: FILE:/etc/danted.keytab`), part of the value.
    let residual = !prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_uppercase());
    if residual || (!prefix.is_empty() && !keyword_like(prefix)) {
        out.push(Token {
            tok: Tok::Word(word.to_string()),
            line,
            col,
        });
        return;
    }
    let colon_col = col.saturating_add(count(prefix));
    if !prefix.is_empty() {
        out.push(Token {
            tok: Tok::Word(prefix.to_string()),
            line,
            col,
        });
    }
    out.push(Token {
        tok: Tok::Colon,
        line,
        col: colon_col,
    });
    if !rest.is_empty() {
        split_word(rest, line, colon_col.saturating_add(1), out);
    }
}

/// Number of characters in `s`, as a column offset.
fn count(s: &str) -> u32 {
    u32::try_from(s.chars().count()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<(Tok, u32, u32)> {
        lex(s, Path::new("t"))
            .unwrap()
            .into_iter()
            .map(|t| (t.tok, t.line, t.col))
            .collect()
    }

    fn w(s: &str) -> Tok {
        Tok::Word(s.to_string())
    }

    #[test]
    fn glued_colon_splits_after_keyword() {
        assert_eq!(
            toks("from:0/0 to: ::1"),
            vec![
                (w("from"), 1, 1),
                (Tok::Colon, 1, 5),
                (w("0/0"), 1, 6),
                (w("to"), 1, 10),
                (Tok::Colon, 1, 12),
                (w("::1"), 1, 14)
            ]
        );
    }

    #[test]
    fn ipv6_addresses_stay_whole() {
        assert_eq!(toks("fe80::1/64"), vec![(w("fe80::1/64"), 1, 1)]);
        assert_eq!(
            toks("to:fe80::1"),
            vec![(w("to"), 1, 1), (Tok::Colon, 1, 3), (w("fe80::1"), 1, 4)]
        );
    }

    #[test]
    fn operators_end_words_and_comments_are_skipped() {
        assert_eq!(
            toks("# c\n port=1080 != >=<{}"),
            vec![
                (w("port"), 2, 2),
                (Tok::Op(Sym::Eq), 2, 6),
                (w("1080"), 2, 7),
                (Tok::Op(Sym::Neq), 2, 12),
                (Tok::Op(Sym::Ge), 2, 15),
                (Tok::Op(Sym::Lt), 2, 17),
                (Tok::LBrace, 2, 18),
                (Tok::RBrace, 2, 19)
            ]
        );
    }

    #[test]
    fn path_with_colon_is_one_word() {
        assert_eq!(toks("/var/a:b"), vec![(w("/var/a:b"), 1, 1)]);
    }

    #[test]
    fn control_character_is_an_error_with_position() {
        let e = lex("a\n \u{1}", Path::new("t")).unwrap_err();
        assert_eq!((e.line, e.col), (2, 2));
    }
}

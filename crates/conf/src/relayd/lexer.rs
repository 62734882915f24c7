//! Character-level lexer for one relayd.conf file, following relayd's parse.y: `#` comments,
//! `\` line continuations, single- or double-quoted strings, and `$name` macro expansion at the
//! start of a token (never inside quotes, never inside an expansion).

use std::collections::HashMap;

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokKind {
    /// An unquoted word (keyword, number, address, name).
    Word(String),
    /// A quoted string, quotes removed.
    Str(String),
    /// One of `{ } < > = , ( ) !`.
    Punct(char),
    /// End of a line (statements end there).
    Newline,
    /// End of the input.
    Eof,
}

/// A token with the 1-based position of its first character (for tokens produced by a macro
/// expansion: the position of the `$`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// The token.
    pub kind: TokKind,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
    /// Index of the file in the stream's file table.
    pub file: usize,
}

impl Token {
    /// The word, when the token is an unquoted word.
    pub fn word(&self) -> Option<&str> {
        match &self.kind {
            TokKind::Word(w) => Some(w),
            _ => None,
        }
    }

    /// True when the token is the unquoted word `w`.
    pub fn is_word(&self, w: &str) -> bool {
        self.word() == Some(w)
    }

    /// True when the token is the punctuation `c`.
    pub fn is_punct(&self, c: char) -> bool {
        self.kind == TokKind::Punct(c)
    }

    /// True at the end of a statement: newline or end of input.
    pub fn ends_line(&self) -> bool {
        matches!(self.kind, TokKind::Newline | TokKind::Eof)
    }

    /// The token as a user reads it in an error message.
    pub fn describe(&self) -> String {
        match &self.kind {
            TokKind::Word(w) => format!("\"{w}\""),
            TokKind::Str(s) => format!("the string \"{s}\""),
            TokKind::Punct(c) => format!("'{c}'"),
            TokKind::Newline => "the end of the line".to_string(),
            TokKind::Eof => "the end of the file".to_string(),
        }
    }
}

/// A lexing error at a position of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
    /// What is wrong.
    pub message: String,
}

/// One character with where it came from.
#[derive(Debug, Clone, Copy)]
struct Ch {
    c: char,
    line: u32,
    col: u32,
    /// Produced by a macro expansion: a `$` in it is not expanded again, as in relayd.
    expanded: bool,
}

/// The most characters macro expansions may produce in one parse (all files together): a
/// long value used many times must not turn a small file into an endless token stream.
pub const MAX_EXPANDED_CHARS: usize = 4 * 1024 * 1024;

/// Characters that end an unquoted word and are tokens of their own.
fn is_punct(c: char) -> bool {
    matches!(c, '{' | '}' | '<' | '>' | '=' | ',' | '(' | ')' | '!')
}

/// Characters allowed in an unquoted word. Wider than relayd's (it also takes `/`), so that
/// unquoted paths work; everything relayd accepts is accepted the same way.
fn in_word(c: char) -> bool {
    !c.is_whitespace() && !c.is_control() && !is_punct(c) && !matches!(c, '#' | '"' | '\'')
}

/// The lexer of one file.
#[derive(Debug)]
pub(crate) struct Lexer {
    src: Vec<char>,
    idx: usize,
    line: u32,
    col: u32,
    /// Characters to read before the source (LIFO): put back, or from a macro expansion.
    back: Vec<Ch>,
    file: usize,
}

impl Lexer {
    /// A lexer over `text`, whose tokens name file `file` of the stream.
    pub fn new(text: &str, file: usize) -> Self {
        Self {
            src: text.chars().collect(),
            idx: 0,
            line: 1,
            col: 1,
            back: Vec::new(),
            file,
        }
    }

    /// The file index this lexer reads.
    pub fn file(&self) -> usize {
        self.file
    }

    /// Next source character, counting lines.
    fn src_char(&mut self) -> Option<Ch> {
        let c = *self.src.get(self.idx)?;
        self.idx += 1;
        let ch = Ch {
            c,
            line: self.line,
            col: self.col,
            expanded: false,
        };
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(ch)
    }

    /// Next character. Outside quotes (`raw == false`) a source `\` joins the next line, or
    /// stands for the character after it (relayd's lgetc).
    fn getc(&mut self, raw: bool) -> Option<Ch> {
        if let Some(ch) = self.back.pop() {
            return Some(ch);
        }
        loop {
            let ch = self.src_char()?;
            if raw || ch.c != '\\' {
                return Some(ch);
            }
            match self.src_char() {
                Some(n) if n.c == '\n' => continue,
                Some(n) if n.c == '\r' && self.src.get(self.idx) == Some(&'\n') => {
                    self.src_char();
                    continue;
                }
                Some(n) => {
                    return Some(Ch {
                        line: ch.line,
                        col: ch.col,
                        ..n
                    })
                }
                None => return Some(ch),
            }
        }
    }

    fn ungetc(&mut self, ch: Ch) {
        self.back.push(ch);
    }

    fn tok(&self, kind: TokKind, at: Ch) -> Token {
        Token {
            kind,
            line: at.line,
            col: at.col,
            file: self.file,
        }
    }

    /// The next token; `$name` is replaced by the macro's value from `macros`, each expansion
    /// taking its length from `budget` (characters still allowed in this parse).
    pub fn next_token(
        &mut self,
        macros: &HashMap<String, String>,
        budget: &mut usize,
    ) -> Result<Token, LexError> {
        loop {
            let Some(first) = self.skip_blanks() else {
                return Ok(Token {
                    kind: TokKind::Eof,
                    line: self.line,
                    col: self.col,
                    file: self.file,
                });
            };
            match first.c {
                '#' => self.skip_comment(),
                '\n' => return Ok(self.tok(TokKind::Newline, first)),
                '$' if !first.expanded => self.expand(first, macros, budget)?,
                '"' | '\'' => return self.quoted(first),
                c if is_punct(c) => return Ok(self.tok(TokKind::Punct(c), first)),
                c if in_word(c) => return Ok(self.word(first)),
                c => {
                    return Err(LexError {
                        line: first.line,
                        col: first.col,
                        message: format!("unexpected character U+{:04X}", c as u32),
                    })
                }
            }
        }
    }

    /// Skips spaces, tabs and carriage returns; returns the first other character.
    fn skip_blanks(&mut self) -> Option<Ch> {
        loop {
            let ch = self.getc(false)?;
            if !(ch.c == ' ' || ch.c == '\t' || ch.c == '\r') {
                return Some(ch);
            }
        }
    }

    /// Skips a comment up to (not including) the end of the line.
    fn skip_comment(&mut self) {
        while let Some(ch) = self.getc(false) {
            if ch.c == '\n' {
                self.ungetc(ch);
                return;
            }
        }
    }

    /// Replaces `$name` by the macro's characters, marked as expanded and placed at the `$`.
    fn expand(
        &mut self,
        dollar: Ch,
        macros: &HashMap<String, String>,
        budget: &mut usize,
    ) -> Result<(), LexError> {
        let mut name = String::new();
        while let Some(ch) = self.getc(false) {
            if ch.c.is_ascii_alphanumeric() || ch.c == '_' {
                name.push(ch.c);
            } else {
                self.ungetc(ch);
                break;
            }
        }
        let err = |message: String| LexError {
            line: dollar.line,
            col: dollar.col,
            message,
        };
        if name.is_empty() {
            return Err(err("\"$\" must be followed by a macro name".to_string()));
        }
        let Some(value) = macros.get(&name) else {
            return Err(err(format!("macro \"{name}\" is not defined")));
        };
        let Some(left) = budget.checked_sub(value.chars().count()) else {
            return Err(err(format!(
                "expanding macro \"{name}\" here exceeds {MAX_EXPANDED_CHARS} characters of macro expansion in total"
            )));
        };
        *budget = left;
        for c in value.chars().rev() {
            self.ungetc(Ch {
                c,
                line: dollar.line,
                col: dollar.col,
                expanded: true,
            });
        }
        Ok(())
    }

    /// A quoted string; `\` before the quote character or a newline escapes it, a newline
    /// inside the quotes is dropped (relayd does both).
    fn quoted(&mut self, open: Ch) -> Result<Token, LexError> {
        let mut s = String::new();
        loop {
            let Some(ch) = self.getc(true) else {
                return Err(LexError {
                    line: open.line,
                    col: open.col,
                    message: "unterminated quoted string".to_string(),
                });
            };
            match ch.c {
                c if c == open.c => return Ok(self.tok(TokKind::Str(s), open)),
                '\n' => {}
                '\\' => match self.getc(true) {
                    Some(n) if n.c == open.c => s.push(n.c),
                    Some(n) if n.c == '\n' => {}
                    Some(n) => {
                        s.push('\\');
                        self.ungetc(n);
                    }
                    None => s.push('\\'),
                },
                c => s.push(c),
            }
        }
    }

    /// An unquoted word starting with `first`.
    fn word(&mut self, first: Ch) -> Token {
        let mut w = String::new();
        w.push(first.c);
        while let Some(ch) = self.getc(false) {
            if in_word(ch.c) {
                w.push(ch.c);
            } else {
                self.ungetc(ch);
                break;
            }
        }
        self.tok(TokKind::Word(w), first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(text: &str, macros: &[(&str, &str)]) -> Result<Vec<(TokKind, u32, u32)>, LexError> {
        let m: HashMap<String, String> = macros
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut lx = Lexer::new(text, 0);
        let mut out = Vec::new();
        let mut budget = MAX_EXPANDED_CHARS;
        loop {
            let t = lx.next_token(&m, &mut budget)?;
            if t.kind == TokKind::Eof {
                return Ok(out);
            }
            out.push((t.kind, t.line, t.col));
        }
    }

    fn w(s: &str) -> TokKind {
        TokKind::Word(s.to_string())
    }

    #[test]
    fn words_punctuation_and_positions() {
        let toks = lex("table <t> { 10.0.0.1, ::1 }\n", &[]).unwrap();
        assert_eq!(
            toks,
            vec![
                (w("table"), 1, 1),
                (TokKind::Punct('<'), 1, 7),
                (w("t"), 1, 8),
                (TokKind::Punct('>'), 1, 9),
                (TokKind::Punct('{'), 1, 11),
                (w("10.0.0.1"), 1, 13),
                (TokKind::Punct(','), 1, 21),
                (w("::1"), 1, 23),
                (TokKind::Punct('}'), 1, 27),
                (TokKind::Newline, 1, 28),
            ]
        );
    }

    #[test]
    fn comments_are_skipped_but_the_newline_stays() {
        let toks = lex("a # b c\nd", &[]).unwrap();
        assert_eq!(
            toks,
            vec![(w("a"), 1, 1), (TokKind::Newline, 1, 8), (w("d"), 2, 1)]
        );
    }

    #[test]
    fn backslash_newline_joins_lines() {
        let toks = lex("a \\\n  b\nc", &[]).unwrap();
        assert_eq!(
            toks,
            vec![
                (w("a"), 1, 1),
                (w("b"), 2, 3),
                (TokKind::Newline, 2, 4),
                (w("c"), 3, 1)
            ]
        );
    }

    #[test]
    fn quoted_strings_keep_dollars_and_escape_quotes() {
        let toks = lex(r#"x "a $b \"q\" c" 'it''s'"#, &[]).unwrap();
        assert_eq!(toks[1].0, TokKind::Str(r#"a $b "q" c"#.to_string()));
        assert_eq!(toks[2].0, TokKind::Str("it".to_string()));
        assert_eq!(toks[3].0, TokKind::Str("s".to_string()));
    }

    #[test]
    fn macro_expands_at_the_dollar_position_and_can_split_into_tokens() {
        let toks = lex("listen on $a:80 x", &[("a", "10.0.0.1 port")]).unwrap();
        assert_eq!(toks[2], (w("10.0.0.1"), 1, 11));
        assert_eq!(toks[3], (w("port:80"), 1, 11));
        assert_eq!(toks[4], (w("x"), 1, 17));
    }

    #[test]
    fn expanded_dollars_are_not_expanded_again() {
        let toks = lex("$a", &[("a", "$a")]).unwrap();
        assert_eq!(toks, vec![(w("$a"), 1, 1)]);
    }

    #[test]
    fn undefined_macro_is_an_error_at_the_dollar() {
        let e = lex("x  $nope y", &[]).unwrap_err();
        assert_eq!((e.line, e.col), (1, 4));
        assert!(e.message.contains("\"nope\""), "{}", e.message);
    }

    #[test]
    fn unterminated_string_points_at_the_opening_quote() {
        let e = lex("a\n  \"abc", &[]).unwrap_err();
        assert_eq!((e.line, e.col), (2, 3));
    }

    #[test]
    fn control_characters_are_errors() {
        let e = lex("a \u{1} b", &[]).unwrap_err();
        assert_eq!((e.line, e.col), (1, 3));
    }
}

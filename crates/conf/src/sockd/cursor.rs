//! A cursor over the token list with the small helpers every grammar production uses.

use std::path::Path;

use super::lexer::{Tok, Token};
use crate::{ConfError, ConfWarning};

/// Parsing state: tokens, position, collected warnings.
pub(super) struct Cursor<'a> {
    toks: Vec<Token>,
    pos: usize,
    pub file: &'a Path,
    pub warnings: Vec<ConfWarning>,
    /// Every method word met, where it was written.
    pub method_uses: Vec<super::types::MethodUse>,
}

/// A word and its position.
#[derive(Debug, Clone)]
pub(super) struct Word {
    pub text: String,
    pub line: u32,
    pub col: u32,
}

impl Token {
    /// The token as a word with its position, when it is one.
    pub fn as_word(&self) -> Option<Word> {
        match &self.tok {
            Tok::Word(text) => Some(Word {
                text: text.clone(),
                line: self.line,
                col: self.col,
            }),
            _ => None,
        }
    }
}

impl<'a> Cursor<'a> {
    /// Starts at the first token.
    pub fn new(toks: Vec<Token>, file: &'a Path) -> Self {
        Self {
            toks,
            pos: 0,
            file,
            warnings: Vec::new(),
            method_uses: Vec::new(),
        }
    }

    /// The token `k` places ahead, if any.
    pub fn peek_at(&self, k: usize) -> Option<&Token> {
        self.toks.get(self.pos.saturating_add(k))
    }

    /// The current token, if any.
    pub fn peek(&self) -> Option<&Token> {
        self.peek_at(0)
    }

    /// The current token's text when it is a word.
    pub fn peek_word(&self) -> Option<&str> {
        match self.peek() {
            Some(Token {
                tok: Tok::Word(w), ..
            }) => Some(w),
            _ => None,
        }
    }

    /// Moves past the current token and returns it.
    pub fn bump(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    /// An error at a position.
    pub fn err_at(&self, line: u32, col: u32, msg: impl Into<String>) -> ConfError {
        ConfError::new(self.file, line, col, msg)
    }

    /// An error at a word.
    pub fn err_word(&self, w: &Word, msg: impl Into<String>) -> ConfError {
        self.err_at(w.line, w.col, msg)
    }

    /// An error at the current token, or at the end of the text.
    pub fn err_here(&self, msg: impl Into<String>) -> ConfError {
        match self.peek() {
            Some(t) => self.err_at(t.line, t.col, msg),
            None => {
                let (l, c) = self.end_pos();
                self.err_at(l, c, msg)
            }
        }
    }

    /// Position just after the last token (for "unexpected end of file").
    fn end_pos(&self) -> (u32, u32) {
        match self.toks.last() {
            Some(t) => {
                let len = match &t.tok {
                    Tok::Word(w) => u32::try_from(w.chars().count()).unwrap_or(0),
                    Tok::Op(
                        super::lexer::Sym::Eq | super::lexer::Sym::Gt | super::lexer::Sym::Lt,
                    )
                    | Tok::Colon
                    | Tok::LBrace
                    | Tok::RBrace => 1,
                    Tok::Op(_) => 2,
                };
                (t.line, t.col.saturating_add(len))
            }
            None => (1, 1),
        }
    }

    /// Records a warning at a word.
    pub fn warn(&mut self, w: &Word, msg: impl Into<String>) {
        self.warnings.push(ConfWarning {
            file: self.file.to_path_buf(),
            line: w.line,
            col: w.col,
            message: msg.into(),
        });
    }

    /// Takes the next token, which must be a word; `what` names it in the error.
    pub fn word(&mut self, what: &str) -> Result<Word, ConfError> {
        match self.peek() {
            Some(Token {
                tok: Tok::Word(w),
                line,
                col,
            }) => {
                let w = Word {
                    text: w.clone(),
                    line: *line,
                    col: *col,
                };
                self.pos += 1;
                Ok(w)
            }
            Some(t) => Err(self.err_at(
                t.line,
                t.col,
                format!("expected {what}, found {}", show(&t.tok)),
            )),
            None => Err(self.err_here(format!("expected {what}, found end of file"))),
        }
    }

    /// Takes the `:` after keyword `kw`.
    pub fn colon(&mut self, kw: &Word) -> Result<(), ConfError> {
        match self.peek() {
            Some(Token {
                tok: Tok::Colon, ..
            }) => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(self.err_here(format!("expected \":\" after \"{}\"", kw.text))),
        }
    }

    /// Whether the word at offset `k` starts a new item rather than being a value: it is
    /// followed by `:` or `{`, or it is a rule kind followed by `pass`/`block`.
    pub fn starts_item(&self, k: usize) -> bool {
        let Some(Token {
            tok: Tok::Word(w), ..
        }) = self.peek_at(k)
        else {
            return true;
        };
        match self.peek_at(k + 1).map(|t| &t.tok) {
            Some(Tok::Colon | Tok::LBrace) => true,
            Some(Tok::Word(n)) => {
                matches!(n.as_str(), "pass" | "block")
                    && matches!(w.as_str(), "client" | "socks" | "hostid" | "route")
            }
            _ => false,
        }
    }

    /// The next item keyword of a `{ }` block opened at `open` (the keyword is taken; its
    /// `:` is not), or None at the block's `}` (taken). `what` names the block in messages
    /// ("rule", "route"). A block that runs into the next one, or to the end of the file,
    /// is an error at the place to fix.
    pub fn block_item(&mut self, open: (u32, u32), what: &str) -> Result<Option<Word>, ConfError> {
        let Some(t) = self.peek().cloned() else {
            return Err(self.err_at(
                open.0,
                open.1,
                format!("unterminated \"{{\": the {what} opened here has no \"}}\""),
            ));
        };
        let Some(kw) = t.as_word() else {
            if t.tok == Tok::RBrace {
                self.bump();
                return Ok(None);
            }
            return Err(self.err_here(format!("unexpected {} in {what}", show(&t.tok))));
        };
        let next = self.peek_at(1).map(|t| &t.tok);
        let new_block = match kw.text.as_str() {
            "client" | "socks" => matches!(next, Some(Tok::Word(n)) if n == "pass" || n == "block"),
            "route" => next == Some(&Tok::LBrace),
            _ => false,
        };
        if new_block {
            return Err(self.err_word(
                &kw,
                format!(
                    "missing \"}}\" before \"{}\" ({what} opened at line {})",
                    kw.text, open.0
                ),
            ));
        }
        self.bump();
        Ok(Some(kw))
    }

    /// Takes the value words of a list keyword (at least one), up to the next item.
    pub fn values(&mut self, kw: &Word) -> Result<Vec<Word>, ConfError> {
        let mut out = Vec::new();
        while !self.starts_item(0) {
            out.push(self.word("a value")?);
        }
        if out.is_empty() {
            return Err(self.err_here(format!("expected a value after \"{}:\"", kw.text)));
        }
        Ok(out)
    }

    /// Takes the words after `kw:` up to the end of its line (Dante's `user:`/`group:`
    /// lists): anything else on that line, such as `log:` or `}`, is an error.
    pub fn line_words(&mut self, kw: &Word) -> Result<Vec<Word>, ConfError> {
        let mut out = Vec::new();
        while let Some(t) = self.peek().filter(|t| t.line == kw.line).cloned() {
            let Tok::Word(text) = t.tok else {
                return Err(self.err_at(
                    t.line,
                    t.col,
                    format!(
                        "\"{}:\" takes names up to the end of the line: {} must go on a line \
                         of its own",
                        kw.text,
                        show(&t.tok)
                    ),
                ));
            };
            if matches!(self.peek_at(1), Some(n) if n.tok == Tok::Colon && n.line == kw.line) {
                return Err(self.err_at(
                    t.line,
                    t.col,
                    format!(
                        "\"{}:\" takes names up to the end of the line: \"{text}:\" must go on \
                         a line of its own",
                        kw.text
                    ),
                ));
            }
            self.pos += 1;
            out.push(Word {
                text,
                line: t.line,
                col: t.col,
            });
        }
        if out.is_empty() {
            return Err(self.err_here(format!("expected a name after \"{}:\"", kw.text)));
        }
        Ok(out)
    }

    /// Takes exactly one value word after `kw:`.
    pub fn one_value(&mut self, kw: &Word) -> Result<Word, ConfError> {
        if self.starts_item(0) {
            return Err(self.err_here(format!("expected a value after \"{}:\"", kw.text)));
        }
        self.word("a value")
    }

    /// Takes one value word and parses it with `f`, placing `f`'s error at the word.
    pub fn parsed<T>(
        &mut self,
        kw: &Word,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfError> {
        let w = self.one_value(kw)?;
        f(&w.text).map_err(|m| self.err_word(&w, m))
    }
}

/// A token as shown in messages.
pub(super) fn show(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("\"{w}\""),
        Tok::Colon => "\":\"".into(),
        Tok::LBrace => "\"{\"".into(),
        Tok::RBrace => "\"}\"".into(),
        Tok::Op(s) => format!("\"{}\"", sym_text(*s)),
    }
}

/// The written form of an operator.
pub(super) fn sym_text(s: super::lexer::Sym) -> &'static str {
    use super::lexer::Sym;
    match s {
        Sym::Eq => "=",
        Sym::Neq => "!=",
        Sym::Ge => ">=",
        Sym::Le => "<=",
        Sym::Gt => ">",
        Sym::Lt => "<",
    }
}

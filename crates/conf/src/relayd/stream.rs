//! The token stream the parser reads: a stack of file lexers (for `include`), the macro table
//! (with `-D` overrides that the file cannot redefine) and a small lookahead.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use super::lexer::{Lexer, TokKind, Token, MAX_EXPANDED_CHARS};
use crate::ConfError;

/// How deep `include` may nest (stops include loops).
const MAX_INCLUDE_DEPTH: usize = 16;

/// How many `include`s one parse may follow in total: the depth limit alone still lets a
/// fan-out (each file including several others) read millions of files.
pub const MAX_INCLUDES: usize = 256;

/// Tokens from the main file and the files it includes.
#[derive(Debug)]
pub(crate) struct Stream {
    files: Vec<PathBuf>,
    stack: Vec<Lexer>,
    look: VecDeque<Token>,
    macros: HashMap<String, String>,
    /// Macros given with `-D`: definitions in the file do not replace them.
    persistent: HashSet<String>,
    /// `include`s followed so far (for [`MAX_INCLUDES`]).
    includes: usize,
    /// Characters macro expansions may still produce (from [`MAX_EXPANDED_CHARS`]).
    expansion_left: usize,
}

impl Stream {
    /// A stream over the main file's text.
    pub fn new(text: &str, file: &Path) -> Self {
        Self {
            files: vec![file.to_path_buf()],
            stack: vec![Lexer::new(text, 0)],
            look: VecDeque::new(),
            macros: HashMap::new(),
            persistent: HashSet::new(),
            includes: 0,
            expansion_left: MAX_EXPANDED_CHARS,
        }
    }

    /// The path of file index `file`.
    pub fn path(&self, file: usize) -> PathBuf {
        self.files.get(file).cloned().unwrap_or_default()
    }

    /// An error at `tok`.
    pub fn err(&self, tok: &Token, message: impl Into<String>) -> ConfError {
        ConfError::new(self.path(tok.file), tok.line, tok.col, message)
    }

    /// Defines a `-D` macro, which wins over the file's definitions.
    pub fn define_override(&mut self, name: &str, value: &str) {
        self.macros.insert(name.to_string(), value.to_string());
        self.persistent.insert(name.to_string());
    }

    /// Defines a macro from the file, unless a `-D` override holds the name.
    pub fn define(&mut self, name: &str, value: &str) {
        if !self.persistent.contains(name) {
            self.macros.insert(name.to_string(), value.to_string());
        }
    }

    fn lex_one(&mut self) -> Result<Token, ConfError> {
        let depth = self.stack.len();
        let Some(lx) = self.stack.last_mut() else {
            return Ok(Token {
                kind: TokKind::Eof,
                line: 0,
                col: 0,
                file: 0,
            });
        };
        let file = lx.file();
        let tok = lx
            .next_token(&self.macros, &mut self.expansion_left)
            .map_err(|e| ConfError::new(self.path(file), e.line, e.col, e.message))?;
        if tok.kind == TokKind::Eof && depth > 1 {
            // The end of an included file ends its last statement.
            self.stack.pop();
            return Ok(Token {
                kind: TokKind::Newline,
                ..tok
            });
        }
        Ok(tok)
    }

    fn fill(&mut self, n: usize) -> Result<(), ConfError> {
        while self.look.len() < n {
            let t = self.lex_one()?;
            self.look.push_back(t);
        }
        Ok(())
    }

    /// The next token, not consumed.
    pub fn peek(&mut self) -> Result<Token, ConfError> {
        self.fill(1)?;
        Ok(self.look.front().cloned().unwrap_or(Token {
            kind: TokKind::Eof,
            line: 0,
            col: 0,
            file: 0,
        }))
    }

    /// The token after the next one, not consumed.
    pub fn peek2(&mut self) -> Result<Token, ConfError> {
        self.fill(2)?;
        Ok(self.look.get(1).cloned().unwrap_or(Token {
            kind: TokKind::Eof,
            line: 0,
            col: 0,
            file: 0,
        }))
    }

    /// The next token, consumed.
    pub fn next(&mut self) -> Result<Token, ConfError> {
        self.fill(1)?;
        Ok(self.look.pop_front().unwrap_or(Token {
            kind: TokKind::Eof,
            line: 0,
            col: 0,
            file: 0,
        }))
    }

    /// Continues reading from `path` (the `include` statement at `at` is complete), then
    /// returns to the including file.
    pub fn include(&mut self, path: &str, at: &Token) -> Result<(), ConfError> {
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(self.err(
                at,
                format!("include \"{path}\" nested too deeply (include loop?)"),
            ));
        }
        if self.includes >= MAX_INCLUDES {
            return Err(self.err(
                at,
                format!("include \"{path}\": more than {MAX_INCLUDES} includes in total"),
            ));
        }
        self.includes += 1;
        let mut full = PathBuf::from(path);
        if full.is_relative() {
            if let Some(dir) = self.path(at.file).parent() {
                full = dir.join(path);
            }
        }
        let text = crate::read::read_config(&full).map_err(|e| {
            self.err(
                at,
                format!("cannot read included file \"{}\": {e}", full.display()),
            )
        })?;
        // Only an end-of-file token of the including file can still be looked ahead.
        self.look.retain(|t| t.kind != TokKind::Eof);
        self.files.push(full);
        self.stack.push(Lexer::new(&text, self.files.len() - 1));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &mut Stream, n: usize) -> Vec<TokKind> {
        (0..n).map(|_| s.next().unwrap().kind).collect()
    }

    #[test]
    fn overrides_survive_definitions_from_the_file() {
        let mut s = Stream::new("$a $b", Path::new("f"));
        s.define_override("a", "cmd");
        s.define("a", "file");
        s.define("b", "file");
        let w = |x: &str| TokKind::Word(x.to_string());
        assert_eq!(kinds(&mut s, 3), vec![w("cmd"), w("file"), TokKind::Eof]);
    }

    #[test]
    fn peeking_does_not_consume() {
        let mut s = Stream::new("a b", Path::new("f"));
        assert!(s.peek2().unwrap().is_word("b"));
        assert!(s.peek().unwrap().is_word("a"));
        assert!(s.next().unwrap().is_word("a"));
        assert!(s.next().unwrap().is_word("b"));
        assert_eq!(s.next().unwrap().kind, TokKind::Eof);
        assert_eq!(s.next().unwrap().kind, TokKind::Eof);
    }

    #[test]
    fn errors_name_the_file_of_the_token() {
        let mut s = Stream::new("\n  x", Path::new("/etc/relayd.conf"));
        s.next().unwrap();
        let t = s.next().unwrap();
        let e = s.err(&t, "bad");
        assert_eq!(e.to_string(), "/etc/relayd.conf:2:3: bad");
    }
}

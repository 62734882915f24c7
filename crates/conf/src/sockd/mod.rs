//! Dante 1.4 sockd.conf: lexer, parser and typed config.
//!
//! [`parse`] reads the subset of Dante's grammar hasocks implements (plus the `hasocks.*`
//! settings); a Dante keyword outside that subset is an error naming it, never ignored,
//! except harmless ones that only warn. `Display` on [`SockdConfig`] prints canonical text.

mod addr;
mod cursor;
mod display;
mod gssapi;
pub mod keywords;
mod lexer;
mod parser;
mod route;
mod route_types;
mod rule;
mod types;

use std::path::Path;

pub use route_types::*;
pub use types::*;

use crate::ConfError;

/// Parses sockd.conf `text`; `file` is only used in messages.
pub fn parse(text: &str, file: &Path) -> Result<SockdConfig, ConfError> {
    let toks = lexer::lex(text, file)?;
    let mut cursor = cursor::Cursor::new(toks, file);
    parser::parse_config(&mut cursor)
}

/// Reads and parses the sockd.conf at `path`; a read failure is an error at `0:0`.
pub fn load(path: &Path) -> Result<SockdConfig, ConfError> {
    let text = crate::read::read_config(path)
        .map_err(|e| ConfError::new(path, 0, 0, format!("cannot read config: {e}")))?;
    parse(&text, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_zero_is_refused() {
        let e = load(Path::new("/dev/zero")).unwrap_err();
        assert_eq!((e.file.as_path(), e.line), (Path::new("/dev/zero"), 0));
        assert!(e.message.contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_directory_is_refused() {
        let e = load(Path::new("/")).unwrap_err();
        assert!(e.message.contains("a directory"), "{e}");
    }
}

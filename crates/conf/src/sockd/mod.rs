//! Dante 1.4 sockd.conf: lexer, parser and typed config.

mod types;

pub use types::*;

//! OpenBSD relayd.conf (relay subset plus hasocks additions): lexer, parser and typed config.

mod types;

pub use types::*;

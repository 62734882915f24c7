//! Parsers for the two config languages hasocks reads: Dante's sockd.conf and OpenBSD's
//! relayd.conf, into typed configs. Errors carry `file:line:col`. No I/O besides reading files.
#![forbid(unsafe_code)]

pub mod error;
pub mod read;
pub mod relayd;
pub mod services;
pub mod sockd;

pub use error::{ConfError, ConfWarning};

//! Parsers for the two config languages hasocks reads: Dante's sockd.conf and OpenBSD's
//! relayd.conf, into typed configs. Errors carry `file:line:col`. No I/O besides reading files.
//! Also the `HOST:PORT` of the command line ([`HostPort`]), so that service names have one
//! policy ([`services`]) wherever a port is written.
#![forbid(unsafe_code)]

pub mod error;
pub mod hostport;
pub mod read;
pub mod relayd;
pub mod services;
pub mod sockd;

pub use error::{ConfError, ConfWarning};
pub use hostport::{Host, HostPort, HostPortError};

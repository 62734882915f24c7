//! The control protocol of both daemons: what `hasocks ctl` sends to a relay's or a server's
//! control socket and what comes back, the line codec, an async client, relayctl's command
//! words and relayctl's output formats. No daemon code: the daemons and the CLI depend on
//! this, not on each other.
//!
//! Data flow: `hasocks ctl WORDS` -> [`words::parse`] -> [`Command`] -> [`client::request`]
//! (one JSON line) -> the daemon's control listener ([`decode_request`]) -> its reply
//! ([`encode_reply`]) -> [`Body`] -> [`render`] (relayctl's text) or JSON.
#![forbid(unsafe_code)]

pub mod client;
mod proto;
pub mod relay;
pub mod render;
pub mod server;
pub mod words;

pub use client::{monitor, request, ClientError};
pub use proto::*;

#![forbid(unsafe_code)]
//! Sans-io codec for SOCKS 4, 4a and 5 (RFC 1928), username/password
//! authentication (RFC 1929), GSS-API framing (RFC 1961) and the SOCKS5 UDP datagram header.
//!
//! Data flow: bytes read by a server or client -> `decode` -> a typed message -> the caller's
//! decision -> `encode` -> bytes to write. No sockets, no async, no allocation beyond the
//! messages themselves.
//!
//! Every message type has a `decode(buf) -> Result<Option<(M, consumed)>, WireError>`
//! and an `encode(&self, out)`, so a server and a client share one codec.
//! Decoders never panic, return `Ok(None)` for any strict prefix of a valid
//! message, and consume exactly one message (data may follow it).

mod addr;
mod error;
pub mod gssapi;
mod reader;
pub mod udp;
pub mod v4;
pub mod v5;

pub use addr::TargetAddr;
pub use error::WireError;

/// The first byte of `buf` (the protocol version of the first message), if any.
///
/// Lets a server dispatch between SOCKS4 (`4`) and SOCKS5 (`5`) on one port.
pub fn peek_version(buf: &[u8]) -> Option<u8> {
    buf.first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_version_reads_first_byte_only() {
        assert_eq!(peek_version(&[]), None);
        assert_eq!(peek_version(&[5]), Some(5));
        assert_eq!(peek_version(&[4, 1, 0]), Some(4));
    }
}

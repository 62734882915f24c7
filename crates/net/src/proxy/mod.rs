//! HAProxy PROXY protocol v1 (text) and v2 (binary): encoding for the relay, and reading exactly
//! one header off a socket for the server. Parsing is sans-io ([`parse_header`], over the
//! `ppp` crate); [`read_header`] is a thin loop around it.

mod parse;

pub use parse::{parse_header, Parsed};

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The 12-byte v2 signature.
const V2_SIG: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 header the spec allows, CRLF included.
const V1_MAX: usize = 107;
/// v2 fixed part: signature, version/command, family/protocol, length.
const V2_FIXED: usize = 16;

/// The client and original destination a PROXY header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The original client address.
    pub src: SocketAddr,
    /// The address the client connected to (the relay's listener).
    pub dst: SocketAddr,
}

/// Why a PROXY header could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The socket failed or closed before a full header arrived.
    #[error("reading PROXY header: {0}")]
    Io(#[from] io::Error),
    /// No full header within the deadline.
    #[error("timed out waiting for PROXY header")]
    Timeout,
    /// The bytes are not a valid PROXY header.
    #[error("malformed PROXY header: {0}")]
    Malformed(String),
}

/// Both addresses in one family: mixed pairs are sent as IPv6 with v4-mapped addresses.
fn same_family(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    fn to_v6(a: SocketAddr) -> SocketAddr {
        match a.ip() {
            IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
            IpAddr::V6(_) => a,
        }
    }
    if src.is_ipv4() == dst.is_ipv4() {
        (src, dst)
    } else {
        (to_v6(src), to_v6(dst))
    }
}

/// A v2 PROXY (command PROXY, TCP) header for `src` -> `dst`.
pub fn encode_v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (src, dst) = same_family(src, dst);
    let mut out = Vec::with_capacity(V2_FIXED + 36);
    out.extend_from_slice(&V2_SIG);
    out.push(0x21); // version 2, command PROXY
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.push(0x11); // AF_INET, STREAM
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            let s = match s {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            let d = match d {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            out.push(0x21); // AF_INET6, STREAM
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
    }
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out
}

/// A v2 header with command LOCAL, family UNSPEC and no payload (16 bytes): "no client
/// address", as a health check or a relay's own connection sends it.
pub fn encode_v2_local() -> Vec<u8> {
    let mut out = Vec::with_capacity(V2_FIXED);
    out.extend_from_slice(&V2_SIG);
    out.push(0x20); // version 2, command LOCAL
    out.push(0x00); // AF_UNSPEC, UNSPEC
    out.extend_from_slice(&0u16.to_be_bytes());
    out
}

/// A v1 (text) PROXY header for `src` -> `dst`.
pub fn encode_v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (src, dst) = same_family(src, dst);
    let proto = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {proto} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

/// Reads exactly one PROXY header (v1 or v2, detected by the first bytes) from the stream and
/// not one byte more (the SOCKS bytes that follow must stay in the socket). Ok(None) for LOCAL /
/// UNKNOWN.
pub async fn read_header(
    stream: &mut TcpStream,
    timeout: Duration,
) -> Result<Option<ProxyHeader>, ProxyError> {
    match tokio::time::timeout(timeout, read_any(stream)).await {
        Ok(res) => res,
        Err(_) => Err(ProxyError::Timeout),
    }
}

/// How many bytes one peek looks at: a v1 header or a v2 header with addresses fits at once;
/// a longer v2 header (TLVs) takes several rounds.
const PEEK: usize = 512;

/// Peeks at what has arrived, and consumes only the bytes [`parse_header`] counts as header:
/// all of them while it needs more, up to the header's end once it is complete.
async fn read_any(stream: &mut TcpStream) -> Result<Option<ProxyHeader>, ProxyError> {
    let mut have: Vec<u8> = Vec::with_capacity(V1_MAX);
    let mut scratch = [0u8; PEEK];
    loop {
        let n = stream.peek(&mut scratch).await?;
        let Some(seen) = scratch.get(..n).filter(|s| !s.is_empty()) else {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        };
        let before = have.len();
        have.extend_from_slice(seen);
        match parse_header(&have)? {
            Parsed::NeedMore(_) => consume(stream, &mut scratch, n).await?,
            Parsed::Header { len, header } => {
                // A strict prefix needs more, so the header ends within the new bytes.
                consume(stream, &mut scratch, len.saturating_sub(before)).await?;
                return Ok(header);
            }
        }
    }
}

/// Reads (and drops) `n` bytes already seen by a peek.
async fn consume(stream: &mut TcpStream, scratch: &mut [u8], n: usize) -> io::Result<()> {
    match scratch.get_mut(..n) {
        Some(part) => stream.read_exact(part).await.map(|_| ()),
        None => Err(io::Error::from(io::ErrorKind::InvalidInput)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v2_ipv4_header_has_the_documented_layout() {
        let h = encode_v2(sa("192.0.2.1:5555"), sa("198.51.100.7:1080"));
        assert_eq!(h.len(), 28);
        assert_eq!(&h[..12], &V2_SIG);
        assert_eq!(&h[12..16], &[0x21, 0x11, 0, 12]);
        assert_eq!(&h[16..20], &[192, 0, 2, 1]);
        assert_eq!(&h[20..24], &[198, 51, 100, 7]);
        assert_eq!(&h[24..28], &[0x15, 0xb3, 0x04, 0x38]);
    }

    #[test]
    fn v2_ipv6_header_is_52_bytes_and_parses() {
        let h = encode_v2(sa("[2001:db8::1]:40000"), sa("[2001:db8::2]:1080"));
        assert_eq!(h.len(), 52);
        let parsed = ppp::v2::Header::try_from(h.as_slice()).unwrap();
        assert_eq!(parsed.address_family(), ppp::v2::AddressFamily::IPv6);
    }

    #[test]
    fn v2_local_header_is_16_bytes_with_command_local() {
        let h = encode_v2_local();
        assert_eq!(h.len(), 16);
        let parsed = ppp::v2::Header::try_from(h.as_slice()).unwrap();
        assert_eq!(parsed.command, ppp::v2::Command::Local);
    }

    #[test]
    fn v1_header_is_one_text_line() {
        let h = encode_v1(sa("192.0.2.1:5555"), sa("198.51.100.7:1080"));
        assert_eq!(h, b"PROXY TCP4 192.0.2.1 198.51.100.7 5555 1080\r\n");
    }

    #[test]
    fn mixed_families_are_sent_as_mapped_ipv6() {
        let h = encode_v1(sa("192.0.2.1:5555"), sa("[2001:db8::2]:1080"));
        assert_eq!(h, b"PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 5555 1080\r\n");
        let h2 = encode_v2(sa("192.0.2.1:5555"), sa("[2001:db8::2]:1080"));
        assert_eq!(h2.len(), 52);
    }
}

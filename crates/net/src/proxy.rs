//! HAProxy PROXY protocol v1 (text) and v2 (binary): encoding for the relay, and reading exactly
//! one header off a socket for the server. Parsing is done by the `ppp` crate.

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

/// A v2 PROXY header with command LOCAL (family UNSPEC, no addresses): what a proxy sends on
/// a connection of its own, such as a health check, so that the receiver knows it is not
/// relaying a client.
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

async fn read_any(stream: &mut TcpStream) -> Result<Option<ProxyHeader>, ProxyError> {
    let mut first = [0u8; 1];
    stream.read_exact(&mut first).await?;
    match first {
        [b'P'] => read_v1(stream).await,
        [b'\r'] => read_v2(stream).await,
        [b] => Err(ProxyError::Malformed(format!(
            "starts with byte 0x{b:02x}, neither v1 nor v2"
        ))),
    }
}

/// Reads the rest of a v1 header (the leading 'P' is already consumed).
async fn read_v1(stream: &mut TcpStream) -> Result<Option<ProxyHeader>, ProxyError> {
    let mut buf = [0u8; V1_MAX];
    buf[0] = b'P';
    let mut have = 1;
    loop {
        // Peek, then consume only up to the line end: everything before '\n' is header.
        let n = stream.peek(&mut buf[have..]).await?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        let seen = &buf[have..have + n];
        let take = match seen.iter().position(|&c| c == b'\n') {
            Some(i) => i + 1,
            None => n,
        };
        stream.read_exact(&mut buf[have..have + take]).await?;
        have += take;
        if buf[have - 1] == b'\n' {
            break;
        }
        if have == V1_MAX {
            return Err(ProxyError::Malformed(format!(
                "v1 header has no line end within {V1_MAX} bytes"
            )));
        }
    }
    let header = ppp::v1::Header::try_from(&buf[..have])
        .map_err(|e| ProxyError::Malformed(format!("v1: {e}")))?;
    Ok(match header.addresses {
        ppp::v1::Addresses::Unknown => None,
        ppp::v1::Addresses::Tcp4(a) => Some(ProxyHeader {
            src: SocketAddr::new(a.source_address.into(), a.source_port),
            dst: SocketAddr::new(a.destination_address.into(), a.destination_port),
        }),
        ppp::v1::Addresses::Tcp6(a) => Some(ProxyHeader {
            src: SocketAddr::new(a.source_address.into(), a.source_port),
            dst: SocketAddr::new(a.destination_address.into(), a.destination_port),
        }),
    })
}

/// Reads the rest of a v2 header (the leading '\r' is already consumed).
async fn read_v2(stream: &mut TcpStream) -> Result<Option<ProxyHeader>, ProxyError> {
    let mut fixed = [0u8; V2_FIXED];
    fixed[0] = b'\r';
    stream.read_exact(&mut fixed[1..]).await?;
    if fixed[..12] != V2_SIG {
        return Err(ProxyError::Malformed("bad v2 signature".into()));
    }
    let len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    let mut all = vec![0u8; V2_FIXED + len];
    all[..V2_FIXED].copy_from_slice(&fixed);
    stream.read_exact(&mut all[V2_FIXED..]).await?;
    let header = ppp::v2::Header::try_from(all.as_slice())
        .map_err(|e| ProxyError::Malformed(format!("v2: {e}")))?;
    if header.command == ppp::v2::Command::Local {
        return Ok(None);
    }
    Ok(match header.addresses {
        ppp::v2::Addresses::IPv4(a) => Some(ProxyHeader {
            src: SocketAddr::new(a.source_address.into(), a.source_port),
            dst: SocketAddr::new(a.destination_address.into(), a.destination_port),
        }),
        ppp::v2::Addresses::IPv6(a) => Some(ProxyHeader {
            src: SocketAddr::new(a.source_address.into(), a.source_port),
            dst: SocketAddr::new(a.destination_address.into(), a.destination_port),
        }),
        // UNSPEC and AF_UNIX carry nothing we can use as a client address.
        ppp::v2::Addresses::Unspecified | ppp::v2::Addresses::Unix(_) => None,
    })
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

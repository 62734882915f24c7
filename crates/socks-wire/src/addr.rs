//! `TargetAddr` and its SOCKS5 encoding (`ATYP | ADDR | PORT`), shared by
//! requests, replies and UDP headers.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::reader::{need, Reader};
use crate::WireError;

/// SOCKS5 address type: IPv4.
pub(crate) const ATYP_V4: u8 = 0x01;
/// SOCKS5 address type: domain name.
pub(crate) const ATYP_DOMAIN: u8 = 0x03;
/// SOCKS5 address type: IPv6.
pub(crate) const ATYP_V6: u8 = 0x04;

/// Longest domain name (or other length-prefixed field) the wire can carry.
pub(crate) const MAX_FIELD: usize = 255;

/// A destination or bound address: an IP socket address or a domain name and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetAddr {
    /// IPv4 or IPv6 address and port.
    Ip(SocketAddr),
    /// Domain name (1..=255 bytes of UTF-8 without NUL) and port.
    Domain(String, u16),
}

impl TargetAddr {
    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            TargetAddr::Ip(a) => a.port(),
            TargetAddr::Domain(_, p) => *p,
        }
    }

    /// `0.0.0.0:0`, the bound address of failure replies and of an unknown UDP source.
    pub fn unspecified_v4() -> Self {
        TargetAddr::Ip(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)))
    }

    /// A domain target, checked as the decoder would check it.
    pub fn domain(name: impl Into<String>, port: u16) -> Result<Self, WireError> {
        let name = name.into();
        validate_domain(name.as_bytes())?;
        Ok(TargetAddr::Domain(name, port))
    }

    /// Bytes of the SOCKS5 encoding (`ATYP | ADDR | PORT`).
    pub fn encoded_len(&self) -> usize {
        match self {
            TargetAddr::Ip(SocketAddr::V4(_)) => 1 + 4 + 2,
            TargetAddr::Ip(SocketAddr::V6(_)) => 1 + 16 + 2,
            TargetAddr::Domain(name, _) => 1 + 1 + wire_domain(name).len() + 2,
        }
    }

    /// Appends the SOCKS5 encoding. A domain longer than 255 bytes (which
    /// [`TargetAddr::domain`] rejects) is cut at a character boundary.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            TargetAddr::Ip(SocketAddr::V4(a)) => {
                out.push(ATYP_V4);
                out.extend_from_slice(&a.ip().octets());
            }
            TargetAddr::Ip(SocketAddr::V6(a)) => {
                out.push(ATYP_V6);
                out.extend_from_slice(&a.ip().octets());
            }
            TargetAddr::Domain(name, _) => {
                let name = wire_domain(name);
                out.push(ATYP_DOMAIN);
                // wire_domain guarantees at most 255 bytes.
                out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(name.as_bytes());
            }
        }
        out.extend_from_slice(&self.port().to_be_bytes());
    }

    /// Reads `ATYP | ADDR | PORT`. Checks ATYP and the domain length eagerly
    /// so a server can answer before the whole address arrives.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Option<Self>, WireError> {
        let atyp = need!(r.u8());
        let addr = match atyp {
            ATYP_V4 => {
                let ip = Ipv4Addr::from(need!(r.array::<4>()));
                let port = need!(r.u16());
                TargetAddr::Ip(SocketAddr::V4(SocketAddrV4::new(ip, port)))
            }
            ATYP_V6 => {
                let ip = Ipv6Addr::from(need!(r.array::<16>()));
                let port = need!(r.u16());
                TargetAddr::Ip(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0)))
            }
            ATYP_DOMAIN => {
                let len = need!(r.u8());
                if len == 0 {
                    return Err(WireError::EmptyDomain);
                }
                let raw = need!(r.take(usize::from(len)));
                let name = validate_domain(raw)?;
                let port = need!(r.u16());
                TargetAddr::Domain(name, port)
            }
            other => return Err(WireError::BadAddressType(other)),
        };
        Ok(Some(addr))
    }
}

impl Default for TargetAddr {
    fn default() -> Self {
        TargetAddr::unspecified_v4()
    }
}

impl From<SocketAddr> for TargetAddr {
    fn from(a: SocketAddr) -> Self {
        TargetAddr::Ip(a)
    }
}

impl fmt::Display for TargetAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetAddr::Ip(a) => write!(f, "{a}"),
            TargetAddr::Domain(name, port) => write!(f, "{name}:{port}"),
        }
    }
}

/// Checks a domain name from the wire: 1..=255 bytes, UTF-8, no NUL.
pub(crate) fn validate_domain(raw: &[u8]) -> Result<String, WireError> {
    if raw.is_empty() {
        return Err(WireError::EmptyDomain);
    }
    if raw.len() > MAX_FIELD {
        return Err(WireError::FieldTooLong);
    }
    if raw.contains(&0) {
        return Err(WireError::InvalidDomain);
    }
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| WireError::InvalidDomain)
}

/// The part of `name` that fits in a length octet, cut at a char boundary.
fn wire_domain(name: &str) -> &str {
    if name.len() <= MAX_FIELD {
        return name;
    }
    let mut end = MAX_FIELD;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.get(..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(buf: &[u8]) -> Result<Option<(TargetAddr, usize)>, WireError> {
        let mut r = Reader::new(buf);
        Ok(TargetAddr::read(&mut r)?.map(|a| (a, r.pos())))
    }

    #[test]
    fn display_matches_usual_host_port_forms() {
        assert_eq!(
            TargetAddr::Ip("1.2.3.4:80".parse().unwrap()).to_string(),
            "1.2.3.4:80"
        );
        assert_eq!(
            TargetAddr::Ip("[::1]:80".parse().unwrap()).to_string(),
            "[::1]:80"
        );
        assert_eq!(
            TargetAddr::Domain("example.com".into(), 80).to_string(),
            "example.com:80"
        );
        assert_eq!(TargetAddr::unspecified_v4().to_string(), "0.0.0.0:0");
    }

    #[test]
    fn port_comes_from_either_variant() {
        assert_eq!(TargetAddr::Domain("a".into(), 7).port(), 7);
        assert_eq!(TargetAddr::Ip("[::1]:9".parse().unwrap()).port(), 9);
    }

    #[test]
    fn ipv6_address_decodes_from_atyp_04() {
        let mut b = vec![4];
        b.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        b.extend_from_slice(&[0x1f, 0x90]);
        assert_eq!(
            read_all(&b),
            Ok(Some((TargetAddr::Ip("[::1]:8080".parse().unwrap()), 19)))
        );
    }

    #[test]
    fn zero_length_domain_is_rejected_before_the_rest_arrives() {
        assert_eq!(read_all(&[3, 0]), Err(WireError::EmptyDomain));
    }

    #[test]
    fn domain_with_nul_or_bad_utf8_is_invalid() {
        assert_eq!(
            read_all(&[3, 2, b'a', 0, 0, 80]),
            Err(WireError::InvalidDomain)
        );
        assert_eq!(
            read_all(&[3, 2, 0xff, 0xfe, 0, 80]),
            Err(WireError::InvalidDomain)
        );
    }

    #[test]
    fn unknown_address_type_is_reported_with_its_byte() {
        assert_eq!(read_all(&[2, 1, 2, 3]), Err(WireError::BadAddressType(2)));
    }

    #[test]
    fn domain_constructor_applies_wire_rules() {
        assert_eq!(TargetAddr::domain("", 1), Err(WireError::EmptyDomain));
        assert_eq!(TargetAddr::domain("a\0b", 1), Err(WireError::InvalidDomain));
        assert_eq!(
            TargetAddr::domain("x".repeat(256), 1),
            Err(WireError::FieldTooLong)
        );
        assert!(TargetAddr::domain("x".repeat(255), 1).is_ok());
    }

    #[test]
    fn overlong_domain_is_cut_at_a_char_boundary_when_encoded() {
        // 127 two-byte chars = 254 bytes, then one more pushes past 255.
        let name = "é".repeat(128);
        let a = TargetAddr::Domain(name, 1);
        let mut out = Vec::new();
        a.encode(&mut out);
        assert_eq!(out.len(), a.encoded_len());
        assert_eq!(out.get(1), Some(&254));
        assert!(read_all(&out).unwrap().is_some());
    }
}

//! SOCKS4 and SOCKS4a requests and replies.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use crate::addr::{validate_domain, MAX_FIELD};
use crate::reader::{need, Reader};
use crate::v5::check_version;
use crate::{TargetAddr, WireError};

/// The SOCKS4 request version byte.
pub const VERSION: u8 = 4;
/// The version byte of a SOCKS4 reply (VN = 0).
pub const REPLY_VERSION: u8 = 0;
/// CD 90: request granted.
pub const GRANTED: u8 = 90;
/// CD 91: request rejected or failed.
pub const REJECTED: u8 = 91;
/// CD 92: rejected because the server cannot reach the client's identd.
pub const REJECTED_NO_IDENTD: u8 = 92;
/// CD 93: rejected because identd reported a different user-id.
pub const REJECTED_IDENT_MISMATCH: u8 = 93;

/// SOCKS4 command.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Command {
    /// CONNECT (01).
    Connect,
    /// BIND (02).
    Bind,
}

impl Command {
    /// Parses a CD byte of a request.
    pub fn from_u8(b: u8) -> Result<Self, WireError> {
        match b {
            1 => Ok(Command::Connect),
            2 => Ok(Command::Bind),
            other => Err(WireError::BadCommand(other)),
        }
    }

    /// The CD byte.
    pub fn as_u8(self) -> u8 {
        match self {
            Command::Connect => 1,
            Command::Bind => 2,
        }
    }
}

/// Request: `VN=04 | CD | DSTPORT | DSTIP | USERID | 00 [| HOSTNAME | 00]`.
///
/// The hostname is present (SOCKS4a) exactly when DSTIP is 0.0.0.x with x != 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Request {
    /// CONNECT or BIND.
    pub command: Command,
    /// DSTPORT.
    pub port: u16,
    /// DSTIP (a 0.0.0.x marker for SOCKS4a).
    pub ip: Ipv4Addr,
    /// USERID, without the NUL (at most 255 bytes).
    pub user_id: Vec<u8>,
    /// SOCKS4a hostname.
    pub host: Option<String>,
}

/// Whether DSTIP marks a SOCKS4a request (0.0.0.x, x != 0).
fn is_4a_marker(ip: Ipv4Addr) -> bool {
    matches!(ip.octets(), [0, 0, 0, x] if x != 0)
}

impl Request {
    /// Builds a request for `target`: an IPv4 address gives SOCKS4, a domain
    /// gives SOCKS4a. IPv6 cannot be expressed: `Err(BadAddressType(4))`.
    pub fn new(command: Command, target: &TargetAddr, user_id: Vec<u8>) -> Result<Self, WireError> {
        if user_id.len() > MAX_FIELD {
            return Err(WireError::FieldTooLong);
        }
        let (ip, host) = match target {
            TargetAddr::Ip(SocketAddr::V4(a)) => (*a.ip(), None),
            TargetAddr::Ip(SocketAddr::V6(_)) => return Err(WireError::BadAddressType(4)),
            TargetAddr::Domain(name, _) => {
                validate_domain(name.as_bytes())?;
                (Ipv4Addr::new(0, 0, 0, 1), Some(name.clone()))
            }
        };
        Ok(Request {
            command,
            port: target.port(),
            ip,
            user_id,
            host,
        })
    }

    /// Where the client wants to go: the 4a hostname if any, else DSTIP.
    pub fn target(&self) -> TargetAddr {
        match &self.host {
            Some(h) => TargetAddr::Domain(h.clone(), self.port),
            None => TargetAddr::Ip(SocketAddr::V4(SocketAddrV4::new(self.ip, self.port))),
        }
    }

    /// Whether this is a SOCKS4a request (carries a hostname).
    pub fn is_4a(&self) -> bool {
        self.host.is_some()
    }

    /// Decodes one request; `Ok(None)` if more bytes are needed.
    ///
    /// USERID and the hostname are each limited to 255 bytes before the NUL,
    /// so a client cannot make the server buffer without limit.
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, WireError> {
        let mut r = Reader::new(buf);
        check_version(need!(r.u8()), VERSION)?;
        let command = Command::from_u8(need!(r.u8()))?;
        let port = need!(r.u16());
        let ip = Ipv4Addr::from(need!(r.array::<4>()));
        let user_id = need!(r.nul_terminated(MAX_FIELD)?).to_vec();
        let host = if is_4a_marker(ip) {
            Some(validate_domain(need!(r.nul_terminated(MAX_FIELD)?))?)
        } else {
            None
        };
        let req = Request {
            command,
            port,
            ip,
            user_id,
            host,
        };
        Ok(Some((req, r.pos())))
    }

    /// Appends the encoding. USERID is cut at a NUL and to 255 bytes; with a
    /// hostname, a DSTIP that is not a 4a marker is written as 0.0.0.1.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let ip = match &self.host {
            Some(_) if !is_4a_marker(self.ip) => Ipv4Addr::new(0, 0, 0, 1),
            _ => self.ip,
        };
        out.extend_from_slice(&[VERSION, self.command.as_u8()]);
        out.extend_from_slice(&self.port.to_be_bytes());
        out.extend_from_slice(&ip.octets());
        push_nul_field(out, &self.user_id);
        if let Some(h) = &self.host {
            push_nul_field(out, h.as_bytes());
        }
    }
}

/// Appends a field up to its first NUL (at most 255 bytes), then a NUL.
fn push_nul_field(out: &mut Vec<u8>, field: &[u8]) {
    let end = field
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(field.len())
        .min(MAX_FIELD);
    out.extend_from_slice(field.get(..end).unwrap_or(&[]));
    out.push(0);
}

/// Reply: `VN=00 | CD | DSTPORT | DSTIP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reply {
    /// CD: [`GRANTED`], [`REJECTED`], ... (kept raw).
    pub code: u8,
    /// DSTPORT.
    pub port: u16,
    /// DSTIP.
    pub ip: Ipv4Addr,
}

impl Reply {
    /// A grant carrying `bound` (the BIND rendezvous or the connected address).
    pub fn granted(bound: SocketAddrV4) -> Self {
        Reply {
            code: GRANTED,
            port: bound.port(),
            ip: *bound.ip(),
        }
    }

    /// A rejection (CD 91) with a zero address.
    pub fn rejected() -> Self {
        Reply {
            code: REJECTED,
            port: 0,
            ip: Ipv4Addr::UNSPECIFIED,
        }
    }

    /// Whether CD is 90.
    pub fn is_granted(&self) -> bool {
        self.code == GRANTED
    }

    /// Decodes one reply; `Ok(None)` if more bytes are needed.
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, WireError> {
        let mut r = Reader::new(buf);
        check_version(need!(r.u8()), REPLY_VERSION)?;
        let code = need!(r.u8());
        let port = need!(r.u16());
        let ip = Ipv4Addr::from(need!(r.array::<4>()));
        Ok(Some((Reply { code, port, ip }, r.pos())))
    }

    /// Appends the encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[REPLY_VERSION, self.code]);
        out.extend_from_slice(&self.port.to_be_bytes());
        out.extend_from_slice(&self.ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(req: &Request) -> Vec<u8> {
        let mut out = Vec::new();
        req.encode(&mut out);
        out
    }

    #[test]
    fn socks4_connect_decodes_exact_bytes() {
        // The example from the SOCKS4 protocol document style: port 80, 66.102.7.99, user "fred".
        let buf = [4, 1, 0, 80, 66, 102, 7, 99, b'f', b'r', b'e', b'd', 0, 0xEE];
        let (req, n) = Request::decode(&buf).unwrap().unwrap();
        assert_eq!(n, 13);
        assert_eq!(req.command, Command::Connect);
        assert_eq!(req.user_id, b"fred");
        assert!(!req.is_4a());
        assert_eq!(
            req.target(),
            TargetAddr::Ip("66.102.7.99:80".parse().unwrap())
        );
        assert_eq!(enc(&req), &buf[..13]);
        for k in 0..13 {
            assert_eq!(Request::decode(&buf[..k]), Ok(None), "prefix {k}");
        }
    }

    #[test]
    fn socks4a_reads_hostname_after_userid() {
        let mut buf = vec![4, 2, 0x1f, 0x90, 0, 0, 0, 7, 0];
        buf.extend_from_slice(b"example.com\0");
        let (req, n) = Request::decode(&buf).unwrap().unwrap();
        assert_eq!(n, buf.len());
        assert_eq!(req.command, Command::Bind);
        assert!(req.is_4a());
        assert_eq!(req.target(), TargetAddr::Domain("example.com".into(), 8080));
        assert_eq!(enc(&req), buf);
        for k in 0..buf.len() {
            assert_eq!(Request::decode(&buf[..k]), Ok(None), "prefix {k}");
        }
    }

    #[test]
    fn dstip_zero_is_plain_socks4() {
        let buf = [4, 1, 0, 80, 0, 0, 0, 0, 0, b'x'];
        let (req, n) = Request::decode(&buf).unwrap().unwrap();
        assert_eq!(n, 9);
        assert!(!req.is_4a());
    }

    #[test]
    fn endless_userid_is_rejected_after_255_bytes() {
        let mut buf = vec![4, 1, 0, 80, 1, 2, 3, 4];
        buf.extend_from_slice(&[b'u'; 255]);
        assert_eq!(Request::decode(&buf), Ok(None));
        buf.push(b'u');
        assert_eq!(Request::decode(&buf), Err(WireError::FieldTooLong));
    }

    #[test]
    fn userid_of_255_bytes_is_accepted() {
        let mut buf = vec![4, 1, 0, 80, 1, 2, 3, 4];
        buf.extend_from_slice(&[b'u'; 255]);
        buf.push(0);
        assert_eq!(Request::decode(&buf).unwrap().unwrap().1, buf.len());
    }

    #[test]
    fn endless_4a_hostname_is_rejected_after_255_bytes() {
        let mut buf = vec![4, 1, 0, 80, 0, 0, 0, 1, 0];
        buf.extend_from_slice(&[b'h'; 256]);
        assert_eq!(Request::decode(&buf), Err(WireError::FieldTooLong));
        buf.truncate(9 + 255);
        assert_eq!(Request::decode(&buf), Ok(None));
    }

    #[test]
    fn empty_or_invalid_4a_hostname_is_rejected() {
        assert_eq!(
            Request::decode(&[4, 1, 0, 80, 0, 0, 0, 1, 0, 0]),
            Err(WireError::EmptyDomain)
        );
        assert_eq!(
            Request::decode(&[4, 1, 0, 80, 0, 0, 0, 1, 0, 0xff, 0]),
            Err(WireError::InvalidDomain)
        );
    }

    #[test]
    fn bad_version_and_command_are_rejected_early() {
        assert_eq!(Request::decode(&[5]), Err(WireError::BadVersion(5)));
        assert_eq!(Request::decode(&[4, 3]), Err(WireError::BadCommand(3)));
    }

    #[test]
    fn new_picks_4a_for_domains_and_refuses_ipv6() {
        let r = Request::new(
            Command::Connect,
            &TargetAddr::Domain("h".into(), 1),
            b"me".to_vec(),
        )
        .unwrap();
        assert!(r.is_4a());
        assert_eq!(
            Request::decode(&enc(&r)),
            Ok(Some((r.clone(), enc(&r).len())))
        );
        assert_eq!(
            Request::new(
                Command::Connect,
                &TargetAddr::Ip("[::1]:1".parse().unwrap()),
                vec![]
            ),
            Err(WireError::BadAddressType(4))
        );
    }

    #[test]
    fn encode_forces_4a_marker_when_host_is_set() {
        let r = Request {
            command: Command::Connect,
            port: 1,
            ip: Ipv4Addr::new(9, 9, 9, 9),
            user_id: vec![],
            host: Some("h".into()),
        };
        assert_eq!(enc(&r).get(4..8), Some(&[0, 0, 0, 1][..]));
    }

    #[test]
    fn reply_decodes_granted_and_rejected() {
        let buf = [0, 90, 0x04, 0x38, 127, 0, 0, 1];
        let (rep, n) = Reply::decode(&buf).unwrap().unwrap();
        assert_eq!(n, 8);
        assert!(rep.is_granted());
        assert_eq!(rep, Reply::granted("127.0.0.1:1080".parse().unwrap()));
        for k in 0..8 {
            assert_eq!(Reply::decode(&buf[..k]), Ok(None));
        }
        let mut out = Vec::new();
        Reply::rejected().encode(&mut out);
        assert_eq!(out, [0, 91, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Reply::decode(&[4, 90]), Err(WireError::BadVersion(4)));
    }
}

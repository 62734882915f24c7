//! The SOCKS5 request and reply, which share the `VER | X | RSV | ADDR` layout.

use super::{check_version, Command, ReplyCode, VERSION};
use crate::reader::{need, Reader};
use crate::{TargetAddr, WireError};

/// Client request: `VER=05 | CMD | RSV | ATYP | DST.ADDR | DST.PORT`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Request {
    /// What the client asks for.
    pub command: Command,
    /// DST.ADDR and DST.PORT.
    pub target: TargetAddr,
}

impl Request {
    /// Decodes one request; `Ok(None)` if more bytes are needed.
    ///
    /// Errors are reported as soon as the offending byte arrives. RSV may be
    /// any value (lenient, as most servers are).
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, WireError> {
        let mut r = Reader::new(buf);
        check_version(need!(r.u8()), VERSION)?;
        let command = Command::from_u8(need!(r.u8()))?;
        let _rsv = need!(r.u8());
        let target = need!(TargetAddr::read(&mut r)?);
        Ok(Some((Request { command, target }, r.pos())))
    }

    /// Appends the encoding (RSV = 0).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[VERSION, self.command.as_u8(), 0]);
        self.target.encode(out);
    }
}

/// Server reply: `VER=05 | REP | RSV | ATYP | BND.ADDR | BND.PORT`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reply {
    /// REP byte, kept raw because peers may send unassigned codes (09..FF).
    pub code: u8,
    /// BND.ADDR and BND.PORT.
    pub bound: TargetAddr,
}

impl Reply {
    /// A reply with an assigned code.
    pub fn new(code: ReplyCode, bound: TargetAddr) -> Self {
        Reply {
            code: code.as_u8(),
            bound,
        }
    }

    /// A failure reply with BND = `0.0.0.0:0`.
    pub fn failure(code: ReplyCode) -> Self {
        Reply::new(code, TargetAddr::unspecified_v4())
    }

    /// The assigned code, or `None` for 09..FF.
    pub fn reply_code(&self) -> Option<ReplyCode> {
        ReplyCode::from_u8(self.code)
    }

    /// Whether REP is 00.
    pub fn is_success(&self) -> bool {
        self.code == ReplyCode::Succeeded.as_u8()
    }

    /// Decodes one reply; `Ok(None)` if more bytes are needed. RSV may be any value.
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, WireError> {
        let mut r = Reader::new(buf);
        check_version(need!(r.u8()), VERSION)?;
        let code = need!(r.u8());
        let _rsv = need!(r.u8());
        let bound = need!(TargetAddr::read(&mut r)?);
        Ok(Some((Reply { code, bound }, r.pos())))
    }

    /// Appends the encoding (RSV = 0).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[VERSION, self.code, 0]);
        self.bound.encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_prefixes_need_more<T: std::fmt::Debug + PartialEq>(
        buf: &[u8],
        decode: impl Fn(&[u8]) -> Result<Option<(T, usize)>, WireError>,
    ) {
        for k in 0..buf.len() {
            assert_eq!(decode(&buf[..k]), Ok(None), "prefix of {k} bytes");
        }
    }

    #[test]
    fn connect_to_ipv4_decodes_exact_bytes() {
        let buf = [5, 1, 0, 1, 127, 0, 0, 1, 0, 80, 0xAA];
        let (req, n) = Request::decode(&buf).unwrap().unwrap();
        assert_eq!(n, 10);
        assert_eq!(req.command, Command::Connect);
        assert_eq!(req.target, TargetAddr::Ip("127.0.0.1:80".parse().unwrap()));
        let mut out = Vec::new();
        req.encode(&mut out);
        assert_eq!(out, &buf[..10]);
        assert_prefixes_need_more(&buf[..10], Request::decode);
    }

    #[test]
    fn connect_to_domain_decodes_exact_bytes() {
        let mut buf = vec![5, 1, 0, 3, 11];
        buf.extend_from_slice(b"example.com");
        buf.extend_from_slice(&[0x01, 0xbb]);
        let (req, n) = Request::decode(&buf).unwrap().unwrap();
        assert_eq!(n, buf.len());
        assert_eq!(req.target, TargetAddr::Domain("example.com".into(), 443));
        assert_prefixes_need_more(&buf, Request::decode);
    }

    #[test]
    fn udp_associate_over_ipv6_decodes() {
        let mut buf = vec![5, 3, 0, 4];
        buf.extend_from_slice(&[0; 15]);
        buf.extend_from_slice(&[1, 0, 0]);
        let (req, n) = Request::decode(&buf).unwrap().unwrap();
        assert_eq!(n, 22);
        assert_eq!(req.command, Command::UdpAssociate);
        assert_eq!(req.target, TargetAddr::Ip("[::1]:0".parse().unwrap()));
    }

    #[test]
    fn nonzero_reserved_byte_is_accepted_and_encoded_as_zero() {
        let buf = [5, 2, 0x7f, 1, 10, 0, 0, 1, 0, 21];
        let (req, _) = Request::decode(&buf).unwrap().unwrap();
        assert_eq!(req.command, Command::Bind);
        let mut out = Vec::new();
        req.encode(&mut out);
        assert_eq!(out.get(2), Some(&0));
    }

    #[test]
    fn request_errors_are_reported_as_soon_as_the_byte_arrives() {
        assert_eq!(Request::decode(&[4]), Err(WireError::BadVersion(4)));
        assert_eq!(Request::decode(&[5, 9]), Err(WireError::BadCommand(9)));
        assert_eq!(Request::decode(&[5, 0]), Err(WireError::BadCommand(0)));
        assert_eq!(
            Request::decode(&[5, 1, 0, 2]),
            Err(WireError::BadAddressType(2))
        );
        assert_eq!(
            Request::decode(&[5, 1, 0, 3, 0]),
            Err(WireError::EmptyDomain)
        );
        assert_eq!(
            Request::decode(&[5, 1, 0, 3, 1, 0, 0, 80]),
            Err(WireError::InvalidDomain)
        );
    }

    #[test]
    fn reply_keeps_unassigned_codes_raw() {
        let buf = [5, 0x42, 0, 1, 0, 0, 0, 0, 0, 0];
        let (rep, n) = Reply::decode(&buf).unwrap().unwrap();
        assert_eq!(n, 10);
        assert_eq!(rep.code, 0x42);
        assert_eq!(rep.reply_code(), None);
        assert!(!rep.is_success());
    }

    #[test]
    fn success_reply_encodes_bound_address() {
        let rep = Reply::new(
            ReplyCode::Succeeded,
            TargetAddr::Ip("192.0.2.1:1080".parse().unwrap()),
        );
        let mut out = Vec::new();
        rep.encode(&mut out);
        assert_eq!(out, [5, 0, 0, 1, 192, 0, 2, 1, 0x04, 0x38]);
        assert_eq!(Reply::decode(&out), Ok(Some((rep, 10))));
        assert_prefixes_need_more(&out, Reply::decode);
    }

    #[test]
    fn failure_reply_has_unspecified_bound_address() {
        let mut out = Vec::new();
        Reply::failure(ReplyCode::NotAllowed).encode(&mut out);
        assert_eq!(out, [5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn reply_with_wrong_version_or_address_type_is_rejected() {
        assert_eq!(Reply::decode(&[0, 90]), Err(WireError::BadVersion(0)));
        assert_eq!(
            Reply::decode(&[5, 0, 0, 5]),
            Err(WireError::BadAddressType(5))
        );
    }
}

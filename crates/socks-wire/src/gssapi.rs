//! RFC 1961 (GSS-API authentication for SOCKS5) framing: every message of the method is
//! `VER=01 | MTYP | LEN(2, big-endian) | TOKEN`, except the abort message, which is the two
//! bytes `01 FF`.
//!
//! - MTYP 01: a context establishment token (client and server, until both are done);
//! - MTYP 02: the protection-level subnegotiation (one octet, wrapped by `gss_wrap` unless
//!   the client speaks the NEC variant, which sends it bare);
//! - MTYP 03: one encapsulated message (`gss_wrap` output) of the data that follows;
//! - MTYP FF: abort (no length, no token).
//!
//! The codec only frames: producing and checking tokens is the GSS-API library's job.

use crate::reader::{need, Reader};
use crate::WireError;

/// The RFC 1961 subnegotiation version byte.
pub const VERSION: u8 = 1;

/// The largest token a frame carries (LEN is two octets).
pub const MAX_TOKEN: usize = u16::MAX as usize;

/// Bytes of `VER | MTYP | LEN` before a token.
pub const HEADER_LEN: usize = 4;

/// The message type of a frame that carries a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 01: security context establishment.
    Authentication,
    /// 02: protection-level subnegotiation.
    Protection,
    /// 03: per-message encapsulation of the data that follows.
    Encapsulation,
}

impl MessageType {
    /// The MTYP byte.
    pub fn as_u8(self) -> u8 {
        match self {
            MessageType::Authentication => 1,
            MessageType::Protection => 2,
            MessageType::Encapsulation => 3,
        }
    }

    /// The type an MTYP byte names (FF, abort, is not a token type).
    pub fn from_u8(b: u8) -> Result<Self, WireError> {
        match b {
            1 => Ok(MessageType::Authentication),
            2 => Ok(MessageType::Protection),
            3 => Ok(MessageType::Encapsulation),
            other => Err(WireError::BadMessageType(other)),
        }
    }
}

/// The MTYP byte of the abort message.
pub const ABORT: u8 = 0xff;

/// One RFC 1961 message.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Frame {
    /// `01 MTYP LEN TOKEN`.
    Token {
        /// What the token is for.
        kind: MessageType,
        /// The GSS-API token (at most [`MAX_TOKEN`] bytes; longer ones are cut when encoding).
        token: Vec<u8>,
    },
    /// `01 FF`: the peer gives up (authentication failed or refused).
    Abort,
}

impl std::fmt::Debug for Frame {
    // Tokens are opaque and can be long: logs get their type and size.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Frame::Token { kind, token } => write!(f, "Frame({kind:?}, {} bytes)", token.len()),
            Frame::Abort => f.write_str("Frame(Abort)"),
        }
    }
}

impl Frame {
    /// Decodes one message; `Ok(None)` if more bytes are needed.
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, WireError> {
        let Some((kind, start, end)) = Self::locate(buf)? else {
            return Ok(None);
        };
        let frame = match kind {
            None => Frame::Abort,
            Some(kind) => Frame::Token {
                kind,
                token: buf.get(start..end).unwrap_or_default().to_vec(),
            },
        };
        Ok(Some((frame, end)))
    }

    /// Where the next message's token lies in `buf`, without copying it: its type (None
    /// for abort), and the token's start and end offsets (the end is also the bytes the
    /// message uses). `Ok(None)` if more bytes are needed. The data path unwraps tokens in
    /// place with this.
    pub fn locate(buf: &[u8]) -> Result<Option<(Option<MessageType>, usize, usize)>, WireError> {
        let mut r = Reader::new(buf);
        let ver = need!(r.u8());
        if ver != VERSION {
            return Err(WireError::BadVersion(ver));
        }
        let mtyp = need!(r.u8());
        if mtyp == ABORT {
            return Ok(Some((None, r.pos(), r.pos())));
        }
        let kind = MessageType::from_u8(mtyp)?;
        let len = usize::from(need!(r.u16()));
        let start = r.pos();
        need!(r.take(len));
        Ok(Some((Some(kind), start, r.pos())))
    }

    /// Appends the encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Token { kind, token } => encode_token(*kind, token, out),
            Frame::Abort => out.extend_from_slice(&[VERSION, ABORT]),
        }
    }
}

/// Appends `01 MTYP LEN TOKEN` without building a [`Frame`] (the data path's hot loop);
/// a token longer than [`MAX_TOKEN`] is cut to it.
pub fn encode_token(kind: MessageType, token: &[u8], out: &mut Vec<u8>) {
    let token = token.get(..MAX_TOKEN).unwrap_or(token);
    let len = u16::try_from(token.len()).unwrap_or(u16::MAX);
    out.reserve(HEADER_LEN + token.len());
    out.extend_from_slice(&[VERSION, kind.as_u8()]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(token);
}

/// The protection level of the subnegotiation (the one octet in an MTYP 02 token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtectionLevel {
    /// 00: no per-message protection after authentication. Not in RFC 1961; Dante's
    /// `clear`, and what curl asks for.
    Clear,
    /// 01: per-message integrity.
    Integrity,
    /// 02: per-message integrity and confidentiality.
    Confidentiality,
    /// 03: selective per-message protection, per the peers' local configuration.
    Selective,
}

impl ProtectionLevel {
    /// The level octet.
    pub fn as_u8(self) -> u8 {
        match self {
            ProtectionLevel::Clear => 0,
            ProtectionLevel::Integrity => 1,
            ProtectionLevel::Confidentiality => 2,
            ProtectionLevel::Selective => 3,
        }
    }

    /// The level an octet names.
    pub fn from_u8(b: u8) -> Result<Self, WireError> {
        match b {
            0 => Ok(ProtectionLevel::Clear),
            1 => Ok(ProtectionLevel::Integrity),
            2 => Ok(ProtectionLevel::Confidentiality),
            3 => Ok(ProtectionLevel::Selective),
            other => Err(WireError::BadProtectionLevel(other)),
        }
    }

    /// The level of an unwrapped (or NEC-style bare) MTYP 02 token, which is one octet.
    pub fn from_token(token: &[u8]) -> Result<Self, WireError> {
        match token {
            [b] => Self::from_u8(*b),
            _ => Err(WireError::BadProtectionToken(token.len())),
        }
    }

    /// Whether data after the subnegotiation is encapsulated (every level but `clear`).
    pub fn encapsulates(self) -> bool {
        self != ProtectionLevel::Clear
    }

    /// Dante's word for it (`gssapi.enctype`), also used in logs.
    pub fn word(self) -> &'static str {
        match self {
            ProtectionLevel::Clear => "clear",
            ProtectionLevel::Integrity => "integrity",
            ProtectionLevel::Confidentiality => "confidentiality",
            ProtectionLevel::Selective => "selective",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_message_follows_rfc1961_section_3_layout() {
        // ver=1, mtyp=1, len=0x0003, token.
        let wire = [0x01, 0x01, 0x00, 0x03, 0xaa, 0xbb, 0xcc, 0x99];
        let (f, n) = Frame::decode(&wire).unwrap().unwrap();
        assert_eq!(n, 7, "the trailing byte is not part of the message");
        assert_eq!(
            f,
            Frame::Token {
                kind: MessageType::Authentication,
                token: vec![0xaa, 0xbb, 0xcc]
            }
        );
        let mut out = Vec::new();
        f.encode(&mut out);
        assert_eq!(out, &wire[..7]);
        for k in 0..7 {
            assert_eq!(Frame::decode(&wire[..k]), Ok(None), "prefix {k}");
        }
    }

    #[test]
    fn abort_is_two_bytes_without_length() {
        let (f, n) = Frame::decode(&[0x01, 0xff, 0x01]).unwrap().unwrap();
        assert_eq!((f.clone(), n), (Frame::Abort, 2));
        let mut out = Vec::new();
        f.encode(&mut out);
        assert_eq!(out, [0x01, 0xff]);
    }

    #[test]
    fn protection_and_encapsulation_messages_carry_their_type_byte() {
        let mut out = Vec::new();
        encode_token(MessageType::Protection, &[0x02], &mut out);
        assert_eq!(out, [0x01, 0x02, 0x00, 0x01, 0x02]);
        out.clear();
        encode_token(MessageType::Encapsulation, &[7; 0x0102], &mut out);
        assert_eq!(out[..4], [0x01, 0x03, 0x01, 0x02]);
        assert_eq!(out.len(), 4 + 0x0102);
        assert_eq!(
            Frame::locate(&out),
            Ok(Some((Some(MessageType::Encapsulation), 4, 4 + 0x0102)))
        );
    }

    #[test]
    fn largest_token_round_trips_and_longer_is_cut_to_it() {
        let mut out = Vec::new();
        encode_token(
            MessageType::Encapsulation,
            &vec![1; MAX_TOKEN + 10],
            &mut out,
        );
        assert_eq!(out[2..4], [0xff, 0xff]);
        assert_eq!(out.len(), HEADER_LEN + MAX_TOKEN);
        let (f, n) = Frame::decode(&out).unwrap().unwrap();
        assert_eq!(n, out.len());
        assert!(matches!(f, Frame::Token { token, .. } if token.len() == MAX_TOKEN));
    }

    #[test]
    fn wrong_version_and_unknown_type_are_errors_not_pending() {
        assert_eq!(Frame::decode(&[0x05]), Err(WireError::BadVersion(5)));
        assert_eq!(
            Frame::decode(&[0x01, 0x04]),
            Err(WireError::BadMessageType(4))
        );
        assert_eq!(
            Frame::decode(&[0x01, 0x00, 0, 0]),
            Err(WireError::BadMessageType(0))
        );
    }

    #[test]
    fn protection_levels_are_one_octet() {
        for (b, l) in [
            (0, ProtectionLevel::Clear),
            (1, ProtectionLevel::Integrity),
            (2, ProtectionLevel::Confidentiality),
            (3, ProtectionLevel::Selective),
        ] {
            assert_eq!(ProtectionLevel::from_token(&[b]), Ok(l));
            assert_eq!(l.as_u8(), b);
        }
        assert_eq!(
            ProtectionLevel::from_token(&[4]),
            Err(WireError::BadProtectionLevel(4))
        );
        assert_eq!(
            ProtectionLevel::from_token(&[1, 2]),
            Err(WireError::BadProtectionToken(2))
        );
        assert!(!ProtectionLevel::Clear.encapsulates());
        assert!(ProtectionLevel::Integrity.encapsulates());
    }

    #[test]
    fn debug_output_does_not_dump_tokens() {
        let f = Frame::Token {
            kind: MessageType::Authentication,
            token: vec![0x60; 600],
        };
        assert_eq!(format!("{f:?}"), "Frame(Authentication, 600 bytes)");
    }
}

//! SOCKS5 (RFC 1928) messages and RFC 1929 username/password authentication.

mod auth;
mod handshake;
mod request;

pub use auth::{UserPassReply, UserPassRequest, USERPASS_VERSION};
pub use handshake::{Greeting, MethodSelection};
pub use request::{Reply, Request};

use crate::WireError;

/// The SOCKS5 version byte.
pub const VERSION: u8 = 5;

/// Authentication method numbers (RFC 1928 section 3).
pub mod method {
    /// No authentication required.
    pub const NONE: u8 = 0x00;
    /// GSSAPI (RFC 1961).
    pub const GSSAPI: u8 = 0x01;
    /// Username/password (RFC 1929).
    pub const USERPASS: u8 = 0x02;
    /// No acceptable method: the client must close the connection.
    pub const NO_ACCEPTABLE: u8 = 0xFF;
}

/// SOCKS5 request command.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Command {
    /// CONNECT (01).
    Connect,
    /// BIND (02).
    Bind,
    /// UDP ASSOCIATE (03).
    UdpAssociate,
}

impl Command {
    /// Parses a CMD byte.
    pub fn from_u8(b: u8) -> Result<Self, WireError> {
        match b {
            1 => Ok(Command::Connect),
            2 => Ok(Command::Bind),
            3 => Ok(Command::UdpAssociate),
            other => Err(WireError::BadCommand(other)),
        }
    }

    /// The CMD byte.
    pub fn as_u8(self) -> u8 {
        match self {
            Command::Connect => 1,
            Command::Bind => 2,
            Command::UdpAssociate => 3,
        }
    }
}

/// The reply codes RFC 1928 assigns (09..FF are unassigned).
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ReplyCode {
    /// 00 succeeded.
    Succeeded = 0,
    /// 01 general SOCKS server failure.
    GeneralFailure = 1,
    /// 02 connection not allowed by ruleset.
    NotAllowed = 2,
    /// 03 network unreachable.
    NetworkUnreachable = 3,
    /// 04 host unreachable.
    HostUnreachable = 4,
    /// 05 connection refused.
    ConnectionRefused = 5,
    /// 06 TTL expired.
    TtlExpired = 6,
    /// 07 command not supported.
    CommandNotSupported = 7,
    /// 08 address type not supported.
    AddressTypeNotSupported = 8,
}

impl ReplyCode {
    /// The code for an assigned REP byte; `None` for 09..FF.
    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0 => ReplyCode::Succeeded,
            1 => ReplyCode::GeneralFailure,
            2 => ReplyCode::NotAllowed,
            3 => ReplyCode::NetworkUnreachable,
            4 => ReplyCode::HostUnreachable,
            5 => ReplyCode::ConnectionRefused,
            6 => ReplyCode::TtlExpired,
            7 => ReplyCode::CommandNotSupported,
            8 => ReplyCode::AddressTypeNotSupported,
            _ => return None,
        })
    }

    /// The REP byte.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The RFC 1928 wording, for logs and probe reports.
    pub fn describe(self) -> &'static str {
        match self {
            ReplyCode::Succeeded => "succeeded",
            ReplyCode::GeneralFailure => "general SOCKS server failure",
            ReplyCode::NotAllowed => "connection not allowed by ruleset",
            ReplyCode::NetworkUnreachable => "network unreachable",
            ReplyCode::HostUnreachable => "host unreachable",
            ReplyCode::ConnectionRefused => "connection refused",
            ReplyCode::TtlExpired => "TTL expired",
            ReplyCode::CommandNotSupported => "command not supported",
            ReplyCode::AddressTypeNotSupported => "address type not supported",
        }
    }
}

impl std::fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02x} {}", self.as_u8(), self.describe())
    }
}

/// Eagerly checks a version byte.
pub(crate) fn check_version(got: u8, want: u8) -> Result<(), WireError> {
    if got == want {
        Ok(())
    } else {
        Err(WireError::BadVersion(got))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_code_round_trips_every_assigned_byte() {
        for b in 0..=8u8 {
            let c = ReplyCode::from_u8(b).unwrap();
            assert_eq!(c.as_u8(), b);
            assert!(!c.describe().is_empty());
        }
        assert_eq!(ReplyCode::from_u8(9), None);
        assert_eq!(ReplyCode::from_u8(0xff), None);
        assert_eq!(
            ReplyCode::NotAllowed.describe(),
            "connection not allowed by ruleset"
        );
    }

    #[test]
    fn command_bytes_follow_rfc1928() {
        for (b, c) in [
            (1, Command::Connect),
            (2, Command::Bind),
            (3, Command::UdpAssociate),
        ] {
            assert_eq!(Command::from_u8(b), Ok(c));
            assert_eq!(c.as_u8(), b);
        }
        assert_eq!(Command::from_u8(0), Err(WireError::BadCommand(0)));
        assert_eq!(Command::from_u8(4), Err(WireError::BadCommand(4)));
    }
}

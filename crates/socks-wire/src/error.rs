//! The single error type of the codec and its mapping to SOCKS5 reply codes.

use crate::v5::ReplyCode;

/// Why a buffer is not a valid SOCKS message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The version byte is not the one this message requires.
    #[error("unexpected protocol version byte {0:#04x}")]
    BadVersion(u8),
    /// The command byte is not a known command.
    #[error("unsupported command {0:#04x}")]
    BadCommand(u8),
    /// The SOCKS5 address type is not 01 (IPv4), 03 (domain) or 04 (IPv6).
    #[error("unsupported address type {0:#04x}")]
    BadAddressType(u8),
    /// A SOCKS5 greeting offered zero methods.
    #[error("greeting offers no authentication methods")]
    NoMethods,
    /// A domain name of length zero.
    #[error("empty domain name")]
    EmptyDomain,
    /// A domain name that is not UTF-8 or contains a NUL byte.
    #[error("domain name is not valid UTF-8 or contains NUL")]
    InvalidDomain,
    /// A variable-length field is longer than 255 bytes.
    #[error("field longer than 255 bytes")]
    FieldTooLong,
    /// A datagram (which is always whole) ended inside its header.
    #[error("datagram shorter than its header")]
    Truncated,
    /// An RFC 1961 message type other than 01, 02, 03 or FF.
    #[error("unknown GSS-API message type {0:#04x}")]
    BadMessageType(u8),
    /// An RFC 1961 protection level other than 00..03.
    #[error("unknown GSS-API protection level {0:#04x}")]
    BadProtectionLevel(u8),
    /// A protection-level token that is not one octet once unwrapped.
    #[error("GSS-API protection-level token of {0} bytes (must be 1)")]
    BadProtectionToken(usize),
}

impl WireError {
    /// The SOCKS5 reply code a server should send for this error.
    pub fn reply_code(&self) -> ReplyCode {
        match self {
            WireError::BadCommand(_) => ReplyCode::CommandNotSupported,
            WireError::BadAddressType(_) => ReplyCode::AddressTypeNotSupported,
            _ => ReplyCode::GeneralFailure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_socks5_reply_codes() {
        assert_eq!(WireError::BadCommand(9).reply_code().as_u8(), 0x07);
        assert_eq!(WireError::BadAddressType(2).reply_code().as_u8(), 0x08);
        for e in [
            WireError::BadVersion(4),
            WireError::NoMethods,
            WireError::EmptyDomain,
            WireError::InvalidDomain,
            WireError::FieldTooLong,
            WireError::Truncated,
            WireError::BadMessageType(0),
            WireError::BadProtectionLevel(9),
            WireError::BadProtectionToken(2),
        ] {
            assert_eq!(e.reply_code(), ReplyCode::GeneralFailure, "{e}");
        }
    }
}

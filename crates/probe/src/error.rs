//! The one error type of the probe, classified so that callers can tell a
//! dead server (connect), a slow one (timeout), a refusing one (reply code)
//! and a broken one (protocol, data mismatch) apart.

use hasocks_socks_wire::v5::ReplyCode;

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The TCP connection to the proxy itself failed.
    #[error("connect to proxy failed: {0}")]
    Connect(std::io::Error),
    /// A read or write on an established connection failed (including an
    /// unexpected close by the peer).
    #[error("I/O error: {0}")]
    Io(std::io::Error),
    /// The deadline passed during the named phase.
    #[error("timeout during {0}")]
    Timeout(&'static str),
    /// The proxy sent bytes that are not valid SOCKS5 at this point.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The proxy answered the greeting with method FF (no acceptable method).
    #[error("proxy accepts none of the offered authentication methods")]
    NoAcceptableMethod,
    /// RFC 1929 authentication failed with this status byte.
    #[error("authentication failed (status {0:02x})")]
    AuthFailed(u8),
    /// The proxy answered the request with this non-zero REP code.
    #[error("SOCKS reply {:02x} ({})", .0, rep_text(*.0))]
    Rejected(u8),
    /// A SOCKS4 proxy refused the request with this reply code (91 to 93).
    #[error("SOCKS4 reply {0}")]
    Socks4Rejected(u8),
    /// An HTTP proxy answered CONNECT with this status (and reason).
    #[error("HTTP CONNECT answered {0} {1}")]
    HttpStatus(u16, String),
    /// Bytes sent through the proxy came back different.
    #[error("data relayed through the proxy differs from the data sent")]
    DataMismatch,
    /// The proxy reported success but our target listener saw no connection.
    #[error("proxy replied success but no connection reached the target listener")]
    NoInbound,
}

impl ProbeError {
    /// One line for logs, e.g. `SOCKS reply 02 (connection not allowed by ruleset)`.
    pub fn short(&self) -> String {
        let s = self.to_string();
        // io::Error texts are single-line today; keep the promise regardless.
        if s.contains('\n') {
            s.replace('\n', " ")
        } else {
            s
        }
    }
}

/// The RFC 1928 meaning of a REP byte.
pub(crate) fn rep_text(code: u8) -> &'static str {
    match ReplyCode::from_u8(code) {
        Some(c) => c.describe(),
        None => "unassigned reply code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_reply_names_code_and_meaning() {
        assert_eq!(
            ProbeError::Rejected(2).short(),
            "SOCKS reply 02 (connection not allowed by ruleset)"
        );
        assert_eq!(
            ProbeError::Rejected(0x42).short(),
            "SOCKS reply 42 (unassigned reply code)"
        );
    }

    #[test]
    fn timeout_names_its_phase() {
        assert_eq!(
            ProbeError::Timeout("greeting").short(),
            "timeout during greeting"
        );
    }

    #[test]
    fn short_is_one_line() {
        let e = ProbeError::Io(std::io::Error::other("a\nb"));
        assert!(!e.short().contains('\n'));
    }
}

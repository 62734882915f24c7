//! RFC 1929 username/password sub-negotiation.

use super::check_version;
use crate::addr::MAX_FIELD;
use crate::reader::{need, Reader};
use crate::WireError;

/// The RFC 1929 sub-negotiation version byte.
pub const USERPASS_VERSION: u8 = 1;

/// Client credentials: `VER=01 | ULEN | UNAME | PLEN | PASSWD`.
///
/// Empty fields are accepted when decoding (RFC 1929 says 1..255, but some
/// clients send an empty password; the server's check then rejects them).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserPassRequest {
    /// UNAME bytes (at most 255).
    pub username: Vec<u8>,
    /// PASSWD bytes (at most 255).
    pub password: Vec<u8>,
}

impl std::fmt::Debug for UserPassRequest {
    // The password never reaches logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPassRequest")
            .field("username", &String::from_utf8_lossy(&self.username))
            .field("password", &"<redacted>")
            .finish()
    }
}

impl UserPassRequest {
    /// Decodes one credentials message; `Ok(None)` if more bytes are needed.
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, WireError> {
        let mut r = Reader::new(buf);
        check_version(need!(r.u8()), USERPASS_VERSION)?;
        let ulen = need!(r.u8());
        let username = need!(r.take(usize::from(ulen))).to_vec();
        let plen = need!(r.u8());
        let password = need!(r.take(usize::from(plen))).to_vec();
        Ok(Some((UserPassRequest { username, password }, r.pos())))
    }

    /// Appends the encoding; each field is cut to its first 255 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(USERPASS_VERSION);
        push_field(out, &self.username);
        push_field(out, &self.password);
    }
}

/// Appends `LEN | BYTES`, keeping at most 255 bytes.
fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    let field = field.get(..MAX_FIELD).unwrap_or(field);
    out.push(u8::try_from(field.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(field);
}

/// Server verdict: `VER=01 | STATUS`; 00 is success, anything else failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserPassReply {
    /// STATUS byte.
    pub status: u8,
}

impl UserPassReply {
    /// STATUS of a successful authentication.
    pub const SUCCESS: u8 = 0;
    /// STATUS we send on failure (any non-zero value means failure).
    pub const FAILURE: u8 = 1;

    /// Whether STATUS is 00.
    pub fn is_success(&self) -> bool {
        self.status == Self::SUCCESS
    }

    /// Decodes one verdict; `Ok(None)` if more bytes are needed.
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, WireError> {
        let mut r = Reader::new(buf);
        check_version(need!(r.u8()), USERPASS_VERSION)?;
        let status = need!(r.u8());
        Ok(Some((UserPassReply { status }, r.pos())))
    }

    /// Appends the encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[USERPASS_VERSION, self.status]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_decode_rfc1929_layout() {
        let buf = [1, 3, b'b', b'o', b'b', 2, b'p', b'w', 5];
        let (req, n) = UserPassRequest::decode(&buf).unwrap().unwrap();
        assert_eq!(n, 8);
        assert_eq!(req.username, b"bob");
        assert_eq!(req.password, b"pw");
        let mut out = Vec::new();
        req.encode(&mut out);
        assert_eq!(out, &buf[..8]);
        for k in 0..8 {
            assert_eq!(UserPassRequest::decode(&buf[..k]), Ok(None), "prefix {k}");
        }
    }

    #[test]
    fn credentials_with_socks5_version_byte_are_rejected() {
        assert_eq!(
            UserPassRequest::decode(&[5, 1, b'a']),
            Err(WireError::BadVersion(5))
        );
    }

    #[test]
    fn empty_password_is_accepted() {
        assert_eq!(
            UserPassRequest::decode(&[1, 1, b'a', 0]),
            Ok(Some((
                UserPassRequest {
                    username: b"a".to_vec(),
                    password: vec![]
                },
                4
            )))
        );
    }

    #[test]
    fn debug_output_hides_the_password() {
        let req = UserPassRequest {
            username: b"bob".to_vec(),
            password: b"hunter2".to_vec(),
        };
        let s = format!("{req:?}");
        assert!(s.contains("bob") && !s.contains("hunter2"), "{s}");
    }

    #[test]
    fn verdict_decodes_success_and_failure() {
        let ok = UserPassReply::decode(&[1, 0]).unwrap().unwrap();
        assert_eq!(ok, (UserPassReply { status: 0 }, 2));
        assert!(ok.0.is_success());
        let bad = UserPassReply::decode(&[1, 0xff, 0]).unwrap().unwrap().0;
        assert!(!bad.is_success());
        assert_eq!(UserPassReply::decode(&[1]), Ok(None));
        assert_eq!(
            UserPassReply::decode(&[5, 0]),
            Err(WireError::BadVersion(5))
        );
        let mut out = Vec::new();
        UserPassReply {
            status: UserPassReply::FAILURE,
        }
        .encode(&mut out);
        assert_eq!(out, [1, 1]);
    }
}

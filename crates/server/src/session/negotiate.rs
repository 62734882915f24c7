//! Negotiation, one function per protocol phase: the first bytes (which SOCKS version),
//! the SOCKS5 greeting, method selection, the method's sub-negotiation, then the request.
//! SOCKS4 has no greeting or methods: its one message is the request.
//!
//! Method selection is Dante's (`selectmethod()`): the matched client rule's `socksmethod`
//! list, else the global one, in the server's order; the first the client offered wins.
//! `username`, `pam.username` and `hasocks.passwordfile` need 0x02; `pam.any` and
//! `pam.address` take 0x02 if offered, else 0x00; `gssapi` needs 0x01 (RFC 1961, in
//! [`super::gssapi`]); nothing matches: `05 FF`.

use hasocks_conf::sockd::Method;
use hasocks_socks_wire::v4;
use hasocks_socks_wire::v5::{self, ReplyCode, UserPassReply, UserPassRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::auth::{Outcome, PAM_ADDRESS_USER};
use super::identity::{Authed, Identity};
use super::wire_io::{read_msg, Decoder, ReadError};
use super::{Request, Session, Version};
use crate::rules::CompiledRule;
use hasocks_conf::sockd::Command;

/// Why negotiation ended without a request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NegError {
    /// Reading a message failed; the version is known once the first byte was read.
    #[error("{0}")]
    Read(ReadError, Option<Version>),
    /// The first byte is neither 4 nor 5.
    #[error("unknown SOCKS version {0}")]
    BadVersion(u8),
    /// No offered method is enabled (the client got `05 FF`).
    #[error("client offered no acceptable authentication method")]
    NoMethod,
    /// SOCKS4 needs method `none` (or ours, `hasocks.socks4userid`).
    #[error("SOCKS4 refused: socksmethod none is not enabled")]
    V4NoMethod,
    /// The RFC 1929 message is malformed (the client got `01 01`).
    #[error("malformed username/password sub-negotiation: {0}")]
    BadUserPass(ReadError),
    /// The password check failed (the client got `01 01`, or no reply for 0x00).
    #[error("{0}")]
    AuthFailed(String),
    /// `timeout.negotiate` ran out.
    #[error("no request within timeout.negotiate ({0} s)")]
    Timeout(u32),
    /// Closed to make room for newer connections (hasocks.maxconn.negotiating).
    #[error(
        "evicted: the oldest of too many connections negotiating (hasocks.maxconn.negotiating)"
    )]
    Evicted,
}

impl NegError {
    /// Its reason, as an index into `stats::NEGOTIATION_FAILURES`.
    pub(crate) fn counted_as(&self) -> usize {
        match self {
            NegError::Timeout(_) => 0,
            NegError::Read(ReadError::Eof, _) => 1,
            NegError::BadVersion(_) => 2,
            NegError::NoMethod | NegError::V4NoMethod => 3,
            NegError::AuthFailed(_) | NegError::BadUserPass(_) => 4,
            NegError::Read(..) => 5,
            NegError::Evicted => 6,
        }
    }

    /// The reply to send before closing, if any (version known and the protocol has one).
    pub(crate) fn reply(&self) -> Option<(Version, ReplyCode)> {
        match self {
            NegError::Read(ReadError::Wire(w), Some(v)) => Some((*v, w.reply_code())),
            NegError::V4NoMethod => Some((Version::V4, ReplyCode::NotAllowed)),
            _ => None,
        }
    }

    /// Whether it is an authentication failure (always logged, and counted).
    pub(crate) fn is_auth(&self) -> bool {
        matches!(
            self,
            NegError::AuthFailed(_) | NegError::BadUserPass(_) | NegError::NoMethod
        )
    }
}

/// A connection being negotiated: the socket, the bytes read but not used yet, and how
/// many bytes were read in all.
pub(crate) struct Conn<'a> {
    /// The client socket.
    pub stream: &'a mut TcpStream,
    /// Read, not yet consumed.
    pub buf: &'a mut Vec<u8>,
    /// Bytes read so far.
    pub read: &'a mut usize,
}

impl Conn<'_> {
    async fn msg<M>(&mut self, decode: Decoder<M>) -> Result<M, ReadError> {
        read_msg(self.stream, self.buf, self.read, decode).await
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), NegError> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| NegError::Read(ReadError::Io(e), None))
    }
}

/// Runs every phase up to a request the rules can judge. `crule` is the client rule that
/// admitted the connection with `clientmethod`.
pub(crate) async fn negotiate_request(
    c: &mut Conn<'_>,
    sess: &Session,
    crule: &CompiledRule,
    clientmethod: Method,
) -> Result<Request, NegError> {
    let rt = &sess.rt;
    let methods = if crule.socksmethods.is_empty() {
        &rt.socksmethods
    } else {
        &crule.socksmethods
    };
    match first_bytes(c).await? {
        v4::VERSION => v4_request(c, methods, clientmethod).await,
        v5::VERSION => {
            let offered = v5_greeting(c).await?;
            let selected = select_method(methods, &offered);
            let wire = selected.map(|(_, w)| w);
            send_selection(c, wire).await?;
            let Some((method, wire)) = selected else {
                return Err(NegError::NoMethod);
            };
            let identity = subnegotiate(c, sess, crule, method, wire, clientmethod).await?;
            v5_request(c, identity).await
        }
        other => Err(NegError::BadVersion(other)),
    }
}

/// Reads until at least one byte is there and returns the version byte.
async fn first_bytes(c: &mut Conn<'_>) -> Result<u8, NegError> {
    while c.buf.is_empty() {
        let mut first = [0u8; 512];
        let n = c
            .stream
            .read(&mut first)
            .await
            .map_err(|e| NegError::Read(ReadError::Io(e), None))?;
        if n == 0 {
            return Err(NegError::Read(ReadError::Eof, None));
        }
        *c.read += n;
        c.buf.extend_from_slice(first.get(..n).unwrap_or_default());
    }
    hasocks_socks_wire::peek_version(c.buf).ok_or(NegError::Read(ReadError::Eof, None))
}

/// The SOCKS4/4a request: the whole negotiation of that protocol. It gets method `none`
/// when that is enabled, else `hasocks.socks4userid` (its USERID is then the user name).
async fn v4_request(
    c: &mut Conn<'_>,
    methods: &[Method],
    clientmethod: Method,
) -> Result<Request, NegError> {
    let r = c
        .msg(v4::Request::decode)
        .await
        .map_err(|e| NegError::Read(e, Some(Version::V4)))?;
    let authed = if methods.contains(&Method::None) {
        Authed {
            method: Method::None,
            user: None,
            clientmethod,
        }
    } else if methods.contains(&Method::Socks4UserId) {
        Authed {
            method: Method::Socks4UserId,
            user: (!r.user_id.is_empty()).then(|| r.user_id.clone()),
            clientmethod,
        }
    } else {
        return Err(NegError::V4NoMethod);
    };
    let command = match r.command {
        v4::Command::Connect => Command::Connect,
        v4::Command::Bind => Command::Bind,
    };
    Ok(Request {
        version: Version::V4,
        command,
        target: r.target(),
        pending: std::mem::take(c.buf),
        identity: Identity::Known(authed),
    })
}

/// The SOCKS5 greeting: the methods the client offers.
async fn v5_greeting(c: &mut Conn<'_>) -> Result<Vec<u8>, NegError> {
    let g = c
        .msg(v5::Greeting::decode)
        .await
        .map_err(|e| NegError::Read(e, None))?;
    Ok(g.methods)
}

/// The method and its wire number, or None for `05 FF` (Dante's `selectmethod()`).
pub(crate) fn select_method(methods: &[Method], offered: &[u8]) -> Option<(Method, u8)> {
    let has = |w: u8| offered.contains(&w);
    methods.iter().find_map(|m| {
        let wire = match m {
            Method::None => has(v5::method::NONE).then_some(v5::method::NONE),
            Method::Username | Method::PamUsername | Method::PasswordFile => {
                has(v5::method::USERPASS).then_some(v5::method::USERPASS)
            }
            Method::PamAny | Method::PamAddress => [v5::method::USERPASS, v5::method::NONE]
                .into_iter()
                .find(|w| has(*w)),
            Method::Socks4UserId => None,
            Method::Gssapi => has(v5::method::GSSAPI).then_some(v5::method::GSSAPI),
        }?;
        Some((*m, wire))
    })
}

/// Sends the method selection (`05 FF` when `method` is None).
async fn send_selection(c: &mut Conn<'_>, method: Option<u8>) -> Result<(), NegError> {
    let mut out = Vec::with_capacity(2);
    v5::MethodSelection {
        method: method.unwrap_or(v5::method::NO_ACCEPTABLE),
    }
    .encode(&mut out);
    c.send(&out).await
}

/// The selected method's sub-negotiation: RFC 1929 for 0x02, an address-only PAM check for
/// `pam.address`/`pam.any` on 0x00, nothing for `none`.
async fn subnegotiate(
    c: &mut Conn<'_>,
    sess: &Session,
    crule: &CompiledRule,
    method: Method,
    wire: u8,
    clientmethod: Method,
) -> Result<Identity, NegError> {
    if method == Method::Gssapi {
        let id = super::gssapi::negotiate(c, &crule.gssapi, clientmethod).await;
        // server_auth_successes / server_auth_failures count GSS-API's verdicts too.
        sess.rt.shared.verifier.stats().count(id.is_ok());
        let id = id?;
        // Known from here on: a failure after this point logs the principal.
        if let Some(a) = id.known() {
            let _ = sess.auth.set(a.clone());
        }
        return Ok(id);
    }
    let rt = &sess.rt;
    let verifier = &rt.shared.verifier;
    let rhost = sess.client.ip();
    if wire != v5::method::USERPASS {
        let Some(db) = rt.db(method, &crule.pam_service) else {
            return Ok(Identity::Known(Authed {
                method,
                user: None,
                clientmethod,
            }));
        };
        return match verifier
            .check(&db, PAM_ADDRESS_USER.as_bytes(), b"", rhost)
            .await
        {
            Outcome::Pass => Ok(Identity::Known(Authed {
                method,
                user: None,
                clientmethod,
            })),
            Outcome::Fail(why) => Err(NegError::AuthFailed(why)),
        };
    }
    let creds = match c.msg(UserPassRequest::decode).await {
        Ok(r) => r,
        Err(e) => {
            if matches!(e, ReadError::Wire(_)) {
                let _ = status(c, UserPassReply::FAILURE).await;
            }
            return Err(NegError::BadUserPass(e));
        }
    };
    if !rt.single_password_db {
        // Several databases: the socks rule's method decides later (Dante's behaviour,
        // with its caveat for clients that cache the answer).
        status(c, UserPassReply::SUCCESS).await?;
        return Ok(Identity::Unchecked {
            user: creds.username.clone(),
            password: creds.password.clone(),
            clientmethod,
            tried: Vec::new(),
        });
    }
    let out = match rt.db(method, &crule.pam_service) {
        Some(db) => {
            verifier
                .check(&db, &creds.username, &creds.password, rhost)
                .await
        }
        None => Outcome::Fail(format!("method {} has no password database", method.word())),
    };
    match out {
        Outcome::Pass => {
            status(c, UserPassReply::SUCCESS).await?;
            sess.keep_password(&creds.password);
            Ok(Identity::Known(Authed {
                method,
                user: Some(creds.username.clone()),
                clientmethod,
            }))
        }
        Outcome::Fail(why) => {
            let _ = status(c, UserPassReply::FAILURE).await;
            Err(NegError::AuthFailed(why))
        }
    }
}

/// Sends the RFC 1929 reply `01 STATUS`.
async fn status(c: &mut Conn<'_>, status: u8) -> Result<(), NegError> {
    let mut out = Vec::with_capacity(2);
    UserPassReply { status }.encode(&mut out);
    c.send(&out).await
}

/// The SOCKS5 request.
async fn v5_request(c: &mut Conn<'_>, identity: Identity) -> Result<Request, NegError> {
    let r = match super::gssapi::protected() {
        Some(p) => p.read_request(c).await,
        None => c.msg(v5::Request::decode).await,
    }
    .map_err(|e| NegError::Read(e, Some(Version::V5)))?;
    let command = match r.command {
        v5::Command::Connect => Command::Connect,
        v5::Command::Bind => Command::Bind,
        v5::Command::UdpAssociate => Command::UdpAssociate,
    };
    Ok(Request {
        version: Version::V5,
        command,
        target: r.target,
        pending: std::mem::take(c.buf),
        identity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_follows_the_servers_order_among_what_the_client_offers() {
        use Method::*;
        assert_eq!(
            select_method(&[Username, None], &[0, 2]),
            Some((Username, 2))
        );
        assert_eq!(select_method(&[None, Username], &[0, 2]), Some((None, 0)));
        assert_eq!(select_method(&[Username, None], &[0]), Some((None, 0)));
        assert_eq!(select_method(&[Username], &[0]), Option::None);
        assert_eq!(select_method(&[PamAny], &[0, 2]), Some((PamAny, 2)));
        assert_eq!(select_method(&[PamAddress], &[0]), Some((PamAddress, 0)));
        assert_eq!(select_method(&[PamUsername], &[0, 1]), Option::None);
        assert_eq!(select_method(&[Socks4UserId], &[0, 2]), Option::None);
        assert_eq!(select_method(&[], &[0, 2]), Option::None);
        assert_eq!(select_method(&[Gssapi, None], &[0, 1]), Some((Gssapi, 1)));
        assert_eq!(select_method(&[Gssapi], &[0, 2]), Option::None);
    }
}

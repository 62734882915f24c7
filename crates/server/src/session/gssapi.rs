//! Method `gssapi` (RFC 1961): the context establishment with the client's Kerberos ticket,
//! then the protection-level subnegotiation. The client's principal becomes the session's
//! user name. A level other than `clear` leaves a [`Protect`] in the session's task-local
//! slot: from then on every SOCKS message and every byte of data is encapsulated
//! ([`super::encap`]), which `reply::send` and `reply_and_relay` consult.
//!
//! Failures (a ticket for another key, an expired ticket, a replayed token, a malformed
//! frame) get the abort message `01 FF`, then the connection is closed and the client rule's
//! line logs why, in the GSS-API library's words.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use hasocks_conf::sockd::{
    GssEnctypes, Gssapi, Method, DEFAULT_GSSAPI_KEYTAB, DEFAULT_GSSAPI_SERVICE,
};
use hasocks_socks_wire::gssapi::{encode_token, Frame, MessageType, ProtectionLevel};
use hasocks_syslib::gssapi::{Context, Credential, GssError, Step};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) use super::encap::Protect;
use super::identity::{Authed, Identity};
use super::negotiate::{Conn, NegError};
use super::wire_io::ReadError;

tokio::task_local! {
    /// The session's per-message protection, once negotiated (one slot per session task).
    static PROTECTED: OnceLock<Arc<Protect>>;
}

/// Runs `session` with an empty protection slot (what [`protected`] reads).
/// A plain function, not an `async fn`: an async wrapper would hold `session` twice (as its
/// argument and inside the scope), doubling every session task's allocation.
pub(crate) fn scope<F: std::future::Future>(
    session: F,
) -> impl std::future::Future<Output = F::Output> {
    PROTECTED.scope(OnceLock::new(), session)
}

/// The session's per-message protection, if it negotiated one.
pub(crate) fn protected() -> Option<Arc<Protect>> {
    PROTECTED.try_with(|p| p.get().cloned()).ok().flatten()
}

/// Acceptor credentials by (service, keytab), acquired once: the library reads the keytab
/// again at each accept, so a rotated key is still seen.
static CREDS: Mutex<Option<Creds>> = Mutex::new(None);

/// Credentials by (service, keytab).
type Creds = HashMap<(String, String), Arc<Credential>>;

fn credential(g: &Gssapi) -> Result<Arc<Credential>, GssError> {
    let service = g.servicename.as_deref().unwrap_or(DEFAULT_GSSAPI_SERVICE);
    let keytab = g.keytab.as_deref().unwrap_or(DEFAULT_GSSAPI_KEYTAB);
    let key = (service.to_string(), keytab.to_string());
    let mut creds = CREDS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = creds.get_or_insert_with(HashMap::new).get(&key) {
        return Ok(c.clone());
    }
    let c = Arc::new(Credential::acceptor(service, Some(keytab))?);
    creds
        .get_or_insert_with(HashMap::new)
        .insert(key, c.clone());
    Ok(c)
}

/// The level the server answers to `asked`, or None to refuse: what was asked if allowed;
/// `selective` (and a level not allowed) get the strongest allowed one that protects;
/// `clear` only when asked for and allowed (Dante's `gssapi.enctype`).
pub(crate) fn choose(asked: ProtectionLevel, allowed: GssEnctypes) -> Option<ProtectionLevel> {
    use ProtectionLevel::*;
    let ok = |l: ProtectionLevel| match l {
        Clear => allowed.clear,
        Integrity => allowed.integrity,
        Confidentiality => allowed.confidentiality,
        Selective => false,
    };
    if ok(asked) {
        return Some(asked);
    }
    if asked == Clear {
        return None;
    }
    [Confidentiality, Integrity].into_iter().find(|l| ok(*l))
}

/// The whole method after `05 01`: establishment, then the protection level.
pub(crate) async fn negotiate(
    c: &mut Conn<'_>,
    g: &Gssapi,
    clientmethod: Method,
) -> Result<Identity, NegError> {
    let result = establish_and_protect(c, g).await;
    match result {
        Ok((principal, protect)) => {
            if let Some(p) = protect {
                let _ = PROTECTED.try_with(|slot| slot.set(p));
            }
            Ok(Identity::Known(Authed {
                method: Method::Gssapi,
                user: Some(principal.into_bytes()),
                clientmethod,
            }))
        }
        Err(e) => {
            // RFC 1961: the abort message, then close.
            let _ = c.stream.write_all(&[1, 0xff]).await;
            Err(e)
        }
    }
}

fn failed(what: impl std::fmt::Display) -> NegError {
    NegError::AuthFailed(format!("gssapi: {what}"))
}

async fn establish_and_protect(
    c: &mut Conn<'_>,
    g: &Gssapi,
) -> Result<(String, Option<Arc<Protect>>), NegError> {
    let cred = credential(g).map_err(|e| failed(format_args!("no acceptor credential: {e}")))?;
    let mut ctx = Context::accept();
    loop {
        let token = match read_frame(c).await? {
            Frame::Token {
                kind: MessageType::Authentication,
                token,
            } => token,
            Frame::Abort => return Err(failed("client aborted the context establishment")),
            Frame::Token { kind, .. } => {
                return Err(failed(format_args!(
                    "expected a context token, got message type {}",
                    kind.as_u8()
                )))
            }
        };
        let cred = cred.clone();
        let (back, step) = tokio::task::spawn_blocking(move || {
            let step = ctx.accept_step(Some(&cred), &token);
            (ctx, step)
        })
        .await
        .map_err(|_| failed("the GSS-API call did not finish"))?;
        ctx = back;
        let mut out = Vec::new();
        match step.map_err(failed)? {
            Step::Continue(t) => {
                encode_token(MessageType::Authentication, &t, &mut out);
                send(c, &out).await?;
            }
            Step::Done(t) => {
                // RFC 1961 section 3: the last token too, even when empty is not sent.
                if !t.is_empty() {
                    encode_token(MessageType::Authentication, &t, &mut out);
                    send(c, &out).await?;
                }
                break;
            }
        }
    }
    let principal = ctx.peer().unwrap_or_default().to_string();
    // The protection level: wrapped, or one bare octet from a NEC-style client.
    let mut token = match read_frame(c).await? {
        Frame::Token {
            kind: MessageType::Protection,
            token,
        } => token,
        Frame::Abort => return Err(failed(format_args!("{principal}: client aborted"))),
        Frame::Token { kind, .. } => {
            return Err(failed(format_args!(
                "{principal}: expected the protection level, got message type {}",
                kind.as_u8()
            )))
        }
    };
    let nec = token.len() == 1;
    let level_octet = if nec {
        token
    } else {
        let mut plain = Vec::new();
        ctx.unwrap(&mut token, &mut plain)
            .map_err(|e| failed(format_args!("{principal}: protection level: {e}")))?;
        plain
    };
    let asked = ProtectionLevel::from_token(&level_octet)
        .map_err(|e| failed(format_args!("{principal}: {e}")))?;
    let allowed = g.enctype.unwrap_or_default();
    let Some(level) = choose(asked, allowed) else {
        return Err(failed(format_args!(
            "{principal}: client asked for protection level {}, gssapi.enctype allows {}",
            asked.word(),
            allowed.words().join(" ")
        )));
    };
    let mut answer = Vec::new();
    if nec {
        answer.push(level.as_u8());
    } else {
        ctx.wrap(false, &[level.as_u8()], &mut answer)
            .map_err(|e| failed(format_args!("{principal}: {e}")))?;
    }
    let mut out = Vec::new();
    encode_token(MessageType::Protection, &answer, &mut out);
    send(c, &out).await?;
    let protect = if level.encapsulates() {
        let p = Protect::new(ctx, level).map_err(|e| failed(format_args!("{principal}: {e}")))?;
        Some(Arc::new(p))
    } else {
        None
    };
    Ok((principal, protect))
}

async fn send(c: &mut Conn<'_>, bytes: &[u8]) -> Result<(), NegError> {
    c.stream
        .write_all(bytes)
        .await
        .map_err(|e| NegError::Read(ReadError::Io(e), None))
}

/// Reads one RFC 1961 message (tokens are up to 64 KiB: a Kerberos ticket with a large PAC
/// is tens of KiB).
async fn read_frame(c: &mut Conn<'_>) -> Result<Frame, NegError> {
    read_frame_from(c.stream, c.buf, c.read)
        .await
        .map_err(|e| NegError::Read(e, None))
}

/// [`read_frame`] on parts: consumed bytes leave `buf`, the rest stays.
pub(crate) async fn read_frame_from(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    read: &mut usize,
) -> Result<Frame, ReadError> {
    loop {
        if let Some((f, used)) = Frame::decode(buf)? {
            buf.drain(..used);
            return Ok(f);
        }
        let mut chunk = vec![0u8; 16 * 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(ReadError::Eof);
        }
        *read += n;
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProtectionLevel::*;

    fn allow(clear: bool, integrity: bool, confidentiality: bool) -> GssEnctypes {
        GssEnctypes {
            clear,
            integrity,
            confidentiality,
        }
    }

    #[test]
    fn the_asked_level_is_answered_when_allowed() {
        let all = allow(true, true, true);
        for l in [Clear, Integrity, Confidentiality] {
            assert_eq!(choose(l, all), Some(l));
        }
    }

    #[test]
    fn clear_is_refused_unless_allowed_as_dante_does_by_default() {
        assert_eq!(choose(Clear, GssEnctypes::default()), None);
        assert_eq!(choose(Clear, allow(true, false, false)), Some(Clear));
    }

    #[test]
    fn selective_and_disallowed_levels_get_the_strongest_allowed() {
        assert_eq!(
            choose(Selective, GssEnctypes::default()),
            Some(Confidentiality)
        );
        assert_eq!(
            choose(Integrity, allow(false, false, true)),
            Some(Confidentiality)
        );
        assert_eq!(
            choose(Confidentiality, allow(true, true, false)),
            Some(Integrity)
        );
        assert_eq!(choose(Integrity, allow(true, false, false)), None);
    }
}

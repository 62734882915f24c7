//! The end-to-end check with GSS-API authentication (RFC 1961): a keytab's principal gets a
//! ticket for the server's service, establishes the context, asks for per-message integrity,
//! then sends the CONNECT and the probe bytes encapsulated, as a Kerberos client would. A pool
//! that only accepts `gssapi` is then checked end to end like any other.

use std::net::SocketAddr;
use std::time::Duration;

use hasocks_socks_wire::gssapi::{encode_token, Frame, MessageType, ProtectionLevel};
use hasocks_socks_wire::v5::{self, method, Command, Greeting, MethodSelection};
use hasocks_socks_wire::{TargetAddr, WireError};
use hasocks_syslib::gssapi::{Context, Credential, Step};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::e2e::PROBE_BYTES;
use crate::{fill_random, ProbeError};

/// Who the check authenticates as, and to which service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GssAuth {
    /// The client keytab (`FILE:/etc/hasocks/probe.keytab`).
    pub keytab: String,
    /// The principal whose key it holds (`probe@EXAMPLE.COM`).
    pub principal: String,
    /// The server's service (`rcmd@proxy.example.com`, or a principal).
    pub service: String,
}

/// [`crate::end_to_end_via`] with GSS-API: the connection through `proxy` to the shared
/// rendezvous, probe bytes both ways, all of it encapsulated at the integrity level.
pub async fn end_to_end_via_gss(
    rv: &crate::Rendezvous,
    proxy: SocketAddr,
    gss: &GssAuth,
    timeout: Duration,
    preamble: &[u8],
) -> Result<Duration, ProbeError> {
    let start = Instant::now();
    let deadline = start + timeout;
    let (mut up, mut down) = ([0u8; PROBE_BYTES], [0u8; PROBE_BYTES]);
    fill_random(&mut up);
    fill_random(&mut down);
    let mut waiter = rv.expect(up);
    let mut s = timeout_at(deadline, TcpStream::connect(proxy))
        .await
        .map_err(|_| ProbeError::Timeout("connect"))?
        .map_err(ProbeError::Connect)?;
    s.set_nodelay(true).map_err(ProbeError::Io)?;
    if !preamble.is_empty() {
        write(&mut s, preamble, deadline).await?;
    }
    let mut c = Gss {
        s,
        buf: Vec::new(),
        deadline,
    };
    let mut ctx = c.authenticate(gss).await?;
    let mut req = Vec::new();
    v5::Request {
        command: Command::Connect,
        target: TargetAddr::Ip(rv.local_addr()),
    }
    .encode(&mut req);
    c.send_wrapped(&mut ctx, &req).await?;
    let reply = c.recv_wrapped(&mut ctx).await?;
    match v5::Reply::decode(&reply) {
        Ok(Some((r, _))) if r.code == 0 => {}
        Ok(Some((r, _))) => return Err(ProbeError::Rejected(r.code)),
        _ => return Err(ProbeError::Protocol("malformed encapsulated reply".into())),
    }
    c.send_wrapped(&mut ctx, &up).await?;
    let mut inbound = timeout_at(deadline, waiter.arrive())
        .await
        .ok()
        .flatten()
        .ok_or(ProbeError::NoInbound)?;
    write(&mut inbound, &down, deadline).await?;
    let mut got = Vec::new();
    while got.len() < PROBE_BYTES {
        got.extend(c.recv_wrapped(&mut ctx).await?);
    }
    if got != down {
        return Err(ProbeError::DataMismatch);
    }
    Ok(start.elapsed())
}

async fn write(s: &mut TcpStream, bytes: &[u8], deadline: Instant) -> Result<(), ProbeError> {
    timeout_at(deadline, s.write_all(bytes))
        .await
        .map_err(|_| ProbeError::Timeout("data"))?
        .map_err(ProbeError::Io)
}

fn gss_failed(e: impl std::fmt::Display) -> ProbeError {
    ProbeError::Protocol(format!("gssapi: {e}"))
}

/// A connection to the proxy and the bytes read from it but not used yet.
struct Gss {
    s: TcpStream,
    buf: Vec<u8>,
    deadline: Instant,
}

impl Gss {
    async fn read_more(&mut self, what: &'static str) -> Result<(), ProbeError> {
        let mut chunk = vec![0u8; 16 * 1024];
        let n = timeout_at(self.deadline, self.s.read(&mut chunk))
            .await
            .map_err(|_| ProbeError::Timeout(what))?
            .map_err(ProbeError::Io)?;
        if n == 0 {
            return Err(ProbeError::Protocol(format!("proxy closed during {what}")));
        }
        self.buf
            .extend_from_slice(chunk.get(..n).unwrap_or_default());
        Ok(())
    }

    async fn frame(&mut self, what: &'static str) -> Result<(MessageType, Vec<u8>), ProbeError> {
        loop {
            match Frame::decode(&self.buf) {
                Ok(Some((f, used))) => {
                    self.buf.drain(..used);
                    return match f {
                        Frame::Token { kind, token } => Ok((kind, token)),
                        Frame::Abort => Err(ProbeError::AuthFailed(0xff)),
                    };
                }
                Ok(None) => self.read_more(what).await?,
                Err(e) => return Err(ProbeError::Protocol(e.to_string())),
            }
        }
    }

    async fn send_frame(&mut self, kind: MessageType, token: &[u8]) -> Result<(), ProbeError> {
        let mut out = Vec::new();
        encode_token(kind, token, &mut out);
        write(&mut self.s, &out, self.deadline).await
    }

    /// Greeting (GSSAPI only), the context, the integrity level.
    async fn authenticate(&mut self, gss: &GssAuth) -> Result<Context, ProbeError> {
        let mut out = Vec::new();
        Greeting {
            methods: vec![method::GSSAPI],
        }
        .encode(&mut out);
        write(&mut self.s, &out, self.deadline).await?;
        while MethodSelection::decode(&self.buf)
            .map_err(|e| ProbeError::Protocol(e.to_string()))?
            .is_none()
        {
            self.read_more("method selection").await?;
        }
        let sel = self.buf.drain(..2).collect::<Vec<_>>();
        match sel.get(1).copied() {
            Some(method::GSSAPI) => {}
            Some(method::NO_ACCEPTABLE) => return Err(ProbeError::NoAcceptableMethod),
            other => {
                return Err(ProbeError::Protocol(format!(
                    "proxy selected method {other:02x?}, offered only 01"
                )))
            }
        }
        // The library may ask the KDC for tickets: off the async threads.
        let g = gss.clone();
        let (mut ctx, cred, mut step) = tokio::task::spawn_blocking(move || {
            let ccache = format!("MEMORY:hasocks-probe-{}", g.principal);
            let cred = Credential::initiator(Some(&g.principal), Some(&g.keytab), Some(&ccache))?;
            let mut ctx = Context::initiate(&g.service)?;
            let step = ctx.init_step(Some(&cred), None)?;
            Ok::<_, hasocks_syslib::gssapi::GssError>((ctx, cred, step))
        })
        .await
        .map_err(|_| gss_failed("the GSS-API call did not finish"))?
        .map_err(gss_failed)?;
        loop {
            let token = match &step {
                Step::Continue(t) | Step::Done(t) => t.clone(),
            };
            if !token.is_empty() {
                self.send_frame(MessageType::Authentication, &token).await?;
            }
            if matches!(step, Step::Done(_)) {
                break;
            }
            let (kind, answer) = self.frame("context establishment").await?;
            if kind != MessageType::Authentication {
                return Err(ProbeError::Protocol("expected a context token".into()));
            }
            step = ctx
                .init_step(Some(&cred), Some(&answer))
                .map_err(gss_failed)?;
        }
        let mut level = Vec::new();
        ctx.wrap(false, &[ProtectionLevel::Integrity.as_u8()], &mut level)
            .map_err(gss_failed)?;
        self.send_frame(MessageType::Protection, &level).await?;
        let (kind, mut answer) = self.frame("protection level").await?;
        let mut plain = Vec::new();
        if kind != MessageType::Protection {
            return Err(ProbeError::Protocol("expected the protection level".into()));
        }
        ctx.unwrap(&mut answer, &mut plain).map_err(gss_failed)?;
        match ProtectionLevel::from_token(&plain) {
            Ok(ProtectionLevel::Integrity | ProtectionLevel::Confidentiality) => Ok(ctx),
            Ok(l) => Err(ProbeError::Protocol(format!(
                "proxy granted protection level {}, asked for integrity",
                l.word()
            ))),
            Err(e) => Err(ProbeError::Protocol(e.to_string())),
        }
    }

    async fn send_wrapped(&mut self, ctx: &mut Context, data: &[u8]) -> Result<(), ProbeError> {
        let mut token = Vec::new();
        ctx.wrap(false, data, &mut token).map_err(gss_failed)?;
        self.send_frame(MessageType::Encapsulation, &token).await
    }

    async fn recv_wrapped(&mut self, ctx: &mut Context) -> Result<Vec<u8>, ProbeError> {
        let (kind, mut token) = self.frame("data").await?;
        if kind != MessageType::Encapsulation {
            return Err(ProbeError::Protocol(
                WireError::BadMessageType(kind.as_u8()).to_string(),
            ));
        }
        let mut plain = Vec::new();
        ctx.unwrap(&mut token, &mut plain).map_err(gss_failed)?;
        Ok(plain)
    }
}

//! RFC 1961 per-message protection after the `gssapi` method: the SOCKS request and reply
//! and every later byte travel as `01 03 LEN gss_wrap(data)` messages. Such sessions cannot
//! be spliced, so they run on a copy loop that wraps what it read from the far side in
//! batches (one read, split into the largest pieces a token takes, one write of all the
//! messages) and unwraps every whole message the client's bytes hold before writing once.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hasocks_net::copy::{CopyOpts, CopyReport, EndReason};
use hasocks_socks_wire::gssapi::{Frame, MessageType, ProtectionLevel, HEADER_LEN, MAX_TOKEN};
use hasocks_socks_wire::v5;
use hasocks_syslib::gssapi::{Context, GssError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::negotiate::Conn;
use super::wire_io::ReadError;
use crate::limits::RuleState;

/// A session's protection: the context (locked only around a wrap or unwrap), the level,
/// and client bytes read past the request (still framed, and already unwrapped).
pub(crate) struct Protect {
    ctx: Mutex<Context>,
    /// The negotiated level (integrity or confidentiality).
    pub level: ProtectionLevel,
    /// The most plain bytes one message carries.
    chunk: usize,
    raw: Mutex<Vec<u8>>,
    plain: Mutex<Vec<u8>>,
}

impl Protect {
    /// The protection of an established context at `level`.
    pub(crate) fn new(ctx: Context, level: ProtectionLevel) -> Result<Self, GssError> {
        let conf = level == ProtectionLevel::Confidentiality;
        let max = u32::try_from(MAX_TOKEN).unwrap_or(u32::MAX);
        let chunk = usize::try_from(ctx.wrap_size_limit(conf, max)?)
            .unwrap_or(1)
            .max(1);
        Ok(Protect {
            ctx: Mutex::new(ctx),
            level,
            chunk,
            raw: Mutex::default(),
            plain: Mutex::default(),
        })
    }

    fn ctx(&self) -> std::sync::MutexGuard<'_, Context> {
        self.ctx.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `data` as encapsulation messages (as many as its size needs).
    pub(crate) fn wrap(&self, data: &[u8], out: &mut Vec<u8>) -> Result<(), GssError> {
        let conf = self.level == ProtectionLevel::Confidentiality;
        let mut ctx = self.ctx();
        for piece in data.chunks(self.chunk) {
            let at = out.len();
            out.extend_from_slice(&[
                hasocks_socks_wire::gssapi::VERSION,
                MessageType::Encapsulation.as_u8(),
                0,
                0,
            ]);
            ctx.wrap(conf, piece, out)?;
            let len = out.len() - at - HEADER_LEN;
            // wrap_size_limit promised a token of at most MAX_TOKEN bytes.
            let len = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
            if let Some(l) = out.get_mut(at + 2..at + 4) {
                l.copy_from_slice(&len);
            }
        }
        Ok(())
    }

    /// Unwraps every whole message at the front of `raw` into `plain`; returns the bytes
    /// used, and whether the client sent the abort message.
    fn unwrap_all(&self, raw: &mut [u8], plain: &mut Vec<u8>) -> Result<(usize, bool), Fault> {
        let mut at = 0;
        let mut ctx = self.ctx();
        loop {
            let rest = raw.get_mut(at..).unwrap_or_default();
            match Frame::locate(rest) {
                Ok(None) => return Ok((at, false)),
                Ok(Some((None, _, used))) => return Ok((at + used, true)),
                Ok(Some((Some(MessageType::Encapsulation), start, end))) => {
                    let token = rest.get_mut(start..end).unwrap_or_default();
                    ctx.unwrap(token, plain).map_err(Fault::Gss)?;
                    at += end;
                }
                Ok(Some((Some(kind), ..))) => {
                    return Err(Fault::Protocol(format!(
                        "message type {} where data was expected",
                        kind.as_u8()
                    )))
                }
                Err(e) => return Err(Fault::Protocol(e.to_string())),
            }
        }
    }

    /// Unwraps a UDP datagram from the client that is one encapsulation message (RFC 1961
    /// protects each datagram, SOCKS UDP header included) into `plain`; false when it is not
    /// one, or the token does not unwrap (the datagram is then dropped).
    pub(crate) fn unwrap_datagram(&self, dg: &mut [u8], plain: &mut Vec<u8>) -> bool {
        match Frame::locate(dg) {
            Ok(Some((Some(MessageType::Encapsulation), start, end))) if end == dg.len() => {
                let token = dg.get_mut(start..end).unwrap_or_default();
                self.ctx().unwrap_datagram(token, plain).is_ok()
            }
            _ => false,
        }
    }

    /// Writes `data` to the client encapsulated (the SOCKS reply).
    pub(crate) async fn send(&self, stream: &mut TcpStream, data: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(data.len() + 128);
        self.wrap(data, &mut out).map_err(io::Error::other)?;
        stream.write_all(&out).await
    }

    /// Reads the SOCKS5 request from encapsulated messages; what follows it stays here for
    /// the relay (framed bytes and unwrapped ones).
    pub(crate) async fn read_request(&self, c: &mut Conn<'_>) -> Result<v5::Request, ReadError> {
        let mut plain = Vec::new();
        loop {
            if let Some((req, used)) = v5::Request::decode(&plain)? {
                plain.drain(..used);
                *self.plain.lock().unwrap_or_else(|p| p.into_inner()) = plain;
                *self.raw.lock().unwrap_or_else(|p| p.into_inner()) = std::mem::take(c.buf);
                return Ok(req);
            }
            if plain.len() > 4096 {
                return Err(ReadError::Wire(hasocks_socks_wire::WireError::FieldTooLong));
            }
            match super::gssapi::read_frame_from(c.stream, c.buf, c.read).await? {
                Frame::Token {
                    kind: MessageType::Encapsulation,
                    mut token,
                } => {
                    self.ctx()
                        .unwrap(&mut token, &mut plain)
                        .map_err(io::Error::other)?;
                }
                Frame::Abort => return Err(ReadError::Eof),
                Frame::Token { kind, .. } => {
                    return Err(ReadError::Wire(
                        hasocks_socks_wire::WireError::BadMessageType(kind.as_u8()),
                    ))
                }
            }
        }
    }
}

/// Why an encapsulated relay stopped early.
enum Fault {
    Client,
    Far,
    Gss(GssError),
    Protocol(String),
}

/// Relays `client` (encapsulated) and `far` (plain) both ways until both sides closed, the
/// idle timeout or the cancel token; `early` are framed client bytes read before the relay
/// (BIND's wait). Returns the plain byte counts, and the GSS-API or framing reason when
/// that is what ended it.
pub(crate) async fn pump(
    p: &Protect,
    client: TcpStream,
    far: TcpStream,
    early: &[u8],
    opts: CopyOpts,
    buckets: Option<&[Arc<RuleState>]>,
) -> (CopyReport, Option<String>) {
    let started = Instant::now();
    let last = AtomicU64::new(0);
    let touch = || {
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        last.store(ms, Ordering::Relaxed);
    };
    let (up_bytes, down_bytes) = (AtomicU64::new(0), AtomicU64::new(0));
    let (mut cr, mut cw) = client.into_split();
    let (mut fr, mut fw) = far.into_split();
    let up = async {
        let mut raw = std::mem::take(&mut *p.raw.lock().unwrap_or_else(|e| e.into_inner()));
        raw.extend_from_slice(early);
        let mut plain = std::mem::take(&mut *p.plain.lock().unwrap_or_else(|e| e.into_inner()));
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let (used, aborted) = p.unwrap_all(&mut raw, &mut plain)?;
            raw.drain(..used);
            if !plain.is_empty() {
                if let Some(b) = buckets {
                    super::throttle::pay(b, plain.len()).await;
                }
                fw.write_all(&plain).await.map_err(|_| Fault::Far)?;
                up_bytes.fetch_add(plain.len() as u64, Ordering::Relaxed);
                plain.clear();
                touch();
            }
            if aborted {
                let _ = fw.shutdown().await;
                return Ok(());
            }
            let n = cr.read(&mut chunk).await.map_err(|_| Fault::Client)?;
            if n == 0 {
                let _ = fw.shutdown().await;
                return Ok(());
            }
            raw.extend_from_slice(chunk.get(..n).unwrap_or_default());
            touch();
        }
    };
    let down = async {
        let mut chunk = vec![0u8; 256 * 1024];
        let mut out = Vec::with_capacity(chunk.len() + 4096);
        loop {
            let n = fr.read(&mut chunk).await.map_err(|_| Fault::Far)?;
            if n == 0 {
                let _ = cw.shutdown().await;
                return Ok::<(), Fault>(());
            }
            if let Some(b) = buckets {
                super::throttle::pay(b, n).await;
            }
            out.clear();
            p.wrap(chunk.get(..n).unwrap_or_default(), &mut out)
                .map_err(Fault::Gss)?;
            cw.write_all(&out).await.map_err(|_| Fault::Client)?;
            down_bytes.fetch_add(n as u64, Ordering::Relaxed);
            touch();
        }
    };
    let idle = async {
        let Some(limit) = opts.idle_timeout else {
            return std::future::pending::<()>().await;
        };
        loop {
            let since = Duration::from_millis(last.load(Ordering::Relaxed));
            let quiet = started.elapsed().saturating_sub(since);
            if quiet >= limit {
                return;
            }
            tokio::time::sleep(limit - quiet).await;
        }
    };
    let cancel = async {
        match &opts.cancel {
            Some(t) => t.cancelled().await,
            None => std::future::pending().await,
        }
    };
    let (end, why) = tokio::select! {
        r = async { tokio::try_join!(up, down) } => match r {
            Ok(_) => (EndReason::Closed, None),
            Err(Fault::Client) => (EndReason::ErrorA, None),
            Err(Fault::Far) => (EndReason::ErrorB, None),
            Err(Fault::Gss(e)) => (EndReason::ErrorA, Some(format!("gssapi: {e}"))),
            Err(Fault::Protocol(m)) => (EndReason::ErrorA, Some(format!("gssapi: {m}"))),
        },
        _ = idle => (EndReason::IdleTimeout, None),
        _ = cancel => (EndReason::Cancelled, None),
    };
    let report = CopyReport {
        a_to_b: up_bytes.load(Ordering::Relaxed),
        b_to_a: down_bytes.load(Ordering::Relaxed),
        end,
    };
    (report, why)
}

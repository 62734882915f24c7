//! The SOCKS5 client handshake: greeting, optional RFC 1929 login, CONNECT.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hasocks_socks_wire::v5::{
    method, Command, Greeting, MethodSelection, Reply, Request, UserPassReply, UserPassRequest,
};
use hasocks_socks_wire::{TargetAddr, WireError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::ProbeError;

/// Username and password for RFC 1929 authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Username, 1 to 255 bytes.
    pub user: String,
    /// Password, 1 to 255 bytes.
    pub pass: String,
}

/// The methods a greeting offers: `none`, RFC 1929 with these credentials, or both (the
/// proxy chooses).
#[derive(Debug, Clone, Copy)]
pub struct Offer<'a> {
    /// Offer method 00 (no authentication).
    pub none: bool,
    /// Offer method 02 with these credentials.
    pub auth: Option<&'a Auth>,
}

impl<'a> Offer<'a> {
    /// Exactly one method, as maxconn.pl offers: 02 with `auth`, else 00 (so the proxy's
    /// choice is checkable).
    pub fn one(auth: Option<&'a Auth>) -> Offer<'a> {
        Offer {
            none: auth.is_none(),
            auth,
        }
    }
}

/// Which way a tapped chunk of bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From us to the proxy (or, in an end-to-end check, to the target side).
    Sent,
    /// From the proxy to us.
    Received,
}

/// Observer of every SOCKS message and probe payload, for `check -v` hex dumps.
pub type Tap<'a> = &'a (dyn Fn(Direction, &[u8]) + Send + Sync);

/// Greeting (+RFC 1929 if `auth`) + CONNECT; returns the stream ready for
/// data and the reply's BND address. The whole exchange runs under `timeout`.
pub async fn socks5_connect(
    proxy: SocketAddr,
    target: &TargetAddr,
    auth: Option<&Auth>,
    timeout: Duration,
) -> Result<(TcpStream, TargetAddr), ProbeError> {
    socks5_connect_by(proxy, target, auth, Instant::now() + timeout, None).await
}

/// Like [`socks5_connect`], but finishing by an absolute `deadline` (so a
/// caller can fit it into a larger budget) and reporting bytes to `tap`.
pub async fn socks5_connect_by(
    proxy: SocketAddr,
    target: &TargetAddr,
    auth: Option<&Auth>,
    deadline: Instant,
    tap: Option<Tap<'_>>,
) -> Result<(TcpStream, TargetAddr), ProbeError> {
    let stream = timeout_at(deadline, TcpStream::connect(proxy))
        .await
        .map_err(|_| ProbeError::Timeout("connect"))?
        .map_err(ProbeError::Connect)?;
    socks5_over(stream, target, auth, deadline, tap).await
}

/// The handshake of [`socks5_connect_by`] on a stream already connected to the proxy (one the
/// caller opened from a source address of its choice, say).
pub async fn socks5_over(
    stream: TcpStream,
    target: &TargetAddr,
    auth: Option<&Auth>,
    deadline: Instant,
    tap: Option<Tap<'_>>,
) -> Result<(TcpStream, TargetAddr), ProbeError> {
    socks5_command(stream, Command::Connect, target, auth, deadline, tap).await
}

/// [`socks5_over`] for any command: UDP ASSOCIATE (the UDP load generator's), BIND or CONNECT.
pub async fn socks5_command(
    stream: TcpStream,
    command: Command,
    target: &TargetAddr,
    auth: Option<&Auth>,
    deadline: Instant,
    tap: Option<Tap<'_>>,
) -> Result<(TcpStream, TargetAddr), ProbeError> {
    socks5_offer(stream, command, target, Offer::one(auth), deadline, tap).await
}

/// [`socks5_command`] offering the methods of `offer` (a chaining server offers what its
/// route allows, and logs in when the proxy picks 02).
pub async fn socks5_offer(
    stream: TcpStream,
    command: Command,
    target: &TargetAddr,
    offer: Offer<'_>,
    deadline: Instant,
    tap: Option<Tap<'_>>,
) -> Result<(TcpStream, TargetAddr), ProbeError> {
    // Handshake messages are tiny and each waits for an answer: Nagle only adds delay.
    stream.set_nodelay(true).map_err(ProbeError::Io)?;
    let mut c = Conn {
        stream,
        deadline,
        tap,
        buf: Vec::with_capacity(64),
    };
    c.negotiate(offer).await?;
    let bound = c.request(command, target).await?;
    Ok((c.stream, bound))
}

/// [`socks5_command`] for a proxy that needs no login, in one round trip: the greeting
/// (method 00 only) and the request go in one write (RFC 1928 lets a client send the
/// request as soon as it knows the method it offered is the only one).
pub async fn socks5_pipelined(
    stream: TcpStream,
    command: Command,
    target: &TargetAddr,
    deadline: Instant,
) -> Result<(TcpStream, TargetAddr), ProbeError> {
    stream.set_nodelay(true).map_err(ProbeError::Io)?;
    let mut c = Conn {
        stream,
        deadline,
        tap: None,
        buf: Vec::with_capacity(64),
    };
    let bound = c.pipelined(command, target).await?;
    Ok((c.stream, bound))
}

/// The second reply of a BIND (RFC 1928 section 6): the proxy's report that the peer
/// connected, naming the peer. Reads nothing after it.
pub async fn socks5_second_reply(
    stream: TcpStream,
    deadline: Instant,
) -> Result<(TcpStream, TargetAddr), ProbeError> {
    let mut c = Conn {
        stream,
        deadline,
        tap: None,
        buf: Vec::with_capacity(32),
    };
    let bound = c.reply("second reply").await?;
    Ok((c.stream, bound))
}

/// A `socks-wire` decode function.
type Decoder<M> = fn(&[u8]) -> Result<Option<(M, usize)>, WireError>;

/// One handshake in progress.
struct Conn<'t> {
    stream: TcpStream,
    deadline: Instant,
    tap: Option<Tap<'t>>,
    buf: Vec<u8>,
}

impl Conn<'_> {
    async fn negotiate(&mut self, offer: Offer<'_>) -> Result<(), ProbeError> {
        let mut methods = Vec::with_capacity(2);
        if offer.none {
            methods.push(method::NONE);
        }
        if offer.auth.is_some() {
            methods.push(method::USERPASS);
        }
        let mut out = Vec::with_capacity(4);
        let offered = methods.clone();
        Greeting { methods }.encode(&mut out);
        self.send(&out, "greeting").await?;
        let chosen = self.selection(&offered).await?;
        if let (method::USERPASS, Some(a)) = (chosen, offer.auth) {
            self.login(a).await?;
        }
        Ok(())
    }

    /// Reads the method selection; it must be one of `offered`.
    async fn selection(&mut self, offered: &[u8]) -> Result<u8, ProbeError> {
        let sel = self
            .recv(2, "greeting", "method selection", MethodSelection::decode)
            .await?;
        if sel.method == method::NO_ACCEPTABLE {
            return Err(ProbeError::NoAcceptableMethod);
        }
        if !offered.contains(&sel.method) {
            return Err(ProbeError::Protocol(format!(
                "proxy selected method {:02x}, offered only {offered:02x?}",
                sel.method
            )));
        }
        Ok(sel.method)
    }

    async fn login(&mut self, a: &Auth) -> Result<(), ProbeError> {
        for (what, v) in [("username", &a.user), ("password", &a.pass)] {
            if v.is_empty() || v.len() > 255 {
                return Err(ProbeError::Protocol(format!(
                    "{what} must be 1 to 255 bytes for RFC 1929"
                )));
            }
        }
        let mut out = Vec::with_capacity(3 + a.user.len() + a.pass.len());
        UserPassRequest {
            username: a.user.as_bytes().to_vec(),
            password: a.pass.as_bytes().to_vec(),
        }
        .encode(&mut out);
        self.send(&out, "auth").await?;
        let r = self
            .recv(2, "auth", "authentication reply", UserPassReply::decode)
            .await?;
        if r.status != UserPassReply::SUCCESS {
            return Err(ProbeError::AuthFailed(r.status));
        }
        Ok(())
    }

    async fn request(
        &mut self,
        command: Command,
        target: &TargetAddr,
    ) -> Result<TargetAddr, ProbeError> {
        let mut out = Vec::with_capacity(3 + target.encoded_len());
        Request {
            command,
            target: target.clone(),
        }
        .encode(&mut out);
        self.send(&out, "request").await?;
        self.reply("request").await
    }

    /// Reads one reply in two reads at most (its first 5 bytes say how long it is); a
    /// timeout names `phase`.
    async fn reply(&mut self, phase: &'static str) -> Result<TargetAddr, ProbeError> {
        self.buf.clear();
        self.buf.resize(5, 0);
        self.read_exact_buf(0, phase).await?;
        let len = match self.buf.get(3..5) {
            Some([1, _]) => 10,
            Some([4, _]) => 22,
            Some([3, n]) => 7 + usize::from(*n),
            // Anything else: the decoder names what is wrong.
            _ => 5,
        };
        self.buf.resize(len.max(5), 0);
        self.read_exact_buf(5, phase).await?;
        let reply = match Reply::decode(&self.buf) {
            Ok(Some((r, _))) => r,
            Ok(None) => return Err(ProbeError::Protocol("bad reply: truncated".into())),
            Err(e) => {
                if let Some(t) = self.tap {
                    t(Direction::Received, &self.buf);
                }
                return Err(ProbeError::Protocol(format!("bad reply: {e}")));
            }
        };
        if let Some(t) = self.tap {
            t(Direction::Received, &self.buf);
        }
        if reply.code != 0 {
            return Err(ProbeError::Rejected(reply.code));
        }
        Ok(reply.bound)
    }

    /// Greeting (method 00 only) and request in one write, then both answers: one round
    /// trip instead of two, for a proxy that needs no login (a chaining server's upstream).
    async fn pipelined(
        &mut self,
        command: Command,
        target: &TargetAddr,
    ) -> Result<TargetAddr, ProbeError> {
        let mut out = Vec::with_capacity(6 + target.encoded_len());
        Greeting {
            methods: vec![method::NONE],
        }
        .encode(&mut out);
        Request {
            command,
            target: target.clone(),
        }
        .encode(&mut out);
        self.send(&out, "greeting").await?;
        self.selection(&[method::NONE]).await?;
        self.reply("request").await
    }

    async fn send(&mut self, bytes: &[u8], phase: &'static str) -> Result<(), ProbeError> {
        if let Some(t) = self.tap {
            t(Direction::Sent, bytes);
        }
        timeout_at(self.deadline, self.stream.write_all(bytes))
            .await
            .map_err(|_| ProbeError::Timeout(phase))?
            .map_err(ProbeError::Io)
    }

    /// Reads exactly one message: `min` bytes first, then one byte at a time
    /// until the decoder is satisfied, so no byte after the message is consumed.
    async fn recv<M>(
        &mut self,
        min: usize,
        phase: &'static str,
        what: &str,
        decode: Decoder<M>,
    ) -> Result<M, ProbeError> {
        self.buf.clear();
        self.buf.resize(min, 0);
        self.read_exact_buf(0, phase).await?;
        loop {
            match decode(&self.buf) {
                Ok(Some((m, used))) => {
                    if let (Some(t), Some(b)) = (self.tap, self.buf.get(..used)) {
                        t(Direction::Received, b);
                    }
                    return Ok(m);
                }
                Ok(None) => {
                    let at = self.buf.len();
                    self.buf.push(0);
                    self.read_exact_buf(at, phase).await?;
                }
                Err(e) => {
                    if let Some(t) = self.tap {
                        t(Direction::Received, &self.buf);
                    }
                    return Err(ProbeError::Protocol(format!("bad {what}: {e}")));
                }
            }
        }
    }

    /// Fills `self.buf[from..]` from the stream.
    async fn read_exact_buf(&mut self, from: usize, phase: &'static str) -> Result<(), ProbeError> {
        let Some(dst) = self.buf.get_mut(from..) else {
            return Ok(());
        };
        match timeout_at(self.deadline, self.stream.read_exact(dst)).await {
            Err(_) => Err(ProbeError::Timeout(phase)),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(ProbeError::Io(io::Error::new(
                    e.kind(),
                    format!("proxy closed the connection during {phase}"),
                )))
            }
            Ok(Err(e)) => Err(ProbeError::Io(e)),
        }
    }
}

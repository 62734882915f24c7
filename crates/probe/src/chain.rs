//! The client side of server chaining: the handshake a SOCKS server runs on its connection
//! to an upstream proxy (SOCKS5 with the methods its route offers, SOCKS4/4a, or HTTP
//! CONNECT), leaving the stream ready for the session's bytes. The server's routes and the
//! health checks of their upstreams share it.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use hasocks_socks_wire::v5::Command;
use hasocks_socks_wire::{v4, TargetAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::client::{socks5_offer, socks5_pipelined, Offer};
use crate::ProbeError;

/// The longest HTTP response head read from an upstream before giving up.
const MAX_HTTP_HEAD: usize = 8192;

/// How to talk to one upstream proxy.
#[derive(Debug, Clone, Copy)]
pub enum Handshake<'a> {
    /// SOCKS5, offering these methods; offering `none` alone, greeting and request go in
    /// one write (one round trip).
    Socks5(Offer<'a>),
    /// SOCKS4 (SOCKS4a for a name target), CONNECT only, with this USERID.
    Socks4(&'a [u8]),
    /// HTTP CONNECT, CONNECT only.
    Http,
}

impl Handshake<'_> {
    /// Runs `command` for `target` on `stream` (connected to the proxy) by `deadline`; returns
    /// the stream and the proxy's bound address (unspecified where the protocol has none).
    pub async fn run(
        &self,
        stream: TcpStream,
        command: Command,
        target: &TargetAddr,
        deadline: Instant,
    ) -> Result<(TcpStream, TargetAddr), ProbeError> {
        let connect_only = || {
            if command == Command::Connect {
                Ok(())
            } else {
                Err(ProbeError::Protocol(format!(
                    "{command:?} needs a SOCKS5 upstream"
                )))
            }
        };
        match self {
            Handshake::Socks5(Offer {
                none: true,
                auth: None,
            }) => socks5_pipelined(stream, command, target, deadline).await,
            Handshake::Socks5(offer) => {
                socks5_offer(stream, command, target, *offer, deadline, None).await
            }
            Handshake::Socks4(user) => {
                connect_only()?;
                socks4_connect(stream, target, user, deadline).await
            }
            Handshake::Http => {
                connect_only()?;
                http_connect(stream, target, deadline).await
            }
        }
    }
}

/// Writes `bytes` by the deadline, naming the phase on timeout.
async fn send(s: &mut TcpStream, bytes: &[u8], deadline: Instant) -> Result<(), ProbeError> {
    timeout_at(deadline, s.write_all(bytes))
        .await
        .map_err(|_| ProbeError::Timeout("request"))?
        .map_err(ProbeError::Io)
}

/// SOCKS4 CONNECT (4a for a name). Reply 90 is success; anything else the proxy's refusal.
async fn socks4_connect(
    mut stream: TcpStream,
    target: &TargetAddr,
    user: &[u8],
    deadline: Instant,
) -> Result<(TcpStream, TargetAddr), ProbeError> {
    stream.set_nodelay(true).map_err(ProbeError::Io)?;
    let req = v4::Request::new(v4::Command::Connect, target, user.to_vec())
        .map_err(|e| ProbeError::Protocol(format!("SOCKS4 cannot carry {target}: {e}")))?;
    let mut out = Vec::with_capacity(32);
    req.encode(&mut out);
    send(&mut stream, &out, deadline).await?;
    let mut buf = [0u8; 8];
    match timeout_at(deadline, stream.read_exact(&mut buf)).await {
        Err(_) => return Err(ProbeError::Timeout("reply")),
        Ok(Err(e)) => return Err(ProbeError::Io(e)),
        Ok(Ok(_)) => {}
    }
    let reply = match v4::Reply::decode(&buf) {
        Ok(Some((r, _))) => r,
        Ok(None) => return Err(ProbeError::Protocol("short SOCKS4 reply".into())),
        Err(e) => return Err(ProbeError::Protocol(format!("bad SOCKS4 reply: {e}"))),
    };
    if !reply.is_granted() {
        return Err(ProbeError::Socks4Rejected(reply.code));
    }
    let bound = SocketAddr::from((reply.ip, reply.port));
    Ok((stream, TargetAddr::Ip(bound)))
}

/// `CONNECT host:port HTTP/1.1`, then the response head up to its blank line (read
/// without consuming a byte of the tunnel after it). 2xx is success.
async fn http_connect(
    mut stream: TcpStream,
    target: &TargetAddr,
    deadline: Instant,
) -> Result<(TcpStream, TargetAddr), ProbeError> {
    stream.set_nodelay(true).map_err(ProbeError::Io)?;
    let authority = match target {
        TargetAddr::Ip(SocketAddr::V6(a)) => format!("[{}]:{}", a.ip(), a.port()),
        TargetAddr::Ip(a) => a.to_string(),
        TargetAddr::Domain(name, port) => format!("{name}:{port}"),
    };
    let req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    send(&mut stream, req.as_bytes(), deadline).await?;
    let head = read_head(&mut stream, deadline).await?;
    let status = parse_status(&head)?;
    if !(200..300).contains(&status.0) {
        return Err(ProbeError::HttpStatus(status.0, status.1));
    }
    let unspecified = TargetAddr::Ip(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    Ok((stream, unspecified))
}

/// Reads the response head and not a byte more: peeks, and takes only bytes that are head
/// (up to the blank line, or all peeked when the blank line is not there yet).
async fn read_head(stream: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, ProbeError> {
    let mut head: Vec<u8> = Vec::with_capacity(256);
    let mut buf = [0u8; 1024];
    loop {
        let n = match timeout_at(deadline, stream.peek(&mut buf)).await {
            Err(_) => return Err(ProbeError::Timeout("reply")),
            Ok(Err(e)) => return Err(ProbeError::Io(e)),
            Ok(Ok(0)) => {
                return Err(ProbeError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "proxy closed the connection before its response",
                )))
            }
            Ok(Ok(n)) => n,
        };
        let seen = buf.get(..n).unwrap_or_default();
        // The blank line may straddle what was taken before and what is peeked now.
        let from = head.len().saturating_sub(3);
        let mut joined = head.get(from..).unwrap_or_default().to_vec();
        joined.extend_from_slice(seen);
        let take = match joined.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(at) => (from + at + 4) - head.len(),
            None => n,
        };
        let start = head.len();
        head.resize(start + take, 0);
        let dst = head.get_mut(start..).unwrap_or_default();
        stream.read_exact(dst).await.map_err(ProbeError::Io)?;
        if head.ends_with(b"\r\n\r\n") {
            return Ok(head);
        }
        if head.len() > MAX_HTTP_HEAD {
            return Err(ProbeError::Protocol(format!(
                "HTTP response head longer than {MAX_HTTP_HEAD} bytes"
            )));
        }
    }
}

/// The status code and reason of `HTTP/1.x NNN reason`.
fn parse_status(head: &[u8]) -> Result<(u16, String), ProbeError> {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line).trim_end().to_string();
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(code) if version.starts_with("HTTP/1.") => {
            Ok((code, parts.next().unwrap_or_default().to_string()))
        }
        _ => Err(ProbeError::Protocol(format!(
            "not an HTTP response: {line:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_read_and_others_refused() {
        let ok = parse_status(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
        assert_eq!(ok, (200, "Connection established".into()));
        assert_eq!(parse_status(b"HTTP/1.0 403\r\n\r\n").unwrap().0, 403);
        assert!(parse_status(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_status(b"HTTP/1.1 abc x\r\n\r\n").is_err());
    }
}

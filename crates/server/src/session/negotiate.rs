//! Negotiation, one function per protocol phase: the first bytes (which SOCKS version),
//! the SOCKS5 greeting, method selection, the method's sub-negotiation, then the request.
//! SOCKS4 has no greeting or methods: its one message is the request.

use socks_wire::v4;
use socks_wire::v5::{self, ReplyCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::wire_io::{read_msg, ReadError};
use super::{Request, Version};
use crate::runtime::Runtime;
use conf::sockd::Command;

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
    #[error("no acceptable authentication method (client offered {0:?})")]
    NoMethod(Vec<u8>),
    /// SOCKS4 needs method `none`.
    #[error("SOCKS4 refused: socksmethod none is not enabled")]
    V4NoMethod,
    /// `timeout.negotiate` ran out.
    #[error("no request within timeout.negotiate ({0} s)")]
    Timeout(u32),
}

impl NegError {
    /// The reply to send before closing, if any (version known and the protocol has one).
    pub(crate) fn reply(&self) -> Option<(Version, ReplyCode)> {
        match self {
            NegError::Read(ReadError::Wire(w), Some(v)) => Some((*v, w.reply_code())),
            NegError::V4NoMethod => Some((Version::V4, ReplyCode::NotAllowed)),
            _ => None,
        }
    }
}

/// Runs every phase up to a request the rules can judge.
pub(crate) async fn negotiate_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    rt: &Runtime,
) -> Result<Request, NegError> {
    match first_bytes(stream, buf).await? {
        v4::VERSION => v4_request(stream, buf, rt).await,
        v5::VERSION => {
            let offered = v5_greeting(stream, buf).await?;
            let method = select_method(rt, &offered);
            send_selection(stream, method).await?;
            let Some(method) = method else {
                return Err(NegError::NoMethod(offered));
            };
            subnegotiate(stream, buf, method).await?;
            v5_request(stream, buf).await
        }
        other => Err(NegError::BadVersion(other)),
    }
}

/// Reads until at least one byte is there and returns the version byte.
async fn first_bytes(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<u8, NegError> {
    while buf.is_empty() {
        let mut first = [0u8; 512];
        let n = stream
            .read(&mut first)
            .await
            .map_err(|e| NegError::Read(ReadError::Io(e), None))?;
        if n == 0 {
            return Err(NegError::Read(ReadError::Eof, None));
        }
        buf.extend_from_slice(first.get(..n).unwrap_or_default());
    }
    socks_wire::peek_version(buf).ok_or(NegError::Read(ReadError::Eof, None))
}

/// The SOCKS4/4a request: the whole negotiation of that protocol.
async fn v4_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    rt: &Runtime,
) -> Result<Request, NegError> {
    let r = read_msg(stream, buf, v4::Request::decode)
        .await
        .map_err(|e| NegError::Read(e, Some(Version::V4)))?;
    if !rt.method_none {
        return Err(NegError::V4NoMethod);
    }
    let command = match r.command {
        v4::Command::Connect => Command::Connect,
        v4::Command::Bind => Command::Bind,
    };
    Ok(Request {
        version: Version::V4,
        command,
        target: r.target(),
        pending: std::mem::take(buf),
    })
}

/// The SOCKS5 greeting: the methods the client offers.
async fn v5_greeting(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Vec<u8>, NegError> {
    let g = read_msg(stream, buf, v5::Greeting::decode)
        .await
        .map_err(|e| NegError::Read(e, None))?;
    Ok(g.methods)
}

/// The wire method to use, or None for `05 FF`.
fn select_method(rt: &Runtime, offered: &[u8]) -> Option<u8> {
    (rt.method_none && offered.contains(&v5::method::NONE)).then_some(v5::method::NONE)
}

/// Sends the method selection (`05 FF` when `method` is None).
async fn send_selection(stream: &mut TcpStream, method: Option<u8>) -> Result<(), NegError> {
    let mut out = Vec::with_capacity(2);
    v5::MethodSelection {
        method: method.unwrap_or(v5::method::NO_ACCEPTABLE),
    }
    .encode(&mut out);
    stream
        .write_all(&out)
        .await
        .map_err(|e| NegError::Read(ReadError::Io(e), None))
}

/// The selected method's sub-negotiation; `none` has none.
async fn subnegotiate(
    _stream: &mut TcpStream,
    _buf: &mut Vec<u8>,
    _method: u8,
) -> Result<(), NegError> {
    Ok(())
}

/// The SOCKS5 request.
async fn v5_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Request, NegError> {
    let r = read_msg(stream, buf, v5::Request::decode)
        .await
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
        pending: std::mem::take(buf),
    })
}

//! End-to-end check: prove that a proxy forwards bytes, not just that it
//! answers "succeeded" (maxconn.pl only looked at the reply code).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hasocks_socks_wire::v5::Command;
use hasocks_socks_wire::TargetAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout_at, Instant};

use crate::chain::Handshake;
use crate::client::{socks5_over, Auth, Direction, Offer, Tap};
use crate::{fill_random, ProbeError};

/// Payload bytes sent each way in an end-to-end check.
pub const PROBE_BYTES: usize = 32;

/// What to check and how.
#[derive(Debug, Clone)]
pub struct EndToEnd {
    /// The SOCKS5 server (or relay) under test.
    pub proxy: SocketAddr,
    /// A remote target to CONNECT to; `None` means "to our own listener on `bind_ip`".
    pub target: Option<TargetAddr>,
    /// Where to listen when `target` is `None`; must be reachable from the proxy.
    pub bind_ip: IpAddr,
    /// RFC 1929 credentials, if the proxy wants them.
    pub auth: Option<Auth>,
    /// Budget for the whole check.
    pub timeout: Duration,
    /// Bytes sent to the proxy before the SOCKS greeting (a PROXY protocol header for a
    /// server that expects one from us); usually empty.
    pub preamble: Vec<u8>,
}

/// End-to-end check. With `target` `None`: listen on `bind_ip:0`, CONNECT
/// through the proxy to that listener, accept the proxy's connection and send
/// [`PROBE_BYTES`] random bytes each way, verifying them. With a target:
/// CONNECT and require REP 00. Everything runs under `check.timeout`.
pub async fn end_to_end(check: &EndToEnd) -> Result<Duration, ProbeError> {
    end_to_end_traced(check, None).await
}

/// [`end_to_end`] reporting every SOCKS message and payload to `tap`.
pub async fn end_to_end_traced(
    check: &EndToEnd,
    tap: Option<Tap<'_>>,
) -> Result<Duration, ProbeError> {
    let start = Instant::now();
    let deadline = start + check.timeout;
    let auth = check.auth.as_ref();
    match &check.target {
        Some(target) => {
            let s = connect(check.proxy, &check.preamble, deadline).await?;
            socks5_over(s, target, auth, deadline, tap).await?;
        }
        None => {
            let listener = TcpListener::bind((check.bind_ip, 0))
                .await
                .map_err(ProbeError::Io)?;
            let s = connect(check.proxy, &check.preamble, deadline).await?;
            forward_through(&listener, s, auth, deadline, tap).await?;
        }
    }
    Ok(start.elapsed())
}

/// The listener variant of the end-to-end check, for callers that own the
/// listening socket (a fixed `-b ip:port`, or many checks sharing one port).
/// A connection left over from an earlier timed-out check on the same
/// listener would make this check fail, never pass falsely.
pub async fn end_to_end_on(
    listener: &TcpListener,
    proxy: SocketAddr,
    auth: Option<&Auth>,
    timeout: Duration,
    tap: Option<Tap<'_>>,
) -> Result<Duration, ProbeError> {
    let start = Instant::now();
    let deadline = start + timeout;
    let s = connect(proxy, &[], deadline).await?;
    forward_through(listener, s, auth, deadline, tap).await?;
    Ok(start.elapsed())
}

/// The TCP connection to the proxy, with `preamble` already sent.
async fn connect(
    proxy: SocketAddr,
    preamble: &[u8],
    deadline: Instant,
) -> Result<TcpStream, ProbeError> {
    let mut s = timeout_at(deadline, TcpStream::connect(proxy))
        .await
        .map_err(|_| ProbeError::Timeout("connect"))?
        .map_err(ProbeError::Connect)?;
    if !preamble.is_empty() {
        send(&mut s, preamble, deadline, None).await?;
    }
    Ok(s)
}

/// The end-to-end check through `proxy` with its inbound connection met at a shared
/// [`Rendezvous`](crate::Rendezvous) (one listener for every check). `preamble` goes first to
/// the proxy (a PROXY header).
pub async fn end_to_end_via(
    rv: &crate::Rendezvous,
    proxy: SocketAddr,
    auth: Option<&Auth>,
    timeout: Duration,
    preamble: &[u8],
) -> Result<Duration, ProbeError> {
    let handshake = Handshake::Socks5(Offer::one(auth));
    end_to_end_through(rv, proxy, &handshake, timeout, preamble).await
}

/// [`end_to_end_via`] speaking `handshake` to the proxy (SOCKS5 with any offer, SOCKS4 or
/// HTTP CONNECT): the check a chaining server runs on its upstreams.
pub async fn end_to_end_through(
    rv: &crate::Rendezvous,
    proxy: SocketAddr,
    handshake: &Handshake<'_>,
    timeout: Duration,
    preamble: &[u8],
) -> Result<Duration, ProbeError> {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut up = [0u8; PROBE_BYTES];
    let mut down = [0u8; PROBE_BYTES];
    fill_random(&mut up);
    fill_random(&mut down);
    let mut waiter = rv.expect(up);
    let s = connect(proxy, preamble, deadline).await?;
    let target = TargetAddr::Ip(rv.local_addr());
    let (mut client, _bound) = handshake
        .run(s, Command::Connect, &target, deadline)
        .await?;
    send(&mut client, &up, deadline, None).await?;
    // The rendezvous hands over the connection whose first bytes are `up`: they arrived.
    let mut inbound = timeout_at(deadline, waiter.arrive())
        .await
        .ok()
        .flatten()
        .ok_or(ProbeError::NoInbound)?;
    send(&mut inbound, &down, deadline, None).await?;
    expect(&mut client, &down, deadline, None).await?;
    Ok(start.elapsed())
}

async fn forward_through(
    listener: &TcpListener,
    proxy: TcpStream,
    auth: Option<&Auth>,
    deadline: Instant,
    tap: Option<Tap<'_>>,
) -> Result<(), ProbeError> {
    let target = TargetAddr::Ip(listener.local_addr().map_err(ProbeError::Io)?);
    let (mut client, _bound) = socks5_over(proxy, &target, auth, deadline, tap).await?;

    let mut up = [0u8; PROBE_BYTES];
    let mut down = [0u8; PROBE_BYTES];
    fill_random(&mut up);
    fill_random(&mut down);

    // Write before accepting, so a proxy that only dials out once data
    // arrives still passes.
    send(&mut client, &up, deadline, tap).await?;
    let (mut inbound, _peer) = timeout_at(deadline, listener.accept())
        .await
        .map_err(|_| ProbeError::NoInbound)?
        .map_err(ProbeError::Io)?;
    expect(&mut inbound, &up, deadline, None).await?;
    send(&mut inbound, &down, deadline, None).await?;
    expect(&mut client, &down, deadline, tap).await?;
    Ok(())
}

async fn send(
    s: &mut TcpStream,
    bytes: &[u8],
    deadline: Instant,
    tap: Option<Tap<'_>>,
) -> Result<(), ProbeError> {
    if let Some(t) = tap {
        t(Direction::Sent, bytes);
    }
    timeout_at(deadline, s.write_all(bytes))
        .await
        .map_err(|_| ProbeError::Timeout("data"))?
        .map_err(ProbeError::Io)
}

async fn expect(
    s: &mut TcpStream,
    want: &[u8; PROBE_BYTES],
    deadline: Instant,
    tap: Option<Tap<'_>>,
) -> Result<(), ProbeError> {
    let mut got = [0u8; PROBE_BYTES];
    match timeout_at(deadline, s.read_exact(&mut got)).await {
        Err(_) => return Err(ProbeError::Timeout("data")),
        Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(ProbeError::Io(io::Error::new(
                e.kind(),
                "relayed connection closed before the probe data arrived",
            )))
        }
        Ok(Err(e)) => return Err(ProbeError::Io(e)),
        Ok(Ok(_)) => {}
    }
    if let Some(t) = tap {
        t(Direction::Received, &got);
    }
    if &got != want {
        return Err(ProbeError::DataMismatch);
    }
    Ok(())
}

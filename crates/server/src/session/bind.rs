//! BIND (SOCKS4 and SOCKS5): listen on the external side, first reply with that address,
//! accept one inbound connection from the expected peer, second reply with the peer's
//! address, then relay both ways as CONNECT does.
//!
//! Decisions (Dante/RFC where they speak, ours where they do not):
//! - The listening address follows `external.rotation` (see `Generation::bind_source`).
//! - The wait is bounded by `timeout.connect` (rule, else global); 0 means a fixed 120 s,
//!   the two minutes CSTC SOCKS4 servers used. On expiry: reply 06 (v5) / 91 (v4), close.
//! - When the client named its peer (DST.ADDR not 0.0.0.0/::), only that address may
//!   connect; the port is not compared (the client rarely knows the peer's source port).
//!   A SOCKS5 client keeps waiting after a wrong peer (that peer is closed and logged), so a
//!   stray scanner cannot spoil the rendezvous; a SOCKS4 client gets 91, as its protocol says.
//! - `bindreply` socks rules are evaluated for the inbound connection as Dante does for
//!   replies: `from` = the connecting peer, `to` = the client. A blocked peer is handled like
//!   a wrong one.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hasocks_conf::sockd::{Command, SocksVersion, Verdict};
use hasocks_socks_wire::v5::ReplyCode;
use hasocks_socks_wire::TargetAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::Instant;

use super::{reply, resolve, Request, Session, Version};
use crate::generation::secs;
use crate::logger::Level;
use crate::rules::{socks_rule_matches, CompiledRule, RequestFacts};

/// Wait for the inbound connection when `timeout.connect` is 0 (CSTC's two minutes).
pub(crate) const DEFAULT_BIND_WAIT: Duration = Duration::from_secs(120);

/// Bytes a client may send before the second reply; they are forwarded to the peer.
pub(crate) const MAX_EARLY_BYTES: usize = 64 * 1024;

/// Runs a BIND the rules passed.
pub(crate) async fn run(
    sess: &Session,
    rule: &CompiledRule,
    client: TcpStream,
    req: Request,
    mut resolved: Option<Vec<IpAddr>>,
) {
    let (mut client, mut req) = match super::chain::plan(sess, &req, &mut resolved).await {
        crate::route::Plan::Chain(ups, direct) => {
            match super::chain::bind::bind(sess, rule, client, req, (&ups, direct)).await {
                Some(back) => back,
                None => return,
            }
        }
        _ => (client, req),
    };
    let what = sess.what(&req);
    let prefix = format!("{} {what}", rule.label());
    let target = req.target.to_string();
    let log_err = |msg: &str| {
        sess.log_if(rule.log.error || rule.log.connect, Level::Info, || {
            msg.to_string()
        })
    };
    let wait_secs = rule.timeouts.connect.unwrap_or(sess.rt.timeouts.connect);
    let deadline = Instant::now() + secs(wait_secs).unwrap_or(DEFAULT_BIND_WAIT);

    // The addresses the peer may connect from (empty = anyone).
    let expected: Vec<IpAddr> = match &req.target {
        TargetAddr::Ip(a) if a.ip().is_unspecified() => Vec::new(),
        TargetAddr::Ip(a) => vec![a.ip()],
        TargetAddr::Domain(name, port) => match resolved {
            Some(ips) if !ips.is_empty() => ips,
            _ => match resolve(name, *port, deadline - Instant::now()).await {
                Ok(ips) => ips,
                Err(e) => {
                    log_err(&format!(
                        "{prefix} -: client {} -> target {target}: {e}",
                        sess.peer()
                    ));
                    reply::fail(&mut client, req.version, ReplyCode::HostUnreachable).await;
                    return;
                }
            },
        },
    };
    // The family of the listening socket: the peer's, or the client's when it named none.
    let family_hint = expected
        .first()
        .copied()
        .unwrap_or(match sess.internal.ip() {
            IpAddr::V4(_) => IpAddr::from([0u8; 4]),
            IpAddr::V6(_) => IpAddr::from([0u16; 8]),
        });
    let family_hint = if req.version == Version::V4 {
        // A SOCKS4 reply carries only IPv4.
        expected
            .iter()
            .copied()
            .find(IpAddr::is_ipv4)
            .unwrap_or(IpAddr::from([0u8; 4]))
    } else {
        family_hint
    };

    let listener = match listen(sess, family_hint) {
        Ok(l) => l,
        Err(e) => {
            log_err(&format!(
                "{prefix} -: client {} -> target {target}: cannot listen: {e}",
                sess.peer()
            ));
            reply::fail(&mut client, req.version, ReplyCode::GeneralFailure).await;
            return;
        }
    };
    let bound = match listener.local_addr() {
        Ok(a) => a,
        Err(_) => return reply::fail(&mut client, req.version, ReplyCode::GeneralFailure).await,
    };
    if reply::send(&mut client, req.version, ReplyCode::Succeeded, bound)
        .await
        .is_err()
    {
        return;
    }
    let route = sess.route(format_args!("bind {bound} <- target {target}"));
    sess.log_if(rule.log.connect, Level::Info, || {
        format!("{prefix} [: {route}: listening")
    });

    let mut early = std::mem::take(&mut req.pending);
    let (peer_stream, peer) = loop {
        match wait_inbound(&listener, &mut client, &mut early, deadline).await {
            Wait::Peer(s, peer) => {
                let why =
                    if !expected.is_empty() && !expected.iter().any(|ip| same_ip(*ip, peer.ip())) {
                        Some("not the peer the client named")
                    } else if !bindreply_passes(sess, &req, peer) {
                        Some("blocked by the bindreply rules")
                    } else {
                        None
                    };
                let Some(why) = why else { break (s, peer) };
                log_err(&format!(
                    "{prefix} -: {route}: connection from {peer} refused: {why}"
                ));
                drop(s);
                if req.version == Version::V4 {
                    reply::fail(&mut client, req.version, ReplyCode::NotAllowed).await;
                    return;
                }
            }
            Wait::Timeout => {
                log_err(&format!(
                    "{prefix} ]: {route}: nobody connected within the bind wait"
                ));
                reply::fail(&mut client, req.version, ReplyCode::TtlExpired).await;
                let _ = client.shutdown().await;
                return;
            }
            Wait::ClientGone(why) => {
                log_err(&format!(
                    "{prefix} ]: {route}: client {why} before the peer connected"
                ));
                return;
            }
            Wait::Failed(e) => {
                log_err(&format!("{prefix} ]: {route}: accept failed: {e}"));
                reply::fail(&mut client, req.version, ReplyCode::GeneralFailure).await;
                return;
            }
        }
    };
    drop(listener);
    let route = sess.route(format_args!("bind {bound} <- peer {peer}"));
    let leg = super::Leg {
        prefix: &prefix,
        route: &route,
        other: "peer",
        started: ": peer connected",
    };
    let client = (client, req.version, peer);
    super::reply_and_relay(sess, rule, &leg, client, peer_stream, &early).await;
}

/// Opens the listening socket on the external address chosen by `external.rotation`.
/// Why the BIND's listening socket could not be made.
#[derive(Debug, thiserror::Error)]
enum ListenError {
    /// No address to listen on.
    #[error(transparent)]
    Source(#[from] crate::generation::SourceError),
    /// The socket calls failed.
    #[error("bind {ip}: {source}")]
    Socket {
        /// The address.
        ip: IpAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

fn listen(sess: &Session, dst: IpAddr) -> Result<TcpListener, ListenError> {
    let ip = sess.rt.bind_source(dst, sess.internal)?;
    let socket = |source| ListenError::Socket { ip, source };
    let sock = if ip.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(socket)?;
    sock.bind(SocketAddr::new(ip, 0)).map_err(socket)?;
    // One peer is expected; a short backlog keeps a flood of strangers small.
    sock.listen(8).map_err(socket)
}

enum Wait {
    Peer(TcpStream, SocketAddr),
    Timeout,
    ClientGone(&'static str),
    Failed(std::io::Error),
}

/// Waits for one inbound connection while watching the control connection: the client
/// closing ends the BIND; bytes it sends early are kept (bounded) for the peer.
async fn wait_inbound(
    listener: &TcpListener,
    client: &mut TcpStream,
    early: &mut Vec<u8>,
    deadline: Instant,
) -> Wait {
    let mut chunk = [0u8; 2048];
    loop {
        tokio::select! {
            r = listener.accept() => return match r {
                Ok((s, peer)) => Wait::Peer(s, peer),
                Err(e) => Wait::Failed(e),
            },
            r = client.read(&mut chunk), if early.len() < MAX_EARLY_BYTES => match r {
                Ok(0) => return Wait::ClientGone("closed"),
                Ok(n) => early.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(_) => return Wait::ClientGone("failed"),
            },
            _ = tokio::time::sleep_until(deadline) => return Wait::Timeout,
        }
    }
}

/// Whether the `bindreply` socks rules let `peer` reach the client.
pub(crate) fn bindreply_passes(sess: &Session, req: &Request, peer: SocketAddr) -> bool {
    let facts = RequestFacts {
        client: peer,
        command: Command::BindReply,
        version: match req.version {
            Version::V4 => SocksVersion::V4,
            Version::V5 => SocksVersion::V5,
        },
        target_ip: Some(sess.client.ip()),
        target_name: None,
        target_port: sess.client.port(),
    };
    let rule = sess
        .rt
        .socks_rules
        .iter()
        .find(|r| socks_rule_matches(r, &facts, None).unwrap_or(false))
        .unwrap_or(&sess.rt.default_rule);
    rule.verdict == Verdict::Pass
}

/// Compares addresses, treating IPv4-mapped IPv6 as IPv4.
pub(crate) fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv6_equals_its_ipv4() {
        let v4: IpAddr = "10.1.2.3".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert!(same_ip(v4, mapped));
        assert!(!same_ip(v4, "10.1.2.4".parse().unwrap()));
    }
}

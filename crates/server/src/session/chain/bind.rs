//! BIND through a SOCKS5 upstream: the upstream listens, its first reply (where the peer
//! must connect) goes to the client, and its second reply (the peer connected) too; then
//! the client and the upstream's connection are copied both ways as for CONNECT.

use std::net::SocketAddr;
use std::time::Duration;

use hasocks_socks_wire::v5::{self, ReplyCode};
use hasocks_socks_wire::TargetAddr;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{dial, Failed};
use crate::generation::secs;
use crate::logger::Level;
use crate::route::CompiledRoute;
use crate::rules::CompiledRule;
use crate::session::bind::{bindreply_passes, DEFAULT_BIND_WAIT, MAX_EARLY_BYTES};
use crate::session::{reply, reply_and_relay, Leg, Request, Session};

/// Runs a BIND through the upstreams `ups` (then `direct`, if the group has it). Returns
/// the client and request back when the request is to go direct after all.
pub(crate) async fn bind(
    sess: &Session,
    rule: &CompiledRule,
    mut client: TcpStream,
    mut req: Request,
    group: (&[&CompiledRoute], Option<&CompiledRoute>),
) -> Option<(TcpStream, Request)> {
    let prefix = format!("{} {}", rule.label(), sess.what(&req));
    let target = req.target.to_string();
    let log_err =
        |msg: String| sess.log_if(rule.log.error || rule.log.connect, Level::Info, || msg);
    let wait_secs = rule.timeouts.connect.unwrap_or(sess.rt.timeouts.connect);
    let wait = secs(wait_secs).unwrap_or(DEFAULT_BIND_WAIT);
    let dial_by = Instant::now() + wait.min(Duration::from_secs(75));
    let cmd = v5::Command::Bind;
    let d = match dial(sess, rule, &prefix, group, cmd, &req.target, dial_by).await {
        Ok(d) => d,
        Err(Failed::Direct(_)) => return Some((client, req)),
        Err(Failed::Verdict(code, why) | Failed::Exhausted(code, why)) => {
            log_err(format!(
                "{prefix} -: {} (reply {:02x})",
                sess.route(format_args!("bind <- target {target}: {why}")),
                code.as_u8()
            ));
            reply::fail(&mut client, req.version, code).await;
            return None;
        }
    };
    let upstream_ip = d.stream.peer_addr().map(|a| a.ip()).ok();
    // Where the peer must connect: the upstream's listening address (its own address
    // when it names none).
    let listening = match (&d.bound, upstream_ip) {
        (TargetAddr::Ip(a), Some(ip)) if a.ip().is_unspecified() => SocketAddr::new(ip, a.port()),
        (TargetAddr::Ip(a), _) => *a,
        _ => SocketAddr::from(([0, 0, 0, 0], 0)),
    };
    if reply::send(&mut client, req.version, ReplyCode::Succeeded, listening)
        .await
        .is_err()
    {
        return None;
    }
    let label = d.label();
    let route = sess.route(format_args!("{label} bind {listening} <- target {target}"));
    sess.log_if(rule.log.connect, Level::Info, || {
        format!("{prefix} [: {route}: listening")
    });
    let mut early = std::mem::take(&mut req.pending);
    let second = hasocks_probe::socks5_second_reply(d.stream, Instant::now() + wait);
    tokio::pin!(second);
    let mut chunk = [0u8; 2048];
    let (upstream, peer) = loop {
        tokio::select! {
            r = &mut second => match r {
                Ok(pair) => break pair,
                Err(e) => {
                    log_err(format!("{prefix} ]: {route}: no peer through the upstream: {}", e.short()));
                    let code = match e {
                        hasocks_probe::ProbeError::Rejected(c) => ReplyCode::from_u8(c).unwrap_or(ReplyCode::GeneralFailure),
                        hasocks_probe::ProbeError::Timeout(_) => ReplyCode::TtlExpired,
                        _ => ReplyCode::GeneralFailure,
                    };
                    reply::fail(&mut client, req.version, code).await;
                    return None;
                }
            },
            r = client.read(&mut chunk), if early.len() < MAX_EARLY_BYTES => match r {
                Ok(n) if n > 0 => early.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                _ => {
                    log_err(format!("{prefix} ]: {route}: client went away before the peer connected"));
                    return None;
                }
            },
        }
    };
    let peer = match peer {
        TargetAddr::Ip(a) => a,
        TargetAddr::Domain(..) => SocketAddr::from(([0, 0, 0, 0], 0)),
    };
    if !bindreply_passes(sess, &req, peer) {
        log_err(format!(
            "{prefix} ]: {route}: connection from {peer} refused: blocked by the bindreply rules"
        ));
        reply::fail(&mut client, req.version, ReplyCode::NotAllowed).await;
        return None;
    }
    let route = sess.route(format_args!("{label} bind {listening} <- peer {peer}"));
    let leg = Leg {
        prefix: &prefix,
        route: &route,
        other: "peer",
        started: ": peer connected",
    };
    reply_and_relay(
        sess,
        rule,
        &leg,
        (client, req.version, peer),
        upstream,
        &early,
    )
    .await;
    None
}

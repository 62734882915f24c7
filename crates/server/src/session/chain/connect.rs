//! CONNECT through a route group: one extra connect and handshake (to the upstream), then
//! the same reply, log lines and spliced copy as a direct CONNECT.

use std::net::SocketAddr;
use std::time::Duration;

use hasocks_socks_wire::v5;
use hasocks_socks_wire::TargetAddr;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{dial, Failed};
use crate::generation::secs;
use crate::logger::Level;
use crate::route::CompiledRoute;
use crate::rules::CompiledRule;
use crate::session::{reply, reply_and_relay, Leg, Request, Session};

/// Runs a CONNECT through the upstreams `ups` (then `direct`, if the group has it). Returns
/// the client back when the request is to go direct after all.
pub(crate) async fn connect(
    sess: &Session,
    rule: &CompiledRule,
    mut client: TcpStream,
    req: &Request,
    group: (&[&CompiledRoute], Option<&CompiledRoute>),
) -> Option<TcpStream> {
    let prefix = format!("{} {}", rule.label(), sess.what(req));
    let target = req.target.to_string();
    let connect_secs = rule.timeouts.connect.unwrap_or(sess.rt.timeouts.connect);
    let deadline = Instant::now() + secs(connect_secs).unwrap_or(Duration::from_secs(75));
    let cmd = v5::Command::Connect;
    let d = match dial(sess, rule, &prefix, group, cmd, &req.target, deadline).await {
        Ok(d) => d,
        Err(Failed::Direct(r)) => {
            sess.log_if(rule.log.error || rule.log.connect, Level::Info, || {
                format!(
                    "{prefix} -: {}",
                    sess.route(format_args!(
                        "no upstream of the group carried it: route #{} direct",
                        r.number
                    ))
                )
            });
            return Some(client);
        }
        Err(Failed::Verdict(code, why) | Failed::Exhausted(code, why)) => {
            sess.log_if(rule.log.error || rule.log.connect, Level::Info, || {
                format!(
                    "{prefix} -: {} (reply {:02x})",
                    sess.route(format_args!("-> target {target}: {why}")),
                    code.as_u8()
                )
            });
            sess.stats.connect_failed(code.as_u8());
            reply::fail(&mut client, req.version, code).await;
            return None;
        }
    };
    let external = d
        .stream
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    // The client is told the upstream's own outgoing address when the upstream says it.
    let bound = match &d.bound {
        TargetAddr::Ip(a) if !a.ip().is_unspecified() => *a,
        _ => external,
    };
    let route = sess.route(format_args!(
        "{} external {external} -> target {target}",
        d.label()
    ));
    let leg = Leg {
        prefix: &prefix,
        route: &route,
        other: "target",
        started: "",
    };
    let client = (client, req.version, bound);
    reply_and_relay(sess, rule, &leg, client, d.stream, &req.pending).await;
    None
}

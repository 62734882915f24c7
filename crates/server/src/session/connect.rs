//! CONNECT: resolve, connect from the external address (or through a route's upstream,
//! see `chain`), reply, relay both ways, log.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hasocks_socks_wire::v5::ReplyCode;
use hasocks_socks_wire::TargetAddr;
use tokio::net::TcpStream;

use super::{reply, resolve, Request, Session};
use crate::generation::secs;
use crate::logger::Level;
use crate::route::Plan;
use crate::rules::CompiledRule;

/// Runs a CONNECT the rules passed.
pub(crate) async fn run(
    sess: &Session,
    rule: &CompiledRule,
    client: TcpStream,
    req: Request,
    mut resolved: Option<Vec<IpAddr>>,
) {
    let mut client = match super::chain::plan(sess, &req, &mut resolved).await {
        Plan::Chain(ups, direct) => {
            // Boxed, as the chained handshake's states would size every CONNECT task.
            match Box::pin(super::chain::connect(
                sess,
                rule,
                client,
                &req,
                (&ups, direct),
            ))
            .await
            {
                Some(c) => c,
                None => return,
            }
        }
        Plan::Unrouted | Plan::Direct(_) => client,
    };
    let rt = &sess.rt;
    let what = sess.what(&req);
    let target = req.target.to_string();
    let prefix = format!("{} {what}", rule.label());
    let connect_secs = rule.timeouts.connect.unwrap_or(rt.timeouts.connect);
    let limit = secs(connect_secs).unwrap_or(Duration::from_secs(75));
    let deadline = Instant::now() + limit;

    let outcome = async {
        let (ips, port) = match &req.target {
            TargetAddr::Ip(a) => (vec![a.ip()], a.port()),
            TargetAddr::Domain(name, port) => match resolved {
                Some(ips) if !ips.is_empty() => (ips, *port),
                _ => (
                    resolve(name, *port, limit)
                        .await
                        .map_err(|e| (ReplyCode::HostUnreachable, e.to_string()))?,
                    *port,
                ),
            },
        };
        connect_any(sess, &ips, port, deadline).await
    }
    .await;

    let upstream = match outcome {
        Ok(s) => s,
        Err((code, why)) => {
            sess.log_if(rule.log.error || rule.log.connect, Level::Info, || {
                format!(
                    "{prefix} -: client {} -> target {target}: {why} (reply {:02x})",
                    sess.peer(),
                    code.as_u8()
                )
            });
            sess.stats.connect_failed(code.as_u8());
            reply::fail(&mut client, req.version, code).await;
            return;
        }
    };
    let external = upstream
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let route = sess.route(format_args!("external {external} -> target {target}"));
    let leg = super::Leg {
        prefix: &prefix,
        route: &route,
        other: "target",
        started: "",
    };
    let client = (client, req.version, external);
    super::reply_and_relay(sess, rule, &leg, client, upstream, &req.pending).await;
}

/// Tries each address in turn until one connects or the deadline passes.
async fn connect_any(
    sess: &Session,
    ips: &[IpAddr],
    port: u16,
    deadline: Instant,
) -> Result<TcpStream, (ReplyCode, String)> {
    let mut last = (
        ReplyCode::HostUnreachable,
        "no address to connect to".to_string(),
    );
    for ip in ips {
        let now = Instant::now();
        if now >= deadline {
            return Err((
                ReplyCode::TtlExpired,
                "connect timed out (timeout.connect)".into(),
            ));
        }
        let source = sess
            .rt
            .outgoing_source(*ip, sess.internal)
            .map_err(|m| (ReplyCode::NetworkUnreachable, m.to_string()))?;
        let addr = SocketAddr::new(*ip, port);
        match hasocks_net::sock::connect_tcp(addr, source, deadline - now).await {
            Ok(s) => return Ok(s),
            Err(e) => {
                let code = reply::code_for_io(&e);
                let text = if e.kind() == std::io::ErrorKind::TimedOut {
                    format!("connect to {addr} timed out (timeout.connect)")
                } else {
                    format!("connect to {addr} failed: {e}")
                };
                last = (code, text);
            }
        }
    }
    Err(last)
}

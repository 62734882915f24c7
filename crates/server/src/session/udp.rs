//! UDP ASSOCIATE (SOCKS5): the client-side UDP socket on the address the TCP control
//! connection arrived on (as Dante does, so behind a layer-4 relay the reply names this
//! node, not the relay), port from `udp.portrange` or ephemeral, the reply, the relay loop
//! (in `relay`), and the association's log lines.

mod association;
mod batch;
mod cache;
mod chained;
mod source;

use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};

use hasocks_socks_wire::v5::ReplyCode;
use hasocks_socks_wire::TargetAddr;
use tokio::net::{TcpStream, UdpSocket};

use super::{reply, Request, Session};
use crate::generation::secs;
use crate::logger::Level;
use crate::route::Plan;
use crate::rules::CompiledRule;
use association::{Association, End};
use chained::Opened;
use source::Expected;

/// Runs a UDP ASSOCIATE the rules passed; returns when the association ends.
pub(crate) async fn run(sess: &Session, rule: &CompiledRule, mut control: TcpStream, req: Request) {
    let prefix = format!("{} {}", rule.label(), sess.what(&req));
    let declared = req.target.to_string();
    let log_err = |msg: &str| {
        sess.log_if(rule.log.error || rule.log.connect, Level::Info, || {
            msg.to_string()
        })
    };

    let sock = match bind_client_side(sess.internal.ip(), rule.udp_portrange) {
        Ok(s) => s,
        Err(e) => {
            log_err(&format!(
                "{prefix} -: client {} -> internal {}: no client-side UDP socket: {e}",
                sess.peer(),
                sess.internal
            ));
            reply::fail(&mut control, req.version, ReplyCode::GeneralFailure).await;
            return;
        }
    };
    let local = match sock.local_addr() {
        Ok(a) => a,
        Err(_) => return reply::fail(&mut control, req.version, ReplyCode::GeneralFailure).await,
    };
    // Through a route: the upstream's association is opened before the client's reply.
    let mut resolved = None;
    let upstream = match super::chain::plan(sess, &req, &mut resolved).await {
        Plan::Chain(ups, direct) => {
            match chained::open(sess, rule, &prefix, (&ups, direct)).await {
                Opened::Chained(up) => Some(up),
                Opened::Direct => None,
                Opened::Failed(code, why) => {
                    log_err(&format!(
                        "{prefix} -: {} (reply {:02x})",
                        sess.route(format_args!("udp {local} <- expected {declared}: {why}")),
                        code.as_u8()
                    ));
                    reply::fail(&mut control, req.version, code).await;
                    return;
                }
            }
        }
        Plan::Unrouted | Plan::Direct(_) => None,
    };
    let via = upstream
        .as_ref()
        .map(|u| format!(" {} relay {}", u.label, u.relay))
        .unwrap_or_default();
    // Our `hasocks.udp.advertise` (NAT, containers) replaces the address, never the port.
    let advertised = SocketAddr::new(sess.rt.udp_advertise.unwrap_or(local.ip()), local.port());
    if reply::send(&mut control, req.version, ReplyCode::Succeeded, advertised)
        .await
        .is_err()
    {
        return;
    }
    let adv_note = if advertised == local {
        String::new()
    } else {
        format!(" (advertised {advertised})")
    };
    let route = sess.route(format_args!(
        "udp {local}{adv_note} <- expected {declared}{via}"
    ));
    sess.log_if(rule.log.connect, Level::Info, || {
        format!("{prefix} [: {route}")
    });

    let expected = match &req.target {
        TargetAddr::Ip(a) => Expected::new(Some(a.ip()), a.port()),
        // A name is no UDP source; only its port can be checked.
        TargetAddr::Domain(_, port) => Expected::new(None, *port),
    };
    let idle = secs(rule.timeouts.io_udp.unwrap_or(sess.rt.timeouts.io_udp));
    let mut relay = Association::new(sess, rule, sock, expected, prefix.clone());
    if let Some(up) = upstream {
        relay = relay.chained(up);
    }
    let (stats, end) = relay.run(control, idle).await;
    sess.stats.udp(&stats.totals());
    let why = match end {
        End::ControlClosed => "control connection closed",
        End::ControlError => "control connection error",
        End::IdleTimeout => "i/o timeout (timeout.io.udp)",
        End::Cancelled => "server shutting down",
        End::SocketError => "client-side UDP socket error",
        End::UpstreamClosed => "the upstream closed its control connection",
    };
    let want = rule.log.disconnect || (rule.log.error && !matches!(end, End::ControlClosed));
    sess.log_if(want, Level::Info, || {
        format!(
            "{prefix} ]: {route}: {stats}, {:.3} s, {why}",
            sess.started.elapsed().as_secs_f64()
        )
    });
}

/// Binds the client-side socket on `ip`: a port of `range` when given (starting at a varying
/// offset so concurrent associations do not all probe from the bottom), else ephemeral.
fn bind_client_side(ip: IpAddr, range: Option<(u16, u16)>) -> std::io::Result<UdpSocket> {
    let std_sock = match range {
        None => StdUdpSocket::bind(SocketAddr::new(ip, 0))?,
        Some((a, b)) => {
            let (lo, hi) = (a.min(b), a.max(b));
            let span = u32::from(hi - lo) + 1;
            let start = start_offset() % span;
            let mut found = None;
            for i in 0..span {
                let off = (start + i) % span;
                let Ok(port) = u16::try_from(u32::from(lo) + off) else {
                    continue;
                };
                if port == 0 {
                    continue;
                }
                if let Ok(s) = StdUdpSocket::bind(SocketAddr::new(ip, port)) {
                    found = Some(s);
                    break;
                }
            }
            found.ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("no free port in udp.portrange {lo}-{hi}"),
                )
            })?
        }
    };
    std_sock.set_nonblocking(true)?;
    UdpSocket::from_std(std_sock)
}

fn start_offset() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    t.subsec_nanos() ^ (t.as_secs() as u32).rotate_left(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn portrange_binds_inside_the_range_and_fails_when_full() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        // Find two free adjacent-ish ports by asking the kernel, then use a 1-port range.
        let probe = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let s = bind_client_side(ip, Some((port, port))).unwrap();
        assert_eq!(s.local_addr().unwrap().port(), port);
        let err = bind_client_side(ip, Some((port, port))).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    }
}

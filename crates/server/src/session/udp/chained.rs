//! UDP ASSOCIATE through a SOCKS5 upstream: the server opens its own association upstream
//! (control connection, UDP ASSOCIATE naming the socket it will send from) and connects one
//! outgoing socket to the upstream's relay address. Client datagrams already carry the SOCKS
//! UDP header the upstream wants, so they go on as they are (after the rules judged them);
//! the upstream's datagrams carry the header naming the replying peer, which is what the
//! client wants, so they come back as they are (after the `udpreply` rules judged the peer).

use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::time::Duration;

use hasocks_socks_wire::v5;
use hasocks_socks_wire::TargetAddr;
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use crate::generation::secs;
use crate::route::CompiledRoute;
use crate::rules::CompiledRule;
use crate::session::chain::{dial, Failed};
use crate::session::Session;

/// An association opened through an upstream.
pub(crate) struct Upstream {
    /// Its control connection: when it closes, the association is over.
    pub control: TcpStream,
    /// The outgoing socket, connected to the upstream's relay address.
    pub socket: UdpSocket,
    /// The upstream's relay address.
    pub relay: SocketAddr,
    /// `route #N via HOST:PORT (socks_v5)` for the log.
    pub label: String,
}

/// How opening went.
pub(crate) enum Opened {
    /// Through an upstream.
    Chained(Upstream),
    /// The group ends with `via: direct` and no upstream worked: go direct.
    Direct,
    /// No upstream worked: the client gets this code.
    Failed(v5::ReplyCode, String),
}

/// Opens the association through the first upstream of `group` that answers.
pub(crate) async fn open(
    sess: &Session,
    rule: &CompiledRule,
    prefix: &str,
    group: (&[&CompiledRoute], Option<&CompiledRoute>),
) -> Opened {
    let Some(first) = group.0.iter().find_map(|r| r.upstream.as_ref()) else {
        return Opened::Direct;
    };
    let Some(upstream_ip) = first.addrs.first().map(|a| a.ip()) else {
        return Opened::Direct;
    };
    // The socket the datagrams leave from, named in the request so the upstream can check
    // their source: bound to a real address, never the wildcard.
    let socket = match bind_out(sess, upstream_ip) {
        Ok(s) => s,
        Err(e) => {
            return Opened::Failed(
                v5::ReplyCode::GeneralFailure,
                format!("no outgoing UDP socket towards {upstream_ip}: {e}"),
            )
        }
    };
    let from = match socket.local_addr() {
        Ok(a) => a,
        Err(e) => return Opened::Failed(v5::ReplyCode::GeneralFailure, e.to_string()),
    };
    let connect_secs = rule.timeouts.connect.unwrap_or(sess.rt.timeouts.connect);
    let deadline = Instant::now() + secs(connect_secs).unwrap_or(Duration::from_secs(75));
    let cmd = v5::Command::UdpAssociate;
    let d = match dial(
        sess,
        rule,
        prefix,
        group,
        cmd,
        &TargetAddr::Ip(from),
        deadline,
    )
    .await
    {
        Ok(d) => d,
        Err(Failed::Direct(_)) => return Opened::Direct,
        Err(Failed::Verdict(code, why) | Failed::Exhausted(code, why)) => {
            return Opened::Failed(code, why)
        }
    };
    let peer = d.stream.peer_addr().map(|a| a.ip()).unwrap_or(upstream_ip);
    let relay = match &d.bound {
        TargetAddr::Ip(a) if a.ip().is_unspecified() => SocketAddr::new(peer, a.port()),
        TargetAddr::Ip(a) => *a,
        TargetAddr::Domain(..) => {
            return Opened::Failed(
                v5::ReplyCode::GeneralFailure,
                format!("{}: relay address given as a name", d.label()),
            )
        }
    };
    if let Err(e) = socket.connect(relay) {
        return Opened::Failed(
            v5::ReplyCode::GeneralFailure,
            format!("{}: cannot reach its relay {relay}: {e}", d.label()),
        );
    }
    let socket = match socket
        .set_nonblocking(true)
        .and_then(|()| UdpSocket::from_std(socket))
    {
        Ok(s) => s,
        Err(e) => return Opened::Failed(v5::ReplyCode::GeneralFailure, e.to_string()),
    };
    Opened::Chained(Upstream {
        label: d.label(),
        control: d.stream,
        socket,
        relay,
    })
}

/// A socket on the address the server sends from towards `upstream` (`external.rotation`,
/// else the kernel's source address for that route).
fn bind_out(sess: &Session, upstream: IpAddr) -> std::io::Result<StdUdpSocket> {
    let src = sess
        .rt
        .outgoing_source(upstream, sess.internal)
        .ok()
        .flatten()
        .map_or_else(|| hasocks_net::sock::route_source(upstream), Ok)?;
    StdUdpSocket::bind(SocketAddr::new(src, 0))
}

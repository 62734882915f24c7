//! One client connection: PROXY header (trusted peers only) -> client rules -> method
//! negotiation -> request -> socks rules -> the command -> log.

pub mod auth;
mod bind;
mod chain;
mod connect;
pub(crate) mod encap;
pub(crate) mod gssapi;
pub(crate) mod identity;
mod negotiate;
pub(crate) mod reply;
mod throttle;
mod udp;
mod wire_io;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hasocks_conf::sockd::{Command, Method, SocksVersion, Verdict};
use hasocks_net::copy::EndReason;
use hasocks_socks_wire::v5::ReplyCode;
use hasocks_socks_wire::TargetAddr;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::admission::Ticket;
use crate::generation::{secs, Generation};
use crate::limits::RuleState;
use crate::logger::Level;
use crate::rules::{client_rule_matches, socks_rule_matches, CompiledRule, RequestFacts};
use crate::stats::{RuleKind, Stats};
use identity::{Authed, Identity};
use negotiate::{negotiate_request, Conn, NegError};
use wire_io::ReadError;

/// The SOCKS version a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// SOCKS 4 or 4a.
    V4,
    /// SOCKS 5.
    V5,
}

/// A negotiated request, ready for the rules.
pub(crate) struct Request {
    pub version: Version,
    pub command: Command,
    pub target: TargetAddr,
    /// Bytes the client sent after its request (forwarded once connected).
    pub pending: Vec<u8>,
    /// Who the client is, as negotiation left it.
    pub identity: Identity,
}

impl Request {
    /// The request as the rules (and routes) see it, from `client`.
    pub(crate) fn facts(&self, client: SocketAddr) -> RequestFacts<'_> {
        let (ip, name, port) = match &self.target {
            TargetAddr::Ip(a) => (Some(a.ip()), None, a.port()),
            TargetAddr::Domain(n, p) => (None, Some(n.as_str()), *p),
        };
        RequestFacts {
            client,
            command: self.command,
            version: match self.version {
                Version::V4 => SocksVersion::V4,
                Version::V5 => SocksVersion::V5,
            },
            target_ip: ip,
            target_name: name,
            target_port: port,
        }
    }
}

/// What every part of a session needs to know about it.
pub(crate) struct Session {
    pub rt: Arc<Generation>,
    pub client: SocketAddr,
    pub internal: SocketAddr,
    pub started: Instant,
    /// Fired when the server gives up waiting for sessions at shutdown.
    pub hard_stop: CancellationToken,
    /// The session's authentication, once the socks rules decided it.
    pub auth: OnceLock<Authed>,
    /// The limit states whose `bandwidth:` the session's traffic counts against.
    pub buckets: OnceLock<Vec<Arc<RuleState>>>,
    /// The server's counters.
    pub stats: Arc<Stats>,
    /// The password the client authenticated with, kept only when a route forwards it.
    pub secret: OnceLock<identity::Secret>,
}

impl Session {
    /// The client as log lines show it (`username%alice@127.0.0.1:5000`).
    pub fn peer(&self) -> identity::Peer<'_> {
        identity::Peer(self)
    }

    /// The route part of a log line: `client C -> internal I | ` and what follows.
    pub fn route(&self, rest: std::fmt::Arguments<'_>) -> String {
        format!(
            "client {} -> internal {} | {rest}",
            self.peer(),
            self.internal
        )
    }

    /// Keeps the client's password for the routes that forward it (only when one does).
    pub fn keep_password(&self, password: &[u8]) {
        if self.rt.routes.forwards_credentials {
            let _ = self.secret.set(identity::Secret(password.to_vec()));
        }
    }

    /// "socks5/connect"-style label for logs.
    pub fn what(&self, req: &Request) -> String {
        let v = match req.version {
            Version::V4 if matches!(&req.target, TargetAddr::Domain(..)) => "socks4a",
            Version::V4 => "socks4",
            Version::V5 => "socks5",
        };
        let c = match req.command {
            Command::Connect => "connect",
            Command::Bind => "bind",
            Command::UdpAssociate => "udpassociate",
            Command::BindReply => "bindreply",
            Command::UdpReply => "udpreply",
        };
        format!("{v}/{c}")
    }

    /// Logs a line if the rule asked for this kind of event. The line is only formatted
    /// then: most sessions log nothing, and they should not pay for the text.
    pub fn log_if(&self, wanted: bool, level: Level, msg: impl FnOnce() -> String) {
        if wanted {
            self.rt.logger.log(level, &msg());
        }
    }
}

/// Serves one accepted connection to its end. Never panics on client input. `ticket` holds
/// its admission: evicted while negotiating, the connection is closed.
pub fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    rt: Arc<Generation>,
    stats: Arc<Stats>,
    hard_stop: CancellationToken,
    ticket: Ticket,
) -> impl std::future::Future<Output = ()> {
    // The slot a `gssapi` session's per-message protection is kept in. Not an `async fn`, for
    // the same reason as `gssapi::scope`: the session's future is held once, not twice.
    gssapi::scope(serve_session(stream, peer, rt, stats, hard_stop, ticket))
}

async fn serve_session(
    mut stream: TcpStream,
    peer: SocketAddr,
    rt: Arc<Generation>,
    stats: Arc<Stats>,
    hard_stop: CancellationToken,
    mut ticket: Ticket,
) {
    let internal = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let negotiate = secs(rt.timeouts.negotiate);
    let mut client = peer;
    // A PROXY LOCAL header: the proxy's own connection (a health check), not a client's.
    let mut local = false;
    if rt.expects_proxy_header(peer.ip()) {
        let header = hasocks_net::proxy::read_header(
            &mut stream,
            negotiate.unwrap_or(Duration::from_secs(30)),
        );
        let header = tokio::select! {
            h = header => h,
            _ = ticket.evicted() => return,
        };
        match header {
            Ok(Some(h)) => {
                client = h.src;
                if ticket.source(client.ip()).is_err() {
                    return;
                }
            }
            Ok(None) => local = true,
            Err(e) => {
                rt.logger.log(
                    Level::Warn,
                    &format!("client {peer} -> internal {internal}: bad PROXY header: {e}"),
                );
                return;
            }
        }
    }
    let sess = Session {
        rt,
        client,
        internal,
        started: Instant::now(),
        hard_stop,
        auth: OnceLock::new(),
        buckets: OnceLock::new(),
        stats,
        secret: OnceLock::new(),
    };
    let rt = &sess.rt;

    let (crule, clientmethod) = Box::pin(match_client_rule(&sess)).await;
    if crule.verdict == Verdict::Block {
        sess.stats.block(RuleKind::Client, crule.number, client, "");
        sess.log_if(crule.log.connect || crule.log.error, Level::Info, || {
            format!(
                "{} client: client {client} -> internal {internal}: blocked",
                crule.label()
            )
        });
        return;
    }
    // The client rule's limits hold for the whole session (the slot drops with it).
    let _client_slot = match crule.limits.as_ref().map(|l| l.admit(client.ip())) {
        Some(Err(e)) => {
            sess.stats.block(RuleKind::Client, crule.number, client, "");
            sess.log_if(true, Level::Info, || {
                format!(
                    "block({}) client: client {client} -> internal {internal}: {e}",
                    crule.number
                )
            });
            return;
        }
        Some(Ok(slot)) => Some(slot),
        None => None,
    };

    let neg_secs = crule.timeouts.negotiate.unwrap_or(rt.timeouts.negotiate);
    let mut buf = Vec::with_capacity(512);
    let mut read = 0usize;
    let mut conn = Conn {
        stream: &mut stream,
        buf: &mut buf,
        read: &mut read,
    };
    // Boxed: the negotiation (with GSS-API's exchange) is over before the session's long
    // part, and its states would otherwise size every session's task for its whole life.
    let negotiation = Box::pin(negotiate_request(&mut conn, &sess, crule, clientmethod));
    let negotiation = async {
        match secs(neg_secs) {
            Some(limit) => match tokio::time::timeout(limit, negotiation).await {
                Ok(r) => r,
                Err(_) => Err(NegError::Timeout(neg_secs)),
            },
            None => negotiation.await,
        }
    };
    let req = tokio::select! {
        r = negotiation => r,
        _ = ticket.evicted() => Err(NegError::Evicted),
    };
    ticket.negotiated();
    let req = match req {
        Ok(r) => r,
        // A proxy's `check tcp`: LOCAL header, then close. Not worth a log line.
        Err(NegError::Read(ReadError::Eof, None)) if local => return,
        // Admission logs evictions folded (a flood would otherwise log a line each).
        Err(e @ NegError::Evicted) => {
            sess.stats.negotiation_failed(e.counted_as());
            return;
        }
        Err(e) => {
            sess.stats.negotiation_failed(e.counted_as());
            if let Some((version, code)) = e.reply() {
                reply::fail(&mut stream, version, code).await;
            }
            // Authentication failures are always logged (on the client rule's line, with
            // Dante's wording); other negotiation errors when the rule asks.
            let wanted = e.is_auth() || crule.log.error || crule.log.connect || rt.debug > 0;
            sess.log_if(wanted, Level::Info, || {
                format!(
                    "block({}) client: client {} -> internal {internal}: error after reading {read} byte{} in {} second{}: {e}",
                    crule.number,
                    sess.peer(),
                    plural(read as u64),
                    sess.started.elapsed().as_secs(),
                    plural(sess.started.elapsed().as_secs()),
                )
            });
            let _ = stream.shutdown().await;
            return;
        }
    };

    let target_desc = req.target.to_string();
    let (rule, resolved, identity) = Box::pin(match_socks(&sess, &req)).await;
    if let Some(a) = identity.known() {
        let _ = sess.auth.set(a.clone());
    }
    if rule.verdict == Verdict::Block {
        sess.stats
            .block(RuleKind::Socks, rule.number, client, &target_desc);
        let why = match (rule.number, identity.failures().as_slice()) {
            (0, []) => "no rule matched".to_string(),
            (0, fails) => format!("no rule matched: {}", fails.join("; ")),
            _ => "blocked by rule".to_string(),
        };
        sess.log_if(rule.log.connect || rule.log.error, Level::Info, || {
            format!(
                "{} {} -: client {} -> target {target_desc}: {why}",
                rule.label(),
                sess.what(&req),
                sess.peer()
            )
        });
        let code = ReplyCode::NotAllowed;
        reply::fail(&mut stream, req.version, code).await;
        return;
    }
    let _socks_slot = match rule.limits.as_ref().map(|l| l.admit(client.ip())) {
        Some(Err(e)) => {
            sess.stats
                .block(RuleKind::Socks, rule.number, client, &target_desc);
            sess.log_if(true, Level::Info, || {
                format!(
                    "block({}) {} ]: client {} -> target {target_desc}: {e}",
                    rule.number,
                    sess.what(&req),
                    sess.peer()
                )
            });
            reply::fail(&mut stream, req.version, ReplyCode::NotAllowed).await;
            return;
        }
        Some(Ok(slot)) => Some(slot),
        None => None,
    };
    let buckets: Vec<Arc<RuleState>> = [crule, rule]
        .iter()
        .filter_map(|r| r.limits.clone())
        .filter(|l| l.bucket().is_some())
        .collect();
    let _ = sess.buckets.set(buckets);
    let version = match (req.version, &req.target) {
        (Version::V4, TargetAddr::Domain(..)) => 1,
        (Version::V4, _) => 0,
        (Version::V5, _) => 2,
    };
    let command = match req.command {
        Command::Bind => 1,
        Command::UdpAssociate => 2,
        _ => 0,
    };
    let _open = sess.stats.session(version, command);
    match req.command {
        // BIND and UDP sessions are boxed so that the task of every CONNECT session (the
        // many, and the ones that sit idle) is not allocated at their larger size.
        Command::Connect => connect::run(&sess, rule, stream, req, resolved).await,
        Command::Bind => Box::pin(bind::run(&sess, rule, stream, req, resolved)).await,
        Command::UdpAssociate if req.version == Version::V5 => {
            Box::pin(udp::run(&sess, rule, stream, req)).await
        }
        _ => {
            sess.log_if(rule.log.error, Level::Info, || {
                format!(
                    "{} {} -: client {} -> target {target_desc}: command not supported yet",
                    rule.label(),
                    sess.what(&req),
                    sess.peer()
                )
            });
            reply::fail(&mut stream, req.version, ReplyCode::CommandNotSupported).await;
        }
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The first client rule that matches the connection's addresses and whose clientmethod
/// the client meets: `none`, or a passing address-only PAM check (`pam.address`,
/// `pam.any`). Returns the rule and the clientmethod that admitted it.
async fn match_client_rule(sess: &Session) -> (&CompiledRule, Method) {
    let rt = &sess.rt;
    for rule in &rt.client_rules {
        if !client_rule_matches(rule, sess.client, sess.internal) {
            continue;
        }
        if rule.clientmethods.contains(&Method::None) {
            return (rule, Method::None);
        }
        for m in rule.clientmethods.iter().filter(|m| m.is_pam()) {
            let Some(db) = rt.db(*m, &rule.pam_service) else {
                continue;
            };
            let out = rt
                .shared
                .verifier
                .check(
                    &db,
                    auth::PAM_ADDRESS_USER.as_bytes(),
                    b"",
                    sess.client.ip(),
                )
                .await;
            match out {
                auth::Outcome::Pass => return (rule, *m),
                auth::Outcome::Fail(why) => sess.log_if(true, Level::Info, || {
                    format!(
                        "block({}) client: client {} -> internal {}: clientmethod {}: {why}",
                        rule.number,
                        sess.client,
                        sess.internal,
                        m.word()
                    )
                }),
            }
        }
    }
    (&rt.default_rule, Method::None)
}

/// Finds the socks rule for a request; a name target is resolved only when a rule needs its
/// addresses (so `.domain` rules decide on the name as requested). Returns the addresses if
/// they were resolved on the way.
async fn match_socks<'a>(
    sess: &'a Session,
    req: &Request,
) -> (&'a CompiledRule, Option<Vec<IpAddr>>, Identity) {
    let mut identity = req.identity.clone();
    let facts = req.facts(sess.client);
    let (name, port) = (facts.target_name, facts.target_port);
    let mut resolved: Option<Vec<IpAddr>> = None;
    for rule in &sess.rt.socks_rules {
        let verdict = match socks_rule_matches(rule, &facts, resolved.as_deref()) {
            Some(v) => v,
            None => {
                let name = name.unwrap_or_default();
                let limit = secs(sess.rt.timeouts.connect).unwrap_or(Duration::from_secs(30));
                resolved = Some(resolve(name, port, limit).await.unwrap_or_default());
                socks_rule_matches(rule, &facts, resolved.as_deref()).unwrap_or(false)
            }
        };
        // Address conditions first: a password is checked only for a rule it could pass.
        if verdict && identity::rule_accepts(sess, rule, &mut identity).await {
            return (rule, resolved, identity);
        }
    }
    (&sess.rt.default_rule, resolved, identity)
}

/// How a TCP session's log lines name it: the rule's prefix, the route, the far side
/// ("target" for CONNECT, "peer" for BIND) and what its start line adds.
pub(crate) struct Leg<'a> {
    pub prefix: &'a str,
    pub route: &'a str,
    pub other: &'a str,
    pub started: &'a str,
}

/// Sends the success reply naming `bound`, logs the start (`log: connect`), relays the session
/// both ways (after first passing on `pending`, bytes the client sent early) and logs its end:
/// `log: disconnect`, or `log: error` when it ended badly.
pub(crate) async fn reply_and_relay(
    sess: &Session,
    rule: &CompiledRule,
    leg: &Leg<'_>,
    (mut client, version, bound): (TcpStream, Version, SocketAddr),
    mut far: TcpStream,
    pending: &[u8],
) {
    let Leg {
        prefix,
        route,
        other,
        started,
    } = leg;
    if let Err(e) = reply::send(&mut client, version, ReplyCode::Succeeded, bound).await {
        sess.log_if(rule.log.error, Level::Info, || {
            format!("{prefix} -: {route}: client went away before the reply: {e}")
        });
        return;
    }
    sess.log_if(rule.log.connect, Level::Info, || {
        format!("{prefix} [: {route}{started}")
    });
    let protect = gssapi::protected();
    let mut early = pending.len() as u64;
    // Protected, `pending` is still framed: the encapsulated relay unwraps it.
    if protect.is_some() || (!pending.is_empty() && far.write_all(pending).await.is_err()) {
        early = 0;
    }
    let idle = rule.timeouts.io_tcp.unwrap_or(sess.rt.timeouts.io_tcp);
    let opts = hasocks_net::copy::CopyOpts {
        idle_timeout: secs(idle),
        cancel: Some(sess.hard_stop.clone()),
        ..Default::default()
    };
    let buckets = sess.buckets.get().filter(|b| !b.is_empty());
    let (report, gss_why) = match (&protect, buckets) {
        // The GSS-API and throttled pumps are boxed: a plain session's task is not sized
        // for their states.
        (Some(p), b) => {
            Box::pin(encap::pump(
                p,
                client,
                far,
                pending,
                opts,
                b.map(|v| v.as_slice()),
            ))
            .await
        }
        (None, Some(states)) => (
            Box::pin(throttle::pump(client, far, states, opts)).await,
            None,
        ),
        (None, None) => (hasocks_net::copy::pump(client, far, opts).await, None),
    };
    sess.stats.bytes(report.a_to_b + early, report.b_to_a);
    let why = match report.end {
        EndReason::Closed => "closed".to_string(),
        EndReason::IdleTimeout => "i/o timeout (timeout.io)".to_string(),
        EndReason::Cancelled => "server shutting down".to_string(),
        EndReason::ErrorA => "client connection error".to_string(),
        EndReason::ErrorB => format!("{other} connection error"),
    };
    let why = gss_why.unwrap_or(why);
    let want = rule.log.disconnect || (rule.log.error && report.end != EndReason::Closed);
    sess.log_if(want, Level::Info, || {
        format!(
            "{prefix} ]: {route}: {} bytes up, {} bytes down, {:.3} s, {why}",
            report.a_to_b + early,
            report.b_to_a,
            sess.started.elapsed().as_secs_f64()
        )
    });
}

/// Resolves a host name (getaddrinfo on the blocking pool) under a deadline.
pub(crate) async fn resolve(
    name: &str,
    port: u16,
    limit: Duration,
) -> std::io::Result<Vec<IpAddr>> {
    let lookup = tokio::net::lookup_host((name.to_string(), port));
    match tokio::time::timeout(limit, lookup).await {
        Ok(Ok(addrs)) => {
            let v: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
            if v.is_empty() {
                Err(std::io::Error::new(
                    std::io::ErrorKind::HostUnreachable,
                    "name has no address",
                ))
            } else {
                Ok(v)
            }
        }
        Ok(Err(e)) => Err(std::io::Error::new(
            std::io::ErrorKind::HostUnreachable,
            format!("cannot resolve {name}: {e}"),
        )),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("resolving {name} timed out"),
        )),
    }
}

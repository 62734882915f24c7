//! Server chaining for one session: the plan of its request (which routes, in which order),
//! and the walk through the group's upstreams: connect from the external address, run the
//! upstream's handshake, and on a failure that is the upstream's (connect error, timeout,
//! broken handshake, a reply that blames it) count it, mark the upstream per
//! `route.maxfail`, and try the next one at once, all within the client's
//! `timeout.connect`. A verdict on the target (refused, unreachable) is passed on as is.

pub(crate) mod bind;
mod connect;

use std::net::IpAddr;
use std::time::Duration;

use hasocks_conf::sockd::ProxyProtocol;
use hasocks_probe::chain::Handshake;
use hasocks_probe::{Auth, Offer, ProbeError};
use hasocks_socks_wire::v5::{self, ReplyCode};
use hasocks_socks_wire::TargetAddr;
use tokio::net::TcpStream;
use tokio::time::Instant;

pub(crate) use connect::connect;

use super::{resolve, Request, Session};
use crate::generation::secs;
use crate::logger::Level;
use crate::route::health::Transition;
use crate::route::{CompiledRoute, Plan, Upstream};
use crate::rules::CompiledRule;

/// The plan of `req`; resolves the target name when a route needs its addresses (and
/// keeps them in `resolved`).
pub(crate) async fn plan<'a>(
    sess: &'a Session,
    req: &Request,
    resolved: &mut Option<Vec<IpAddr>>,
) -> Plan<'a> {
    let routes = &sess.rt.routes;
    if routes.list.is_empty() {
        return Plan::Unrouted;
    }
    let facts = req.facts(sess.client);
    let (name, port) = (facts.target_name, facts.target_port);
    if let Some(p) = routes.plan(&facts, resolved.as_deref()) {
        return p;
    }
    let limit = secs(sess.rt.timeouts.connect).unwrap_or(Duration::from_secs(30));
    let ips = resolve(name.unwrap_or_default(), port, limit)
        .await
        .unwrap_or_default();
    let ips = resolved.insert(ips);
    routes.plan(&facts, Some(ips)).unwrap_or(Plan::Unrouted)
}

/// A connection through an upstream, its handshake done.
pub(crate) struct Dialed<'a> {
    /// The stream, ready for the session's bytes (or, for UDP, the association's control).
    pub stream: TcpStream,
    /// The upstream's bound address (unspecified where its protocol gives none).
    pub bound: TargetAddr,
    /// The route it went through.
    pub route: &'a CompiledRoute,
    /// Its upstream.
    pub upstream: &'a Upstream,
}

impl Dialed<'_> {
    /// `route #N via HOST:PORT (protocol)` for log lines.
    pub fn label(&self) -> String {
        label(self.route, self.upstream)
    }
}

fn label(route: &CompiledRoute, u: &Upstream) -> String {
    format!(
        "route #{} via {} ({})",
        route.number,
        u.name(),
        u.protocol.word()
    )
}

/// Why no upstream carried the request.
pub(crate) enum Failed<'a> {
    /// An upstream gave the target's verdict (or refused the client's credentials): the
    /// client gets this code, no other upstream is tried.
    Verdict(ReplyCode, String),
    /// Every upstream failed; the client gets this code.
    Exhausted(ReplyCode, String),
    /// Every upstream failed and the group ends with this `via: direct` route.
    Direct(&'a CompiledRoute),
}

/// Whose fault a failed attempt is.
enum Fault {
    /// The upstream's: the next one is tried. `mark` counts it towards `route.maxfail`.
    Upstream { reason: usize, mark: bool },
    /// The target's verdict, given by the upstream.
    Target(ReplyCode),
    /// The client's credentials were refused upstream.
    Client,
}

/// Indices into [`crate::route::health::FAILURES`].
const CONNECT: usize = 0;
const TIMEOUT: usize = 1;
const HANDSHAKE: usize = 2;
const METHOD: usize = 3;
const REPLY: usize = 4;
const REFUSED: usize = 5;
const AUTH: usize = 6;

fn classify(e: &ProbeError) -> Fault {
    let up = |reason, mark| Fault::Upstream { reason, mark };
    match e {
        ProbeError::Connect(io) => up(CONNECT, !hasocks_net::sock::is_local_exhaustion(io)),
        ProbeError::Timeout(_) => up(TIMEOUT, true),
        ProbeError::Io(_) | ProbeError::Protocol(_) => up(HANDSHAKE, true),
        ProbeError::NoAcceptableMethod => up(METHOD, true),
        ProbeError::AuthFailed(_) => Fault::Client,
        // RFC 1928: 03-06 are about the target; 02 is the upstream's policy for this
        // request (another upstream may allow it, and the upstream is not broken).
        ProbeError::Rejected(code @ 3..=6) => {
            Fault::Target(ReplyCode::from_u8(*code).unwrap_or(ReplyCode::GeneralFailure))
        }
        ProbeError::Rejected(2) | ProbeError::Socks4Rejected(_) => up(REFUSED, false),
        ProbeError::Rejected(_) => up(REPLY, true),
        ProbeError::HttpStatus(403 | 407, _) => up(REFUSED, false),
        ProbeError::HttpStatus(502, _) => Fault::Target(ReplyCode::HostUnreachable),
        ProbeError::HttpStatus(504, _) => Fault::Target(ReplyCode::TtlExpired),
        ProbeError::HttpStatus(..) => up(REPLY, true),
        ProbeError::DataMismatch | ProbeError::NoInbound => up(HANDSHAKE, true),
    }
}

/// The credentials a `username` route forwards: the client's own, when it gave them.
fn credentials(sess: &Session) -> Option<Auth> {
    let user = sess.auth.get()?.user.as_ref()?;
    let pass = sess.secret.get()?;
    Some(Auth {
        user: String::from_utf8(user.clone()).ok()?,
        pass: String::from_utf8(pass.0.clone()).ok()?,
    })
}

/// One attempt through `u`: connect (each of its addresses in turn) and handshake by
/// `deadline`.
async fn attempt(
    sess: &Session,
    u: &Upstream,
    command: v5::Command,
    target: &TargetAddr,
    auth: Option<&Auth>,
    deadline: Instant,
) -> Result<(TcpStream, TargetAddr), ProbeError> {
    let mut last = ProbeError::Timeout("connect");
    for addr in &u.addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ProbeError::Timeout("connect"));
        }
        let source = sess
            .rt
            .outgoing_source(addr.ip(), sess.internal)
            .ok()
            .flatten();
        let stream = match hasocks_net::sock::connect_tcp(*addr, source, left).await {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = ProbeError::Timeout("connect");
                continue;
            }
            Err(e) => {
                last = ProbeError::Connect(e);
                continue;
            }
        };
        let user_id = auth.map(|a| a.user.as_bytes()).unwrap_or_default();
        let handshake = match u.protocol {
            ProxyProtocol::SocksV5 => Handshake::Socks5(Offer {
                none: u.offer_none,
                auth,
            }),
            ProxyProtocol::SocksV4 => Handshake::Socks4(user_id),
            ProxyProtocol::Http => Handshake::Http,
        };
        return handshake.run(stream, command, target, deadline).await;
    }
    Err(last)
}

/// Tries the upstreams of `ups` in order until one carries `command` to `target`. `prefix`
/// starts the session's log lines; `rule` says what to log.
pub(crate) async fn dial<'a>(
    sess: &Session,
    rule: &CompiledRule,
    prefix: &str,
    (ups, direct): (&[&'a CompiledRoute], Option<&'a CompiledRoute>),
    command: v5::Command,
    target: &TargetAddr,
    deadline: Instant,
) -> Result<Dialed<'a>, Failed<'a>> {
    let routes = &sess.rt.routes;
    let auth = credentials(sess);
    let mut why = String::from("no upstream to try");
    let mut code = ReplyCode::GeneralFailure;
    for (i, route) in ups.iter().enumerate() {
        let Some(u) = route.upstream.as_ref() else {
            continue;
        };
        let now = Instant::now();
        if now >= deadline {
            why = format!("{why}; timeout.connect ran out");
            code = ReplyCode::TtlExpired;
            break;
        }
        let auth = auth.as_ref().filter(|_| u.offer_username);
        if u.offer_username && !u.offer_none && auth.is_none() {
            why = format!(
                "{} needs the client's user name and password, and the client gave none",
                label(route, u)
            );
            route.stats.failure(AUTH);
            continue;
        }
        let until = routes.attempt.map_or(deadline, |a| deadline.min(now + a));
        let started = std::time::Instant::now();
        let e = match attempt(sess, u, command, target, auth, until).await {
            Ok((stream, bound)) => {
                route.stats.latency.observe(started.elapsed());
                route
                    .stats
                    .sessions
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if u.health.succeeded() == Some(Transition::Cleared) {
                    log_transition(sess, u, "is back: a session went through");
                }
                return Ok(Dialed {
                    stream,
                    bound,
                    route,
                    upstream: u,
                });
            }
            Err(e) => e,
        };
        let fault = classify(&e);
        let text = format!("{}: {}", label(route, u), e.short());
        match fault {
            Fault::Target(c) => return Err(Failed::Verdict(c, text)),
            Fault::Client => {
                route.stats.failure(AUTH);
                return Err(Failed::Verdict(ReplyCode::NotAllowed, text));
            }
            Fault::Upstream { reason, mark } => {
                route.stats.failure(reason);
                if mark {
                    let t = u.health.failed(routes.maxfail, false, routes.badexpire);
                    if t == Some(Transition::MarkedBad) {
                        log_transition(sess, u, &format!("marked bad: {}", e.short()));
                    }
                }
                let next = if i + 1 < ups.len() {
                    ", trying the next upstream of the group"
                } else {
                    ""
                };
                sess.log_if(rule.log.error || rule.log.connect, Level::Info, || {
                    format!("{prefix} -: {}", sess.route(format_args!("{text}{next}")))
                });
                why = text;
                code = if reason == TIMEOUT {
                    ReplyCode::TtlExpired
                } else {
                    ReplyCode::GeneralFailure
                };
            }
        }
    }
    match direct {
        Some(d) => Err(Failed::Direct(d)),
        None => Err(Failed::Exhausted(code, why)),
    }
}

/// An upstream's mark changed: always logged (a warning), whatever the rules ask.
fn log_transition(sess: &Session, u: &Upstream, what: &str) {
    sess.rt
        .logger
        .log(Level::Warn, &format!("route: upstream {} {what}", u.name()));
}

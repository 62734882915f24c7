//! Active health checks of the upstreams (`hasocks.route.check.interval`): every interval,
//! the relay's end-to-end check through each upstream (CONNECT to our own listener, random
//! bytes each way), spoken in the upstream's protocol, so that a dead upstream is marked
//! bad before a client meets it and a returning one is cleared. One task for the server's
//! life; each round reads the generation in effect, and a reload wakes it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hasocks_conf::sockd::ProxyProtocol;
use hasocks_probe::chain::Handshake;
use hasocks_probe::{Offer, ProbeError, Rendezvous};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::health::{Health, Transition};
use crate::generation::Generation;
use crate::logger::Level;

/// A check's time when `hasocks.route.timeout` is 0.
const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// What one check needs, owned (checks run as tasks of their own).
struct Job {
    name: String,
    addr: SocketAddr,
    protocol: ProxyProtocol,
    health: Arc<Health>,
}

/// Runs the checks until `stop`; `wake` is notified when a reload publishes a generation.
pub async fn run(rt: Arc<ArcSwap<Generation>>, wake: Arc<Notify>, stop: CancellationToken) {
    let mut listeners: HashMap<IpAddr, Arc<Rendezvous>> = HashMap::new();
    loop {
        let g = rt.load_full();
        let Some(interval) = g.routes.check_interval else {
            tokio::select! {
                () = wake.notified() => continue,
                () = stop.cancelled() => return,
            }
        };
        round(&g, &mut listeners).await;
        drop(g);
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = wake.notified() => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Checks every upstream of `g` at once and records the verdicts.
async fn round(g: &Generation, listeners: &mut HashMap<IpAddr, Arc<Rendezvous>>) {
    let timeout = g.routes.attempt.unwrap_or(DEFAULT_CHECK_TIMEOUT);
    let mut tasks = tokio::task::JoinSet::new();
    for u in g.routes.upstreams() {
        let Some(addr) = u.addrs.first().copied() else {
            continue;
        };
        let local = hasocks_net::sock::route_source(addr.ip()).unwrap_or(match addr.ip() {
            IpAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
            IpAddr::V6(_) => IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]),
        });
        let rv = match listeners.get(&local) {
            Some(rv) => rv.clone(),
            None => match Rendezvous::bind(local).await {
                Ok(rv) => {
                    let rv = Arc::new(rv);
                    listeners.insert(local, rv.clone());
                    rv
                }
                Err(e) => {
                    g.logger.log(
                        Level::Error,
                        &format!("route checks: cannot listen on {local}: {e}"),
                    );
                    continue;
                }
            },
        };
        let job = Job {
            name: u.name(),
            addr,
            protocol: u.protocol,
            health: u.health.clone(),
        };
        tasks.spawn(async move {
            let verdict = check(&rv, &job, timeout).await;
            (job, verdict)
        });
    }
    while let Some(done) = tasks.join_next().await {
        let Ok((job, verdict)) = done else {
            continue;
        };
        let (ok, text) = match verdict {
            Verdict::Up(t) => (true, t),
            Verdict::Down(t) => (false, t),
            // Our own trouble says nothing about the upstream.
            Verdict::Local(t) => {
                g.logger
                    .log(Level::Warn, &format!("route check of {}: {t}", job.name));
                continue;
            }
        };
        let change = job
            .health
            .checked(ok, text.clone(), g.routes.maxfail, g.routes.badexpire);
        match change {
            Some(Transition::MarkedBad) => g.logger.log(
                Level::Warn,
                &format!(
                    "route: upstream {} marked bad: check failed: {text}",
                    job.name
                ),
            ),
            Some(Transition::Cleared) => g.logger.log(
                Level::Warn,
                &format!(
                    "route: upstream {} is back: check passed ({text})",
                    job.name
                ),
            ),
            None => {}
        }
    }
}

/// A check's outcome.
enum Verdict {
    /// The upstream forwards (or answers SOCKS and wants a login the check does not have).
    Up(String),
    /// It does not.
    Down(String),
    /// We could not check (our side ran out of resources).
    Local(String),
}

/// One end-to-end check through `job`'s upstream.
async fn check(rv: &Rendezvous, job: &Job, timeout: Duration) -> Verdict {
    let handshake = match job.protocol {
        ProxyProtocol::SocksV5 => Handshake::Socks5(Offer {
            none: true,
            auth: None,
        }),
        ProxyProtocol::SocksV4 => Handshake::Socks4(b""),
        ProxyProtocol::Http => Handshake::Http,
    };
    let start = std::time::Instant::now();
    match hasocks_probe::end_to_end_through(rv, job.addr, &handshake, timeout, &[]).await {
        Ok(d) => Verdict::Up(format!("ok in {:.1} ms", d.as_secs_f64() * 1000.0)),
        // A username upstream answered SOCKS properly: alive; its forwarding is proved by
        // the sessions that log in.
        Err(ProbeError::NoAcceptableMethod | ProbeError::AuthFailed(_)) => {
            Verdict::Up("answers SOCKS, wants a login (not checked end to end)".into())
        }
        Err(ProbeError::NoInbound) if rv.troubled_since(start) => {
            Verdict::Local("check listener could not accept (out of descriptors?)".into())
        }
        Err(ProbeError::Connect(e) | ProbeError::Io(e))
            if hasocks_net::sock::is_local_exhaustion(&e) =>
        {
            Verdict::Local(e.to_string())
        }
        Err(e) => Verdict::Down(e.short()),
    }
}

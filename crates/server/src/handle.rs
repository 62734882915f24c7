//! Listeners, accept loops, live reload and graceful stop. Long-lived: the listeners (keyed by
//! address), the counters and the session tracker; swappable: the runtime built from one
//! sockd.conf (rules, methods, log destinations). Used through `&self`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use hasocks_conf::sockd::SockdConfig;
use hasocks_lifecycle::Drain;
use hasocks_net::listen::Acceptor;
use tokio_util::sync::CancellationToken;

use crate::admission::{Admission, AdmissionStatus, Caps, Derive as _};
use crate::generation::{resolve_host, Generation, GenerationError, Shared};
use crate::logger::{Level, Logger};
use crate::session;
use crate::stats::Stats;

/// Why the server could not start, or why a reload was refused (the running config then
/// stays).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The file does not parse (`file:line:col: message`).
    #[error(transparent)]
    Config(#[from] hasocks_conf::ConfError),
    /// A setting could not be put into effect (unresolvable name, log file, password file).
    #[error(transparent)]
    Generation(#[from] crate::generation::GenerationError),
    /// Building the generation's thread failed (a panic there: a bug).
    #[error("internal error building the config: {0}")]
    Internal(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr} (internal: line {line}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Config line of the `internal:`.
        line: u32,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server is stopping.
    #[error("the server is shutting down")]
    Stopped,
}

/// What a reload changed (the control protocol carries it as is).
pub use hasocks_ctl_proto::server::ServerReloadReport as ReloadReport;

/// One listening address.
struct Listener {
    actual: SocketAddr,
    stop: CancellationToken,
    /// The same socket, for a successor at a binary upgrade.
    copy: Option<std::net::TcpListener>,
}

/// A running SOCKS server.
pub struct ServerHandle {
    rt: Arc<ArcSwap<Generation>>,
    /// What outlives config generations: the password checker, limit states of rules.
    shared: Arc<Shared>,
    stats: Arc<Stats>,
    /// The connection caps and who holds what (long-lived; a reload changes the caps).
    admission: Arc<Admission>,
    /// By configured address (`port = 0` stays 0 here; `actual` has the real port).
    listeners: Mutex<BTreeMap<SocketAddr, Listener>>,
    /// Stops accepting, tracks the sessions, cuts them at the deadline.
    drain: Drain,
    /// The config generation in effect: 1 at start, +1 per reload.
    generation: std::sync::atomic::AtomicU64,
    reload_lock: tokio::sync::Mutex<()>,
    /// Listening sockets from a predecessor or the service manager, by address, not yet
    /// claimed by an `internal:`.
    pool: Mutex<Vec<(SocketAddr, std::net::TcpListener)>>,
    /// Wakes the upstream checks when a reload publishes a generation.
    checks_wake: Arc<tokio::sync::Notify>,
}

/// Builds the runtime (blocking name resolution) off the async threads.
async fn build_runtime(
    cfg: SockdConfig,
    shared: Arc<Shared>,
) -> Result<(Generation, Vec<(SocketAddr, u32)>), StartError> {
    tokio::task::spawn_blocking(move || {
        let logger = Logger::new(&cfg.logoutput, &cfg.errorlog).map_err(GenerationError::Log)?;
        let mut addrs = Vec::new();
        for internal in &cfg.internals {
            let ips = resolve_host(&internal.host).map_err(|source| GenerationError::Resolve {
                keyword: "internal",
                source,
            })?;
            for ip in ips {
                let a = SocketAddr::new(ip, internal.port);
                if !addrs.iter().any(|(b, _)| *b == a) {
                    addrs.push((a, internal.line));
                }
            }
        }
        let rt = Generation::build_with(&cfg, Arc::new(logger), &shared)?;
        Ok((rt, addrs))
    })
    .await
    .map_err(|e| StartError::Internal(e.to_string()))?
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ServerHandle {
    /// Binds every `internal:` address and starts serving.
    pub async fn start(cfg: SockdConfig) -> Result<Self, StartError> {
        Self::start_with(cfg, Vec::new()).await
    }

    /// [`start`](Self::start) with listening sockets handed in (from the process this one
    /// upgrades, keyed by its configured address, or from socket activation, keyed by the
    /// address they are bound to): an `internal:` address that has one uses it instead of
    /// binding. Sockets no `internal:` claims are closed, with a warning.
    pub async fn start_with(
        cfg: SockdConfig,
        inherited: Vec<(SocketAddr, std::net::TcpListener)>,
    ) -> Result<Self, StartError> {
        let shared = Arc::new(Shared::default());
        let caps = caps_of(&cfg);
        let (rt, addrs) = build_runtime(cfg, shared.clone()).await?;
        let h = Self {
            rt: Arc::new(ArcSwap::from_pointee(rt)),
            shared,
            stats: Arc::default(),
            admission: Admission::new(caps),
            listeners: Mutex::default(),
            drain: Drain::default(),
            generation: std::sync::atomic::AtomicU64::new(1),
            reload_lock: tokio::sync::Mutex::new(()),
            pool: Mutex::new(inherited),
            checks_wake: Arc::default(),
        };
        tokio::spawn(crate::route::checks::run(
            h.rt.clone(),
            h.checks_wake.clone(),
            h.drain.stop_token(),
        ));
        let fresh = h.bind_new(&addrs)?;
        h.apply(fresh, &addrs);
        for (addr, _) in std::mem::take(&mut *lock(&h.pool)) {
            tracing::warn!("an inherited listening socket on {addr} matches no internal:; closed");
        }
        Ok(h)
    }

    /// Binds the wanted addresses not yet listened on, all or nothing (nothing changes yet).
    fn bind_new(
        &self,
        wanted: &[(SocketAddr, u32)],
    ) -> Result<Vec<(SocketAddr, std::net::TcpListener)>, StartError> {
        let have = lock(&self.listeners);
        let mut fresh = Vec::new();
        let mut pool = lock(&self.pool);
        for (addr, line) in wanted.iter().filter(|(a, _)| !have.contains_key(a)) {
            if let Some(i) = pool.iter().position(|(a, _)| a == addr) {
                fresh.push(pool.swap_remove(i));
                continue;
            }
            let l =
                hasocks_net::sock::listen_tcp_std(*addr).map_err(|source| StartError::Bind {
                    addr: *addr,
                    line: *line,
                    source,
                })?;
            fresh.push((*addr, l));
        }
        Ok(fresh)
    }

    /// Starts accepting on `fresh` and closes the listeners not in `wanted`.
    fn apply(
        &self,
        fresh: Vec<(SocketAddr, std::net::TcpListener)>,
        wanted: &[(SocketAddr, u32)],
    ) -> ReloadReport {
        let mut have = lock(&self.listeners);
        let mut report = ReloadReport {
            kept: have.len(),
            ..ReloadReport::default()
        };
        for (addr, l) in fresh {
            let actual = l.local_addr().unwrap_or(addr);
            let stop = self.drain.stop_token().child_token();
            let copy = l.try_clone().ok();
            tokio::spawn(accept_loop(
                l,
                self.rt.clone(),
                self.stats.clone(),
                self.admission.clone(),
                self.drain.clone(),
                stop.clone(),
            ));
            have.insert(addr, Listener { actual, stop, copy });
            report.opened.push(actual);
        }
        let gone: Vec<SocketAddr> = have
            .keys()
            .filter(|a| !wanted.iter().any(|(w, _)| w == *a))
            .copied()
            .collect();
        for a in gone {
            if let Some(l) = have.remove(&a) {
                l.stop.cancel();
                report.closed.push(l.actual);
            }
        }
        report.kept -= report.closed.len();
        report
    }

    /// What a successor needs to take over: every listening socket, by configured address.
    pub fn handover(&self) -> Vec<(SocketAddr, std::net::TcpListener)> {
        lock(&self.listeners)
            .iter()
            .filter_map(|(a, l)| Some((*a, l.copy.as_ref()?.try_clone().ok()?)))
            .collect()
    }

    /// Stops accepting (a successor accepts on the same sockets now); sessions, UDP
    /// associations included, go on. Then [`shutdown`](Self::shutdown) waits for them.
    pub fn stop_accepting(&self) {
        for (_, l) in std::mem::take(&mut *lock(&self.listeners)) {
            l.stop.cancel();
        }
    }

    /// The addresses actually listened on (port 0 in a config becomes the real port).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        lock(&self.listeners).values().map(|l| l.actual).collect()
    }

    /// Sessions still open.
    pub fn active_sessions(&self) -> usize {
        self.drain.open()
    }

    /// The server's counters (kept across reloads).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The config generation in effect (1 at start, +1 per reload).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What `show summary` on the control socket shows.
    pub fn summary(&self) -> hasocks_ctl_proto::server::ServerStatus {
        hasocks_ctl_proto::server::ServerStatus {
            pid: std::process::id(),
            generation: self.generation(),
            listeners: self.local_addrs(),
            sessions_open: self.active_sessions() as u64,
            admission: self.admission(),
        }
    }

    /// The connection caps and their use.
    pub fn admission(&self) -> AdmissionStatus {
        self.admission.status()
    }

    /// Every route's state and counters (the routes of the generation in effect).
    pub fn routes(&self) -> Vec<crate::route::RouteStatus> {
        self.rt.load().routes.status()
    }

    /// Authentication successes and failures since start.
    pub fn auth_stats(&self) -> crate::session::auth::AuthCounts {
        self.shared.verifier.stats().snapshot()
    }

    /// Writes a line to the current log destinations.
    pub fn log(&self, level: Level, msg: &str) {
        self.rt.load().logger.log(level, msg);
    }

    /// Puts a new config into effect for new sessions; open sessions keep their old one.
    /// `internal:` addresses added are bound first (a failure refuses the whole reload and
    /// leaves everything as it was); addresses that stay keep their sockets, so nothing is
    /// refused; removed ones close, their sessions running to their end.
    pub async fn reload(&self, cfg: SockdConfig) -> Result<ReloadReport, StartError> {
        let _one = self.reload_lock.lock().await;
        if self.drain.stopping() {
            return Err(StartError::Stopped);
        }
        let caps = caps_of(&cfg);
        let (rt, addrs) = build_runtime(cfg, self.shared.clone()).await?;
        let fresh = self.bind_new(&addrs)?;
        self.admission.set_caps(caps);
        self.rt.store(Arc::new(rt));
        self.checks_wake.notify_one();
        let mut report = self.apply(fresh, &addrs);
        report.generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        Ok(report)
    }

    /// Reopens log files (logrotate).
    pub fn reopen_logs(&self) -> Vec<String> {
        self.rt.load().logger.reopen()
    }

    /// The sessions and the tokens that stop them (what the daemon skeleton drains).
    pub fn drain(&self) -> &Drain {
        &self.drain
    }

    /// Stops accepting, waits up to `deadline` for sessions, then cuts the rest.
    /// Returns how many sessions had to be cut.
    pub async fn shutdown(&self, deadline: Duration) -> usize {
        lock(&self.listeners).clear();
        self.drain.drain(deadline).await
    }
}

/// The caps of `cfg`: as configured, the rest derived from the descriptor limit.
fn caps_of(cfg: &SockdConfig) -> Caps {
    let admin = if cfg.admin.is_some() {
        hasocks_admin::Limits::default().max_connections as u64
    } else {
        0
    };
    let pam = cfg.method_uses.iter().any(|u| u.method.is_pam());
    let a = &cfg.admission;
    Caps::derived(hasocks_net::admission::nofile(), admin, pam).with(
        a.total,
        a.negotiating,
        a.negotiating_per_source,
    )
}

async fn accept_loop(
    listener: std::net::TcpListener,
    rt: Arc<ArcSwap<Generation>>,
    stats: Arc<Stats>,
    admission: Arc<Admission>,
    drain: Drain,
    stop: CancellationToken,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            rt.load()
                .logger
                .log(Level::Error, &format!("listener lost: {e}"));
            return;
        }
    };
    let mut acceptor = Acceptor::new(listener);
    while let Some((stream, peer, slot)) = admission.slots.accept(&mut acceptor, &stop).await {
        stats.accepted();
        let rt = rt.load_full();
        // A PROXY peer counts against the client its header names, once it is read.
        let counted = !rt.expects_proxy_header(peer.ip());
        // Over its address's cap: closed at once (the slot goes back).
        let Ok(ticket) = admission.admit(slot, peer.ip(), counted) else {
            continue;
        };
        drain.spawn(session::serve(
            stream,
            peer,
            rt,
            stats.clone(),
            drain.cut_token(),
            ticket,
        ));
    }
}

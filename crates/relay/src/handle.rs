//! A running relay: its long-lived state (worker threads, listeners by configured address,
//! records of relays, tables and hosts, the session registry, admission) and the current
//! config generation, and the public methods that drive it. Starting is the first reload;
//! every reload prepares a new generation beside the running one and commits it with one
//! pointer swap ([`reload`](RelayHandle::reload), steps in `handle/reload.rs`). Used through
//! `&self` (share it in an `Arc`).

mod reload;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use hasocks_conf::relayd::RelaydConfig;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::admission::Admission;
use crate::error::{CtlError, NotReady, RelayError};
use crate::events::{Event, EventKind, Events};
use crate::generation::Generation;
use crate::listeners::Listeners;
use crate::pool::checks::Rendezvous;
use crate::rates::INTERVAL_S;
use crate::records::Records;
use crate::sessions::Sessions;
use crate::workers::Workers;
use crate::{control, status};
use hasocks_ctl_proto::relay::{HostAction, ReloadReport, SessionStatus, Status, Target};
use hasocks_lifecycle::Drain;

/// A running relay.
#[derive(Debug)]
pub struct RelayHandle {
    /// The generation new sessions use (an accept loads it once and keeps it).
    current: Arc<ArcSwap<Generation>>,
    records: Mutex<Records>,
    listeners: Listeners,
    sessions: Arc<Sessions>,
    events: Arc<Events>,
    verbose: Arc<AtomicBool>,
    workers: Workers,
    /// One reload at a time.
    reload_lock: tokio::sync::Mutex<()>,
    /// Stops accepting and checking (its stop token is the parent of every listener's and
    /// checker's); tracks the sessions, one tracker per worker; cuts them at the deadline.
    drain: Drain,
    started: SystemTime,
    /// Where `check socks` meets its connections.
    rendezvous: Arc<Rendezvous>,
    /// The session caps.
    admission: Arc<Admission>,
    /// `relay drain`: not ready, still serving. Here, not in a generation, so a reload keeps
    /// it.
    draining: AtomicBool,
    /// The redirects' kernel side.
    redirector: Arc<crate::redirects::Redirector>,
}

/// Worker threads when the config has no `prefork`: one per CPU.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RelayHandle {
    /// Starts the worker threads, resolves hosts, binds every listener (errors name the
    /// address), starts health checks and accept loops.
    pub async fn start(cfg: RelaydConfig) -> Result<RelayHandle, RelayError> {
        Self::start_with(cfg, crate::handover::Inherit::default()).await
    }

    /// [`start`](Self::start) with listening sockets (and host states) handed in: from the
    /// process this one upgrades, or from socket activation. A configured address that has
    /// one uses it instead of binding; host states seed the records, so a host that was up
    /// is up at once.
    pub async fn start_with(
        cfg: RelaydConfig,
        inherit: crate::handover::Inherit,
    ) -> Result<RelayHandle, RelayError> {
        let n = cfg
            .prefork
            .map_or_else(default_workers, |n| n as usize)
            .clamp(1, 256);
        let sessions = Arc::new(Sessions::new(n));
        let verbose = Arc::new(AtomicBool::new(false));
        let drain = Drain::new(n);
        let workers = Workers::start(n, sessions.clone(), verbose.clone(), &drain)
            .map_err(RelayError::Worker)?;
        let h = RelayHandle {
            current: Arc::new(ArcSwap::from_pointee(Generation::empty())),
            records: Mutex::default(),
            listeners: Listeners::new(inherit.listeners),
            sessions,
            events: Arc::default(),
            verbose,
            workers,
            reload_lock: tokio::sync::Mutex::new(()),
            drain,
            started: SystemTime::now(),
            rendezvous: Arc::default(),
            admission: Admission::new(0, 0),
            draining: AtomicBool::new(inherit.draining),
            redirector: Arc::default(),
        };
        lock(&h.records).inherit_states(inherit.hosts);
        if h.draining() {
            tracing::info!("relay draining, as the process it upgrades was: /ready answers 503");
        }
        h.reload(cfg).await?;
        h.listeners.close_unclaimed();
        tokio::spawn(tick_rates(h.current.clone(), h.drain.stop_token()));
        tokio::spawn(crate::redirects::run(
            h.current.clone(),
            h.redirector.clone(),
            h.drain.stop_token(),
        ));
        Ok(h)
    }

    /// Puts `cfg` into effect: new sessions use it at once, open ones go on with theirs.
    /// Everything that can fail (resolving, building the generation and its pools, binding
    /// new listeners) is prepared first without changing anything, so a config that cannot be
    /// put into effect is refused whole and the running generation stays exactly as it was;
    /// then the commit, which cannot fail, swaps it in. Listeners whose address stays are the
    /// same sockets; hosts that stay keep their state.
    pub async fn reload(&self, cfg: RelaydConfig) -> Result<ReloadReport, RelayError> {
        let _one = self.reload_lock.lock().await;
        if self.drain.stopping() {
            return Err(RelayError::Stopped);
        }
        let prepared = self.prepare(&cfg).await?;
        Ok(self.commit(&cfg, prepared))
    }

    /// What a successor process needs to take over: every listener (key and sockets) and
    /// every host's state.
    pub fn handover(&self) -> crate::handover::Offer {
        // The successor adopts the redirects' table: this process no longer writes it.
        self.redirector.handed_over();
        let gen = self.current.load();
        let hosts = gen
            .hosts()
            .map(|(_, h)| (h.record.key.clone(), h.record.health()))
            .collect();
        crate::handover::Offer::new(self.listeners.copies(), hosts, self.draining())
    }

    /// Stops accepting on every listener (a successor accepts on the same sockets now);
    /// sessions go on. Then [`shutdown`](Self::shutdown) waits for them.
    pub fn stop_accepting(&self) {
        self.listeners.close_all();
        self.redirector.stop(self.current.load().redirect_keep);
    }

    /// Every bound listener: (relay name, actual address; port 0 in the config gets a real one).
    pub fn listen_addrs(&self) -> Vec<(String, SocketAddr)> {
        let gen = self.current.load();
        let bound = self.listeners.bound();
        gen.relays
            .iter()
            .flat_map(|r| {
                let name = &r.record.name;
                r.listens
                    .iter()
                    .filter_map(|a| bound.get(a).map(|b| (name.clone(), *b)))
            })
            .collect()
    }

    /// A plain-data snapshot of relays, tables and hosts with their counters.
    pub fn snapshot(&self) -> Status {
        status::snapshot(
            &self.current.load_full(),
            &self.sessions,
            &self.listeners,
            self.started,
            self.admission.status(),
            (self.draining(), self.open_sessions() as u64),
        )
    }

    /// Whether the relay should get traffic: every listener bound and every enabled relay
    /// with at least one host that takes sessions; else why not. Cheap (no snapshot): it is
    /// what `/ready` and keepalived ask, often.
    pub fn readiness(&self) -> Result<(), NotReady> {
        status::readiness(&self.current.load(), &self.listeners, self.draining())
    }

    /// `relay drain` (true) or `relay undrain`: while draining, [`readiness`](Self::readiness)
    /// says no (so `/ready` answers 503 and a route health hook withdraws the route) and
    /// every session, new ones too, is served as before: the router decides where traffic
    /// goes, the drain only signals. Kept across reloads. Returns whether it changed.
    pub fn set_draining(&self, drain: bool) -> bool {
        let was = self.draining.swap(drain, Ordering::Relaxed);
        let sessions_open = self.open_sessions() as u64;
        if was != drain {
            if drain {
                tracing::info!(
                    "relay draining: /ready answers 503, sessions still served ({sessions_open} open)"
                );
                self.events.emit(EventKind::RelayDrain { sessions_open });
            } else {
                tracing::info!("relay undrained: ready again ({sessions_open} sessions open)");
                self.events.emit(EventKind::RelayUndrain { sessions_open });
            }
        }
        was != drain
    }

    /// Whether `relay drain` is in effect.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Each relay's session-duration histogram (relay name, figures).
    pub fn session_durations(&self) -> Vec<(String, hasocks_admin::metrics::HistogramSample)> {
        self.current
            .load()
            .relays
            .iter()
            .map(|r| (r.record.name.clone(), r.record.counters.durations.sample()))
            .collect()
    }

    /// Every open session, oldest first.
    pub fn sessions(&self) -> Vec<SessionStatus> {
        let (now, now_ms) = (Instant::now(), hasocks_net::clock::now_ms());
        self.sessions
            .all()
            .iter()
            .map(|e| e.status(now, now_ms))
            .collect()
    }

    /// Sessions open now (accepted and not yet closed, over all workers).
    pub fn open_sessions(&self) -> usize {
        self.drain.open()
    }

    /// Waits until every table of the current generation has a verdict for its hosts;
    /// false on timeout.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let gen = self.current.load_full();
        let all = async {
            for t in &gen.tables {
                let mut rx = t.ready.subscribe();
                // The sender lives in the table, which we hold: wait_for cannot fail on close.
                if rx.wait_for(|ready| *ready).await.is_err() {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(timeout, all).await.unwrap_or(false)
    }

    /// Runs a round of checks on every table now (relayctl `poll`).
    pub fn poll(&self) {
        for t in &self.current.load().tables {
            t.poll.notify_one();
        }
    }

    /// `host disable|enable|drain NAME|ID`: applies to every host that matches (a name can be
    /// in several tables). Returns how many matched.
    pub fn host_action(&self, target: &Target, action: HostAction) -> Result<usize, CtlError> {
        control::host(&self.current.load(), &self.events, target, action)
    }

    /// `redirect disable|enable NAME|ID`: a disabled redirect has no rule in the kernel.
    pub fn redirect_action(&self, target: &Target, enable: bool) -> Result<usize, CtlError> {
        control::redirect(&self.current.load(), target, enable)
    }

    /// `table disable|enable NAME|ID` (a name with or without `:port`).
    pub fn table_action(&self, target: &Target, enable: bool) -> Result<usize, CtlError> {
        control::table(&self.current.load(), &self.events, target, enable)
    }

    /// `relay disable|enable NAME|ID`: a disabled relay closes what it accepts.
    pub fn relay_action(&self, target: &Target, enable: bool) -> Result<usize, CtlError> {
        control::relay(&self.current.load(), &self.events, target, enable)
    }

    /// `log verbose` (every check and connection logged) or `log brief` (as configured).
    pub fn set_verbose(&self, verbose: bool) {
        self.verbose.store(verbose, Ordering::Relaxed);
    }

    /// Every later state change, for `monitor`.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The sessions and the tokens that stop them (what the daemon skeleton drains).
    pub fn drain(&self) -> &Drain {
        &self.drain
    }

    /// Stops accepting (the listeners close), lets sessions finish for up to `deadline`,
    /// then ends the rest.
    /// Returns how many had to be ended.
    pub async fn shutdown(&self, deadline: Duration) -> usize {
        self.listeners.close_all();
        self.redirector.stop(self.current.load().redirect_keep);
        self.drain.drain(deadline).await
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.drain.stop_token().cancel();
        self.drain.cut_token().cancel();
    }
}

/// Rolls every relay's session rates once per interval, until `stop`.
async fn tick_rates(current: Arc<ArcSwap<Generation>>, stop: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(INTERVAL_S));
    every.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {
                for r in &current.load().relays {
                    let total = r.record.counters.accepted.load(Ordering::Relaxed);
                    r.record.rates.tick(total);
                }
            }
        }
    }
}

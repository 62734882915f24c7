//! A running relay: its long-lived state (worker threads, listeners by configured address,
//! records of relays, tables and hosts, the session registry) and the current config
//! generation. Starting is the first reload; every later reload builds a new generation
//! beside the running one and swaps one pointer. Used through `&self` (share it in an `Arc`).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use conf::relayd::RelaydConfig;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::admission::{default_cap, default_per_source, Admission};
use crate::error::{CtlError, RelayError};
use crate::events::{unix_ms, Event, EventKind, Events};
use crate::generation::{self, Generation, HostRt, ListenKey, TableGen};
use crate::health::{self, check_name, Reporting};
use crate::rates::INTERVAL_S;
use crate::records::Records;
use crate::sessions::Sessions;
use crate::workers::Workers;
use hasocks_ctl_proto::relay::{
    HostAction, HostState, HostStatus, RelayStatus, ReloadReport, SessionStatus, Status,
    TableStatus, Target,
};
use hasocks_lifecycle::Drain;

/// One listening address: its sockets live in the workers' accept loops; copies are kept here
/// (for handing them to a successor process), and `stop` ends the loops.
#[derive(Debug)]
struct ListenerSet {
    bound: SocketAddr,
    stop: CancellationToken,
    /// The distinct sockets of the set (what a successor is handed).
    copies: Vec<std::net::TcpListener>,
}

/// A running relay.
#[derive(Debug)]
pub struct RelayHandle {
    current: Arc<ArcSwap<Generation>>,
    records: Mutex<Records>,
    listeners: Mutex<BTreeMap<ListenKey, ListenerSet>>,
    sessions: Arc<Sessions>,
    events: Arc<Events>,
    verbose: Arc<AtomicBool>,
    workers: Workers,
    /// One reload at a time.
    reload_lock: tokio::sync::Mutex<()>,
    /// Ends running sessions (after the shutdown grace).
    /// Stops accepting and checking (its stop token is the parent of every listener's and
    /// checker's); tracks the sessions, one tracker per worker; cuts them at the deadline.
    drain: Drain,
    started: SystemTime,
    /// Where `check socks` meets its connections.
    rendezvous: Arc<crate::checks::Rendezvous>,
    /// Listening sockets from a predecessor or the service manager, not yet claimed.
    pool: Mutex<Vec<(ListenKey, Vec<std::net::TcpListener>)>>,
    /// The session caps.
    admission: Arc<Admission>,
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
            listeners: Mutex::default(),
            sessions,
            events: Arc::default(),
            verbose,
            workers,
            reload_lock: tokio::sync::Mutex::new(()),
            drain,
            started: SystemTime::now(),
            rendezvous: Arc::default(),
            admission: Admission::new(0, 0),
            pool: Mutex::new(inherit.listeners),
        };
        lock(&h.records).inherit_states(inherit.hosts);
        h.reload(cfg).await?;
        for (k, _) in std::mem::take(&mut *lock(&h.pool)) {
            tracing::warn!(
                "an inherited listening socket on {} matches no listen on line; closed",
                k.addr
            );
        }
        tokio::spawn(tick_rates(h.current.clone(), h.drain.stop_token()));
        Ok(h)
    }

    /// Puts `cfg` into effect: new sessions use it at once, open ones go on with theirs.
    /// Listeners whose address stays are the same sockets; new ones are bound before anything
    /// changes, so a config that cannot be bound (or resolved) is refused whole and the
    /// running generation stays exactly as it was. Hosts that stay keep their state.
    pub async fn reload(&self, cfg: RelaydConfig) -> Result<ReloadReport, RelayError> {
        let _one = self.reload_lock.lock().await;
        if self.drain.stopping() {
            return Err(RelayError::Stopped);
        }
        let resolved = generation::resolve_all(&cfg).await?;
        let old = self.current.load_full();
        let (mut gen, claimed) = {
            let mut records = lock(&self.records);
            generation::build(&cfg, &resolved, &mut records, old.number + 1)?
        };
        gen.checks = self.drain.stop_token().child_token();
        let hosts_new = claimed.new_hosts;

        let wanted: HashSet<ListenKey> = gen.by_listen.keys().cloned().collect();
        let (have, kept): (HashSet<ListenKey>, usize) = {
            let l = lock(&self.listeners);
            let have: HashSet<ListenKey> = l.keys().cloned().collect();
            let kept = have.intersection(&wanted).count();
            (have, kept)
        };
        let mut opened = Vec::new();
        let mut to_open: Vec<ListenKey> = wanted.difference(&have).cloned().collect();
        to_open.sort();
        for key in to_open {
            if let Some(socks) = self.inherited(&key) {
                opened.push((key, socks));
                continue;
            }
            let (socks, free) =
                net::sock::listen_tcp_group(key.addr, self.workers.len(), cfg.freebind).map_err(
                    |source| RelayError::Bind {
                        relay: gen
                            .by_listen
                            .get(&key)
                            .map_or_else(String::new, |r| r.record.name.clone()),
                        addr: key.addr.to_string(),
                        source,
                    },
                )?;
            if free {
                tracing::warn!(
                    "{} is not an address of this machine (yet): listening on it with IP_FREEBIND (a VRRP backup; if not, check the address)",
                    key.addr
                );
            }
            opened.push((key, socks));
        }

        // Nothing can fail from here on: publish.
        let mut notes = Vec::new();
        let (cap, per_source) = caps(&cfg, gen.hosts().count(), &mut notes);
        self.admission.set(cap, per_source);
        let hosts_removed = lock(&self.records).publish(claimed);
        let gen = Arc::new(gen);
        self.current.store(gen.clone());
        old.checks.cancel();
        let opened_n = opened.len();
        {
            let mut l = lock(&self.listeners);
            for (key, socks) in opened {
                let bound = socks
                    .first()
                    .and_then(|s| s.local_addr().ok())
                    .unwrap_or(key.addr);
                let stop = self.drain.stop_token().child_token();
                let copies = socks.iter().filter_map(|s| s.try_clone().ok()).collect();
                for (i, s) in assign(socks, self.workers.len()) {
                    self.workers.accept(
                        i,
                        s,
                        key.clone(),
                        stop.clone(),
                        self.current.clone(),
                        self.admission.clone(),
                    );
                }
                l.insert(
                    key,
                    ListenerSet {
                        bound,
                        stop,
                        copies,
                    },
                );
            }
        }
        // Kept listeners too: the setting may have changed. Accepted connections inherit it.
        let idle =
            (cfg.tcp_keepalive_s > 0).then(|| Duration::from_secs(u64::from(cfg.tcp_keepalive_s)));
        for set in lock(&self.listeners).values() {
            for s in &set.copies {
                if let Err(e) = net::sock::set_keepalive(s, idle) {
                    tracing::warn!("cannot set TCP keepalive on {}: {e}", set.bound);
                }
            }
        }
        let mut closed = 0;
        for addr in have.difference(&wanted) {
            if let Some(set) = lock(&self.listeners).remove(addr) {
                set.stop.cancel();
                closed += 1;
            }
        }
        let report = Arc::new(Reporting {
            log_checks: gen.log_host_checks,
            verbose: self.verbose.clone(),
            events: self.events.clone(),
            rendezvous: self.rendezvous.clone(),
        });
        for t in &gen.tables {
            tokio::spawn(health::run(t.clone(), report.clone(), gen.checks.clone()));
        }
        let workers = self.workers.len();
        if old.number > 0 && gen.prefork != old.prefork {
            notes.push(format!(
                "prefork changed: the relay keeps its {workers} worker threads until a restart"
            ));
        }
        if old.number > 0 {
            self.events.emit(EventKind::Reload {
                generation: gen.number,
            });
        }
        Ok(ReloadReport {
            generation: gen.number,
            relays: gen.relays.len(),
            tables: gen.tables.len(),
            hosts: gen.hosts().count(),
            hosts_new: if old.number > 0 { hosts_new } else { 0 },
            hosts_removed,
            listeners_kept: kept,
            listeners_opened: opened_n,
            listeners_closed: closed,
            notes,
        })
    }

    /// An inherited socket set for `key`: by key (from a predecessor), or by the address it
    /// is bound to (socket activation hands plain addresses).
    fn inherited(&self, key: &ListenKey) -> Option<Vec<std::net::TcpListener>> {
        let mut pool = lock(&self.pool);
        let i = pool.iter().position(|(k, _)| k == key).or_else(|| {
            pool.iter().position(|(k, _)| {
                k.ephemeral.is_none() && key.ephemeral.is_none() && k.addr == key.addr
            })
        })?;
        Some(pool.swap_remove(i).1)
    }

    /// What a successor process needs to take over: every listener (key and sockets) and
    /// every host's state.
    pub fn handover(&self) -> crate::handover::Offer {
        let listeners = lock(&self.listeners)
            .iter()
            .map(|(k, set)| {
                (
                    k.clone(),
                    set.copies
                        .iter()
                        .filter_map(|s| s.try_clone().ok())
                        .collect(),
                )
            })
            .collect();
        let gen = self.current.load();
        let hosts = gen
            .hosts()
            .map(|(_, h)| (h.record.key.clone(), h.record.health()))
            .collect();
        crate::handover::Offer::new(listeners, hosts)
    }

    /// Stops accepting on every listener (a successor accepts on the same sockets now);
    /// sessions go on. Then [`shutdown`](Self::shutdown) waits for them.
    pub fn stop_accepting(&self) {
        for (_, set) in std::mem::take(&mut *lock(&self.listeners)) {
            set.stop.cancel();
        }
    }

    /// Every bound listener: (relay name, actual address; port 0 in the config gets a real one).
    pub fn listen_addrs(&self) -> Vec<(String, SocketAddr)> {
        let gen = self.current.load();
        let l = lock(&self.listeners);
        gen.relays
            .iter()
            .flat_map(|r| {
                r.listens
                    .iter()
                    .filter_map(|a| l.get(a).map(|set| (r.record.name.clone(), set.bound)))
            })
            .collect()
    }

    /// A plain-data snapshot of relays, tables and hosts with their counters.
    pub fn snapshot(&self) -> Status {
        let gen = self.current.load_full();
        let bytes = self
            .sessions
            .host_bytes(gen.hosts().map(|(_, h)| &*h.record));
        let bound: BTreeMap<ListenKey, SocketAddr> = lock(&self.listeners)
            .iter()
            .map(|(a, s)| (a.clone(), s.bound))
            .collect();
        let relays = gen
            .relays
            .iter()
            .map(|r| {
                let c = &r.record.counters;
                let total = c.accepted.load(Ordering::Relaxed);
                RelayStatus {
                    id: r.record.id,
                    name: r.record.name.clone(),
                    listens: r
                        .listens
                        .iter()
                        .filter_map(|a| bound.get(a).copied())
                        .collect(),
                    disabled: r.is_disabled(),
                    tables: r.forwards.iter().map(|f| f.table.name.clone()).collect(),
                    sessions_open: c.open.load(Ordering::Relaxed),
                    sessions_total: total,
                    sessions_failed: c.failed.load(Ordering::Relaxed),
                    no_host: c.no_host.load(Ordering::Relaxed),
                    retries: c.retries.load(Ordering::Relaxed),
                    first_byte_timeouts: c.first_byte_timeouts.load(Ordering::Relaxed),
                    silent_closed: c.silent_closed.load(Ordering::Relaxed),
                    rates: r.record.rates.stats(total),
                }
            })
            .collect();
        let tables = gen
            .tables
            .iter()
            .map(|t| TableStatus {
                id: t.record.id,
                name: t.name.clone(),
                disabled: t.is_disabled(),
                check: t.check.as_ref().map(|c| check_name(c).to_string()),
                interval_ms: millis(t.interval),
                timeout_ms: millis(t.timeout),
                hosts: t
                    .hosts
                    .iter()
                    .map(|h| host_status(t, h, bytes.get(&h.record.id).copied()))
                    .collect(),
            })
            .collect();
        Status {
            generation: gen.number,
            pid: std::process::id(),
            started_at_ms: unix_ms(self.started),
            admission: self.admission.status(),
            relays,
            tables,
        }
    }

    /// Whether the relay should get traffic: every listener bound and every enabled relay
    /// with at least one host that takes sessions; else why not. Cheap (no snapshot): it is
    /// what `/ready` and keepalived ask, often.
    pub fn readiness(&self) -> Result<(), String> {
        let gen = self.current.load();
        if gen.relays.is_empty() {
            return Err("no relay configured".into());
        }
        let listeners = lock(&self.listeners);
        let mut why = Vec::new();
        for r in &gen.relays {
            if let Some(k) = r.listens.iter().find(|k| !listeners.contains_key(k)) {
                why.push(format!("relay {}: {} not bound", r.record.name, k.addr));
            }
            if r.is_disabled() {
                continue;
            }
            let serving = r.forwards.iter().any(|f| {
                !f.table.is_disabled() && f.table.hosts.iter().any(|h| h.record.takes_traffic())
            });
            if !serving {
                why.push(format!("relay {}: no host up", r.record.name));
            }
        }
        if why.is_empty() {
            Ok(())
        } else {
            Err(why.join("; "))
        }
    }

    /// Each relay's session-duration histogram (relay name, figures).
    pub fn session_durations(&self) -> Vec<(String, admin::metrics::HistogramSample)> {
        self.current
            .load()
            .relays
            .iter()
            .map(|r| (r.record.name.clone(), r.record.counters.durations.sample()))
            .collect()
    }

    /// Every open session, oldest first.
    pub fn sessions(&self) -> Vec<SessionStatus> {
        let (now, now_ms) = (Instant::now(), net::clock::now_ms());
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
        let gen = self.current.load_full();
        let mut n = 0;
        for (t, h) in gen.hosts() {
            let r = &h.record;
            let hit = match target {
                Target::Id(id) => r.id == *id,
                Target::Name(s) => {
                    r.key.name == *s || format!("{}:{}", r.key.name, r.key.port) == *s
                }
            };
            if !hit {
                continue;
            }
            n += 1;
            let (id, name) = (r.id, r.key.name.clone());
            match action {
                HostAction::Disable => {
                    r.disabled.store(true, Ordering::Relaxed);
                    self.events.emit(EventKind::HostDisable { id, name });
                }
                HostAction::Drain => {
                    r.draining.store(true, Ordering::Relaxed);
                    self.events.emit(EventKind::HostDrain { id, name });
                }
                HostAction::Enable => {
                    r.disabled.store(false, Ordering::Relaxed);
                    r.draining.store(false, Ordering::Relaxed);
                    t.poll.notify_one();
                    self.events.emit(EventKind::HostEnable { id, name });
                }
            }
        }
        not_found_if_zero(n, "host", target)
    }

    /// `table disable|enable NAME|ID` (a name with or without `:port`).
    pub fn table_action(&self, target: &Target, enable: bool) -> Result<usize, CtlError> {
        let gen = self.current.load_full();
        let mut n = 0;
        for t in &gen.tables {
            let hit = match target {
                Target::Id(id) => t.record.id == *id,
                Target::Name(s) => t.name == *s || t.name.rsplit_once(':').map(|p| p.0) == Some(s),
            };
            if !hit {
                continue;
            }
            n += 1;
            t.record.disabled.store(!enable, Ordering::Relaxed);
            let (id, name) = (t.record.id, t.name.clone());
            if enable {
                t.poll.notify_one();
                self.events.emit(EventKind::TableEnable { id, name });
            } else {
                self.events.emit(EventKind::TableDisable { id, name });
            }
        }
        not_found_if_zero(n, "table", target)
    }

    /// `relay disable|enable NAME|ID`: a disabled relay closes what it accepts.
    pub fn relay_action(&self, target: &Target, enable: bool) -> Result<usize, CtlError> {
        let gen = self.current.load_full();
        let mut n = 0;
        for r in &gen.relays {
            let hit = match target {
                Target::Id(id) => r.record.id == *id,
                Target::Name(s) => r.record.name == *s,
            };
            if !hit {
                continue;
            }
            n += 1;
            r.record.disabled.store(!enable, Ordering::Relaxed);
            let (id, name) = (r.record.id, r.record.name.clone());
            self.events.emit(if enable {
                EventKind::RelayEnable { id, name }
            } else {
                EventKind::RelayDisable { id, name }
            });
        }
        not_found_if_zero(n, "relay", target)
    }

    /// `log verbose` (every check and connection logged) or `log brief` (as configured).
    pub fn set_verbose(&self, verbose: bool) {
        self.verbose.store(verbose, Ordering::Relaxed);
    }

    /// Every later state change, for `monitor`.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Stops accepting (the listeners close), lets sessions finish for up to `deadline`,
    /// then ends the rest.
    /// Returns how many had to be ended.
    pub async fn shutdown(&self, deadline: Duration) -> usize {
        lock(&self.listeners).clear();
        self.drain.drain(deadline).await
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.drain.stop_token().cancel();
        self.drain.cut_token().cancel();
    }
}

/// The global and per-source session caps of `cfg`: as configured, or derived from the
/// descriptor limit (each session holds two descriptors; checks, listeners and the admin port
/// keep a reserve).
fn caps(cfg: &RelaydConfig, hosts: usize, notes: &mut Vec<String>) -> (u32, u32) {
    let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let admin = if cfg.admin.is_some() {
        admin::Limits::default().max_connections
    } else {
        0
    };
    let fits = default_cap(nofile, hosts, admin);
    let cap = match cfg.max_sessions {
        Some(n) => {
            if n > fits {
                let msg = format!("hasocks.maxconn {n} needs about {} descriptors; the limit is {nofile}, which fits {fits} sessions", u64::from(n) * 2);
                tracing::warn!("{msg}");
                notes.push(msg);
            }
            n
        }
        None => fits,
    };
    let per_source = cfg
        .max_sessions_per_source
        .unwrap_or_else(|| default_per_source(cap));
    (cap, per_source)
}

/// Which worker accepts on which socket: one each when the counts match; otherwise every
/// worker accepts on every socket (copies), so that no socket of a handed-over group is left
/// without an accept loop while the kernel still queues connections on it.
fn assign(
    socks: Vec<std::net::TcpListener>,
    workers: usize,
) -> Vec<(usize, std::net::TcpListener)> {
    if socks.len() == workers {
        return socks.into_iter().enumerate().collect();
    }
    let mut out = Vec::new();
    for s in &socks {
        for w in 0..workers {
            if let Ok(c) = s.try_clone() {
                out.push((w, c));
            }
        }
    }
    out
}

fn not_found_if_zero(n: usize, what: &'static str, target: &Target) -> Result<usize, CtlError> {
    if n == 0 {
        Err(CtlError::NotFound {
            what,
            name: target.to_string(),
        })
    } else {
        Ok(n)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn host_status(t: &TableGen, h: &HostRt, bytes: Option<(u64, u64)>) -> HostStatus {
    let r = &h.record;
    let hist = r.history().clone();
    let state = if t.is_disabled() || r.disabled.load(Ordering::Relaxed) {
        HostState::Disabled
    } else {
        r.health()
    };
    let (bytes_out, bytes_in) = bytes.unwrap_or((
        r.bytes_out.load(Ordering::Relaxed),
        r.bytes_in.load(Ordering::Relaxed),
    ));
    HostStatus {
        id: r.id,
        name: r.key.name.clone(),
        addr: h.addr,
        state,
        draining: r.draining.load(Ordering::Relaxed),
        checks: hist.checks,
        ups: hist.ups,
        failed_in_row: hist.failed_in_row,
        retry: h.retry,
        last_result: hist.last_result,
        last_check_ok: hist.last_ok,
        last_check_us: hist.last_us,
        last_check_at_ms: hist.last_check.map(unix_ms),
        last_change_at_ms: hist.last_change.map(unix_ms),
        local_errors: hist.local_errors,
        open: r.open.load(Ordering::Relaxed),
        sessions: r.sessions.load(Ordering::Relaxed),
        connect_failures: r.connect_failures.load(Ordering::Relaxed),
        retries: r.retries.load(Ordering::Relaxed),
        bytes_out,
        bytes_in,
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

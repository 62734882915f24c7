//! Starting, observing and stopping a relay built from a `RelaydConfig`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conf::relayd::{Forward, RelaydConfig};
use net::listen::Acceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::RelayError;
use crate::health;
use crate::select::Selector;
use crate::session::{self, Counters, ForwardRt, RelayRt, MIN_CONNECT_TIMEOUT};
use crate::status::{RelayStatus, Status};
use crate::table::{HostRt, TableRt};

/// A running relay: its listeners, health checkers and sessions.
///
/// Sessions run on worker threads, each with a single-threaded runtime and its own listening
/// socket per address (SO_REUSEPORT): a session's every wake-up stays on the thread that
/// accepted it, where a work-stealing runtime would hand events between threads. Health
/// checks run on the caller's runtime.
#[derive(Debug)]
pub struct RelayHandle {
    relays: Vec<(Arc<RelayRt>, Vec<SocketAddr>)>,
    tables: Vec<Arc<TableRt>>,
    /// Stops accept loops and health checks.
    stop: CancellationToken,
    /// Ends running sessions (after the shutdown deadline).
    kill: CancellationToken,
    /// Each worker thread's sessions.
    workers: Vec<TaskTracker>,
}

/// Worker threads when the config has no `prefork`: one per CPU.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What one worker thread accepts on: relay, listening socket, configured address.
type WorkerListeners = Vec<(Arc<RelayRt>, std::net::TcpListener, SocketAddr)>;

impl RelayHandle {
    /// Resolves hosts, binds every listener (errors name the address), starts health checks
    /// and accept loops.
    pub async fn start(cfg: RelaydConfig) -> Result<RelayHandle, RelayError> {
        let mut tables: Vec<Arc<TableRt>> = Vec::new();
        let mut by_name: HashMap<String, Arc<TableRt>> = HashMap::new();
        let mut relays = Vec::new();
        let workers = cfg
            .prefork
            .map_or_else(default_workers, |n| n as usize)
            .clamp(1, 256);
        let mut per_worker: Vec<WorkerListeners> = (0..workers).map(|_| Vec::new()).collect();
        for r in &cfg.relays {
            let mut forwards = Vec::new();
            for f in &r.forwards {
                let inst = format!("{}:{}", f.table, f.port);
                let table = match by_name.get(&inst) {
                    Some(t) => t.clone(),
                    None => {
                        let t = Arc::new(build_table(&cfg, &r.name, f, inst.clone()).await?);
                        by_name.insert(inst, t.clone());
                        tables.push(t.clone());
                        t
                    }
                };
                forwards.push(ForwardRt {
                    connect_timeout: table.timeout.max(MIN_CONNECT_TIMEOUT),
                    table,
                    selector: Selector::new(&f.mode),
                });
            }
            let rt = Arc::new(RelayRt {
                name: r.name.clone(),
                disabled: r.disabled,
                forwards,
                idle_timeout: (r.session_timeout_s > 0)
                    .then(|| Duration::from_secs(u64::from(r.session_timeout_s))),
                send_proxy_v2: r.send_proxy_v2,
                log: cfg.log_connections,
                counters: Counters::default(),
            });
            let mut bound = Vec::new();
            for l in &r.listens {
                let configured = resolve(&l.addr, l.port).await?;
                let group =
                    net::sock::listen_tcp_shared(configured, workers).map_err(|source| {
                        RelayError::Bind {
                            relay: r.name.clone(),
                            addr: format!("{}:{}", l.addr, l.port),
                            source,
                        }
                    })?;
                let actual = group
                    .first()
                    .and_then(|g| g.local_addr().ok())
                    .unwrap_or(configured);
                bound.push(actual);
                for (mine, listener) in per_worker.iter_mut().zip(group) {
                    mine.push((rt.clone(), listener, configured));
                }
            }
            relays.push((rt, bound));
        }

        let stop = CancellationToken::new();
        let kill = CancellationToken::new();
        for t in &tables {
            tokio::spawn(health::run(t.clone(), cfg.log_host_checks, stop.clone()));
        }
        let mut trackers = Vec::new();
        for (i, mine) in per_worker.into_iter().enumerate() {
            let sessions = TaskTracker::new();
            let (stop2, kill2, tracker) = (stop.clone(), kill.clone(), sessions.clone());
            let spawned = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .and_then(|rt| {
                    std::thread::Builder::new()
                        .name(format!("relay-io-{i}"))
                        .spawn(move || rt.block_on(worker(mine, stop2, kill2, tracker)))
                });
            if let Err(source) = spawned {
                stop.cancel();
                return Err(RelayError::Worker(source));
            }
            trackers.push(sessions);
        }
        Ok(RelayHandle {
            relays,
            tables,
            stop,
            kill,
            workers: trackers,
        })
    }

    /// Every bound listener: (relay name, actual address; port 0 in the config gets a real one).
    pub fn listen_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.relays
            .iter()
            .flat_map(|(rt, addrs)| addrs.iter().map(|a| (rt.name.clone(), *a)))
            .collect()
    }

    /// A plain-data snapshot of tables, hosts and session counters.
    pub fn snapshot(&self) -> Status {
        Status {
            relays: self
                .relays
                .iter()
                .map(|(rt, addrs)| RelayStatus {
                    name: rt.name.clone(),
                    listens: addrs.clone(),
                    disabled: rt.disabled,
                    tables: rt.forwards.iter().map(|f| f.table.name.clone()).collect(),
                    sessions_open: load(&rt.counters.open),
                    sessions_total: load(&rt.counters.total),
                    sessions_failed: load(&rt.counters.failed),
                    retries: load(&rt.counters.retries),
                })
                .collect(),
            tables: self.tables.iter().map(|t| t.status()).collect(),
        }
    }

    /// Waits until every table finished its first round of checks; false on timeout.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let all = async {
            for t in &self.tables {
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
        for t in &self.tables {
            t.poll.notify_one();
        }
    }

    /// Disables (treated as down, no checks) or re-enables hosts named `name` in every table
    /// (relayctl `host disable|enable`). Returns how many hosts matched.
    pub fn set_host_enabled(&self, name: &str, enabled: bool) -> usize {
        let mut n = 0;
        for t in &self.tables {
            for h in t.hosts.iter().filter(|h| h.name == name) {
                h.disabled.store(!enabled, Ordering::Relaxed);
                n += 1;
            }
            if enabled {
                t.poll.notify_one();
            }
        }
        n
    }

    /// Stops accepting, lets sessions finish for up to `deadline`, then ends the rest.
    pub async fn shutdown(self, deadline: Duration) {
        self.stop.cancel();
        if tokio::time::timeout(deadline, self.all_done())
            .await
            .is_err()
        {
            let open: usize = self.workers.iter().map(TaskTracker::len).sum();
            tracing::info!("shutdown: ending {open} sessions still open");
            self.kill.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(1), self.all_done()).await;
        }
    }

    /// Waits until every worker's sessions have ended (once accepting has stopped).
    async fn all_done(&self) {
        for w in &self.workers {
            w.close();
            w.wait().await;
        }
    }
}

/// One worker thread: accepts on its listeners until `stop`, serving each client on this
/// thread, then waits for its sessions (which `kill` ends early).
async fn worker(
    listeners: WorkerListeners,
    stop: CancellationToken,
    kill: CancellationToken,
    sessions: TaskTracker,
) {
    // Each session waits on `kill`; a token of this thread's own keeps the other threads'
    // sessions out of its waiter list (and its lock).
    let kill = kill.child_token();
    let mut loops = Vec::new();
    for (rt, listener, configured) in listeners {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("relay {}: listener on {configured} lost: {e}", rt.name);
                continue;
            }
        };
        let (stop, kill, sessions) = (stop.clone(), kill.clone(), sessions.clone());
        loops.push(tokio::spawn(async move {
            let mut acceptor = Acceptor::new(listener);
            while let Some((client, peer)) = acceptor.accept(&stop).await {
                sessions.spawn(session::serve(
                    rt.clone(),
                    client,
                    peer,
                    configured,
                    kill.clone(),
                ));
            }
        }));
    }
    for l in loops {
        let _ = l.await;
    }
    sessions.close();
    sessions.wait().await;
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.stop.cancel();
        self.kill.cancel();
    }
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// Instantiates table `f.table` for forward `f` as `name:port`: hosts resolved with their own
/// port or the forward's; check, interval and timeout from the forward or the table.
async fn build_table(
    cfg: &RelaydConfig,
    relay: &str,
    f: &Forward,
    inst: String,
) -> Result<TableRt, RelayError> {
    let table = cfg
        .tables
        .iter()
        .find(|t| t.name == f.table)
        .ok_or_else(|| RelayError::NoSuchTable {
            relay: relay.to_string(),
            table: f.table.clone(),
        })?;
    let mut hosts = Vec::new();
    for h in &table.hosts {
        hosts.push(HostRt {
            name: h.name.clone(),
            addr: resolve(&h.name, h.port.unwrap_or(f.port)).await?,
            retry: h.retry,
            open: AtomicU64::new(0),
            disabled: AtomicBool::new(false),
        });
    }
    let interval_s = f.interval_s.unwrap_or(table.interval_s).max(1);
    let timeout_ms = f.timeout_ms.unwrap_or(table.timeout_ms).max(1);
    Ok(TableRt::new(
        inst,
        table.disabled,
        f.check.clone(),
        Duration::from_secs(u64::from(interval_s)),
        Duration::from_millis(u64::from(timeout_ms)),
        hosts,
    ))
}

/// Resolves an address as written (`*` = every IPv4 address) to its first socket address.
async fn resolve(name: &str, port: u16) -> Result<SocketAddr, RelayError> {
    if name == "*" {
        return Ok(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
    }
    let err = |reason: String| RelayError::Resolve {
        name: name.to_string(),
        reason,
    };
    tokio::net::lookup_host((name, port))
        .await
        .map_err(|e| err(e.to_string()))?
        .next()
        .ok_or_else(|| err("no address".to_string()))
}

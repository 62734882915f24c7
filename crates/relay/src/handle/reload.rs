//! A reload in two steps. [`prepare`](RelayHandle::prepare) does everything that can fail
//! (resolve the hosts, build the new generation and its pools with the long-lived records
//! claimed by key, bind the new listeners) and changes nothing; dropping what it made undoes
//! it. [`commit`](RelayHandle::commit) puts it into effect and cannot fail: caps, records,
//! one pointer swap, listeners started and stopped, the old checks cancelled and the new
//! ones started, the event.

use std::sync::Arc;
use std::time::Duration;

use hasocks_conf::relayd::RelaydConfig;

use super::{lock, RelayHandle};
use crate::admission::{default_cap, default_per_source};
use crate::error::RelayError;
use crate::events::EventKind;
use crate::generation::{self, Generation};
use crate::listeners::{assign, Opening};
use crate::pool::health::{self, Reporting};
use crate::records::Claimed;
use hasocks_ctl_proto::relay::ReloadReport;

/// A reload, prepared: nothing of it is in effect yet.
#[derive(Debug)]
pub(super) struct Prepared {
    gen: Generation,
    /// The records the new generation uses (carried over by key, or new).
    claimed: Claimed,
    /// Listeners to keep, open (sockets already bound) and close.
    opening: Opening,
}

/// What the commit's steps tell the report.
struct Done {
    hosts_new: usize,
    hosts_removed: usize,
    opened: usize,
    closed: usize,
}

impl RelayHandle {
    /// The prepare step: resolve, build, bind. Changes nothing.
    pub(super) async fn prepare(&self, cfg: &RelaydConfig) -> Result<Prepared, RelayError> {
        let resolved = generation::resolve_all(cfg).await?;
        let number = self.current.load().number + 1;
        let (mut gen, claimed) = generation::build(cfg, &resolved, &lock(&self.records), number)?;
        gen.checks = self.drain.stop_token().child_token();
        crate::redirects::check(&gen).await?;
        let opening = self
            .listeners
            .prepare(&gen, self.workers.len(), cfg.freebind)?;
        Ok(Prepared {
            gen,
            claimed,
            opening,
        })
    }

    /// The commit step: puts `p` (prepared from `cfg`) into effect.
    pub(super) fn commit(&self, cfg: &RelaydConfig, p: Prepared) -> ReloadReport {
        let Prepared {
            gen,
            claimed,
            mut opening,
        } = p;
        let mut notes = Vec::new();
        let hosts_new = claimed.new_hosts;
        let (cap, per_source) = caps(cfg, gen.hosts().count(), &mut notes);
        self.admission.set(cap, per_source);
        let hosts_removed = lock(&self.records).publish(claimed);
        let (old, gen) = self.swap(gen);
        let opened = self.start_listeners(&mut opening);
        // Kept listeners too: the setting may have changed. Accepted connections inherit it.
        let idle =
            (cfg.tcp_keepalive_s > 0).then(|| Duration::from_secs(u64::from(cfg.tcp_keepalive_s)));
        self.listeners.set_keepalive(idle);
        // Kept listeners too: the relay's protocol may have changed.
        self.listeners.set_tcp(&gen);
        let closed = self.listeners.close(&opening.closing);
        self.start_checks(&gen);
        if old.number > 0 && gen.prefork != old.prefork {
            notes.push(format!(
                "prefork changed: the relay keeps its {} worker threads until a restart",
                self.workers.len()
            ));
        }
        if old.number > 0 {
            self.events.emit(EventKind::Reload {
                generation: gen.number,
            });
        }
        let done = Done {
            hosts_new,
            hosts_removed,
            opened,
            closed,
        };
        report(&old, &gen, &opening, done, notes)
    }

    /// Publishes `gen` with one pointer swap and stops the checks of the one it replaces;
    /// (old, new).
    fn swap(&self, gen: Generation) -> (Arc<Generation>, Arc<Generation>) {
        let gen = Arc::new(gen);
        let old = self.current.swap(gen.clone());
        old.checks.cancel();
        (old, gen)
    }

    /// Starts accept loops on every worker for the new listeners of `opening`; how many
    /// addresses.
    fn start_listeners(&self, opening: &mut Opening) -> usize {
        let sets = self.listeners.take(opening);
        let n = sets.len();
        let gen = self.current.load();
        for (key, socks) in sets {
            // Before the first accept, so that no connection gets the kernel's defaults.
            if let Some(relay) = gen.by_listen.get(&key) {
                crate::listeners::tune_listeners(relay, key.addr, &socks);
            }
            let stop = self.drain.stop_token().child_token();
            self.listeners.insert(key.clone(), &socks, stop.clone());
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
        }
        n
    }

    /// Starts the health checks of every pool of `gen` (until its `checks` token).
    fn start_checks(&self, gen: &Generation) {
        let report = Arc::new(Reporting {
            log_checks: gen.log_host_checks,
            verbose: self.verbose.clone(),
            events: self.events.clone(),
            rendezvous: self.rendezvous.clone(),
        });
        for t in &gen.tables {
            tokio::spawn(health::run(t.clone(), report.clone(), gen.checks.clone()));
        }
    }
}

/// What a reload from `old` to `gen` changed.
fn report(
    old: &Generation,
    gen: &Generation,
    opening: &Opening,
    done: Done,
    notes: Vec<String>,
) -> ReloadReport {
    ReloadReport {
        generation: gen.number,
        relays: gen.relays.len(),
        tables: gen.tables.len(),
        hosts: gen.hosts().count(),
        // At start every host is new: not worth saying.
        hosts_new: if old.number > 0 { done.hosts_new } else { 0 },
        hosts_removed: done.hosts_removed,
        listeners_kept: opening.kept,
        listeners_opened: done.opened,
        listeners_closed: done.closed,
        notes,
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
        hasocks_admin::Limits::default().max_connections
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

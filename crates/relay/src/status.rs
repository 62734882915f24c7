//! What a running relay shows of itself: the plain-data snapshot of relays, pools and hosts
//! with their counters (`show`, `/status.json`, `/metrics`, the status page), and readiness
//! (`/ready`, keepalived).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use crate::error::{NotReady, Unready};
use crate::events::unix_ms;
use crate::generation::{Generation, ListenKey, RelayGen};
use crate::listeners::Listeners;
use crate::pool::health::check_name;
use crate::pool::{Pool, PoolHost};
use crate::sessions::Sessions;
use hasocks_ctl_proto::relay::{
    AdmissionStatus, HostState, HostStatus, RedirectStatus, RelayStatus, Status, TableStatus,
};

/// The relays, pools and hosts of `gen` with their counters (open sessions' bytes from
/// `sessions`, actual addresses from `listeners`), and the process's start, admission, drain
/// and open sessions.
pub(crate) fn snapshot(
    gen: &Generation,
    sessions: &Sessions,
    listeners: &Listeners,
    started: SystemTime,
    admission: AdmissionStatus,
    (draining, sessions_open): (bool, u64),
) -> Status {
    let bytes = sessions.host_bytes(gen.hosts().map(|(_, h)| &*h.record));
    let bound = listeners.bound();
    Status {
        generation: gen.number,
        pid: std::process::id(),
        started_at_ms: unix_ms(started),
        admission,
        draining,
        sessions_open,
        relays: gen.relays.iter().map(|r| relay_status(r, &bound)).collect(),
        tables: gen
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
            .collect(),
        redirects: gen
            .redirects
            .iter()
            .map(|r| {
                let plan = r.plan();
                let active = hasocks_redirect::plan::active_pool(&plan)
                    .and_then(|p| plan.pools.iter().position(|q| std::ptr::eq(p, q)))
                    .and_then(|i| r.forwards.get(i))
                    .map(|f| f.pool.name.clone());
                RedirectStatus {
                    id: r.record.id,
                    name: r.name.clone(),
                    disabled: r.is_disabled(),
                    listens: r.listens.iter().map(|l| l.addr.to_string()).collect(),
                    tables: r.forwards.iter().map(|f| f.pool.name.clone()).collect(),
                    active_table: active,
                }
            })
            .collect(),
    }
}

fn relay_status(r: &RelayGen, bound: &BTreeMap<ListenKey, SocketAddr>) -> RelayStatus {
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
        tables: r.forwards.iter().map(|f| f.pool.name.clone()).collect(),
        sessions_open: c.open.load(Ordering::Relaxed),
        sessions_total: total,
        sessions_failed: c.failed.load(Ordering::Relaxed),
        no_host: c.no_host.load(Ordering::Relaxed),
        retries: c.retries.load(Ordering::Relaxed),
        first_byte_timeouts: c.first_byte_timeouts.load(Ordering::Relaxed),
        silent_closed: c.silent_closed.load(Ordering::Relaxed),
        rates: r.record.rates.stats(total),
    }
}

fn host_status(t: &Pool, h: &PoolHost, bytes: Option<(u64, u64)>) -> HostStatus {
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
    let connect_errors = r.connect_errors.snapshot();
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
        connect_failures: connect_errors.against_host(),
        connect_errors,
        retries: r.retries.load(Ordering::Relaxed),
        bytes_out,
        bytes_in,
    }
}

/// Whether the relay should get traffic: not draining, every listener bound and every enabled
/// relay with a pool that serves; else why not. Cheap (no snapshot): `/ready` and keepalived
/// ask often.
pub(crate) fn readiness(
    gen: &Generation,
    listeners: &Listeners,
    draining: bool,
) -> Result<(), NotReady> {
    if gen.relays.is_empty() && gen.redirects.is_empty() {
        return Err(NotReady(vec![Unready::NoRelay]));
    }
    // First, so a hook that matches the body sees it at the start.
    let mut why = if draining {
        vec![Unready::Draining]
    } else {
        Vec::new()
    };
    for r in &gen.relays {
        if let Some(k) = r.listens.iter().find(|k| !listeners.has(k)) {
            why.push(Unready::NotBound {
                relay: r.record.name.clone(),
                addr: k.addr,
            });
        }
        if !r.is_disabled() && !r.forwards.iter().any(|f| f.pool.serving()) {
            why.push(Unready::NoHostUp {
                relay: r.record.name.clone(),
            });
        }
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(NotReady(why))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

//! The relay's long-lived state: one record per relay, per table instance and per host, each
//! kept across config generations by its key, with the ids that relayctl shows. A record is
//! what a reload carries over: a host that stays keeps its health, counters and flags; a new
//! one starts `unknown`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::pool::checks::{CheckOutcome, Verdict};
use crate::pool::connect::ConnectCounts;
use hasocks_ctl_proto::relay::HostState;

/// What identifies a host across generations: its table instance (`name:port`), its name as
/// written and the port the relay connects to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct HostKey {
    pub table: String,
    pub name: String,
    pub port: u16,
}

/// A host's check history, written by its table's checker and read by status snapshots.
#[derive(Debug, Clone, Default)]
pub(crate) struct CheckHistory {
    /// Checks that gave a verdict.
    pub checks: u64,
    /// Checks that said up.
    pub ups: u64,
    /// Failures in a row right now (relayd's retry count).
    pub failed_in_row: u32,
    /// Message of the last verdict ("tcp connect ok", "tcp connect failed").
    pub last_result: Option<String>,
    /// Duration of the last check in microseconds.
    pub last_us: Option<u64>,
    /// When the last check finished.
    pub last_check: Option<SystemTime>,
    /// When the state last changed (None: never since the record was made).
    pub last_change: Option<SystemTime>,
    /// Checks that could not be judged because of a fault of this machine (no descriptor,
    /// no local port...): they leave the state alone.
    pub local_errors: u64,
    /// Whether the last verdict was up (None before the first).
    pub last_ok: Option<bool>,
    /// Local errors in a row now (an episode: logged at its start and at its end).
    pub local_run: u64,
}

/// One host of one table instance, as long as the process lives and the host stays in the
/// config.
#[derive(Debug)]
pub(crate) struct HostRecord {
    pub id: u32,
    pub key: HostKey,
    state: AtomicU8,
    /// `host disable` from the control socket: treated as down, not checked.
    pub disabled: AtomicBool,
    /// `host drain`: no new sessions; open ones go on.
    pub draining: AtomicBool,
    /// Sessions open to the host now.
    pub open: AtomicU64,
    /// Sessions forwarded to the host since the record was made.
    pub sessions: AtomicU64,
    /// Outgoing connects to the host that failed, by reason.
    pub connect_errors: ConnectCounts,
    /// Connect attempts to the host that were retries of an earlier failed one.
    pub retries: AtomicU64,
    /// Bytes client -> host of finished sessions (open ones are in the session registry).
    pub bytes_out: AtomicU64,
    /// Bytes host -> client of finished sessions.
    pub bytes_in: AtomicU64,
    history: Mutex<CheckHistory>,
}

fn state_code(s: HostState) -> u8 {
    match s {
        HostState::Unknown => 0,
        HostState::Up => 1,
        HostState::Down => 2,
        HostState::Disabled => 3,
    }
}

fn state_of(code: u8) -> HostState {
    match code {
        1 => HostState::Up,
        2 => HostState::Down,
        3 => HostState::Disabled,
        _ => HostState::Unknown,
    }
}

impl HostRecord {
    /// A record for a host first seen now, in state `state`.
    pub fn new(id: u32, key: HostKey, state: HostState) -> HostRecord {
        HostRecord {
            id,
            key,
            state: AtomicU8::new(state_code(state)),
            disabled: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            open: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
            connect_errors: ConnectCounts::default(),
            retries: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            history: Mutex::new(CheckHistory::default()),
        }
    }

    /// The health state as checks left it (flags not applied).
    pub fn health(&self) -> HostState {
        state_of(self.state.load(Ordering::Relaxed))
    }

    /// Sets the health state directly (a table without checks is always up).
    pub fn set_health(&self, s: HostState) {
        let old = state_of(self.state.swap(state_code(s), Ordering::Relaxed));
        if old != s {
            self.history().last_change = Some(SystemTime::now());
        }
    }

    /// Whether a new session may go to this host.
    pub fn takes_traffic(&self) -> bool {
        self.health() == HostState::Up
            && !self.disabled.load(Ordering::Relaxed)
            && !self.draining.load(Ordering::Relaxed)
    }

    /// The check history (a poisoned lock still holds valid data: every update is complete).
    pub fn history(&self) -> MutexGuard<'_, CheckHistory> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one check outcome by relayd's rise/fall rule: a success brings the host up; a
    /// failure takes it down only after `retry + 1` failures in a row. A local error changes
    /// nothing but its own count. Returns the state before and after.
    pub fn record_check(&self, o: &CheckOutcome, retry: u32) -> (HostState, HostState) {
        let mut h = self.history();
        let old = self.health();
        let mut new = old;
        h.last_us = Some(o.took_us);
        h.last_check = Some(SystemTime::now());
        if !matches!(o.verdict, Verdict::Local(_)) {
            h.local_run = 0;
        }
        match &o.verdict {
            Verdict::Up(m) => {
                h.checks += 1;
                h.ups += 1;
                h.failed_in_row = 0;
                h.last_result = Some(m.clone());
                h.last_ok = Some(true);
                new = HostState::Up;
            }
            Verdict::Down(m) => {
                h.checks += 1;
                h.failed_in_row = h.failed_in_row.saturating_add(1);
                h.last_result = Some(m.clone());
                h.last_ok = Some(false);
                if h.failed_in_row > retry {
                    new = HostState::Down;
                }
            }
            Verdict::Local(_) => {
                h.local_errors += 1;
                h.local_run += 1;
            }
        }
        if new != old {
            h.last_change = Some(SystemTime::now());
            self.state.store(state_code(new), Ordering::Relaxed);
        }
        (old, new)
    }
}

/// A table instance's long-lived part: its id and the control socket's flag.
#[derive(Debug)]
pub(crate) struct TableRecord {
    pub id: u32,
    /// `table disable` from the control socket.
    pub disabled: AtomicBool,
}

/// Counters of one relay.
#[derive(Debug)]
pub(crate) struct RelayCounters {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Sessions open now.
    pub open: AtomicU64,
    /// Sessions closed without reaching a host (none up, or every connect failed).
    pub failed: AtomicU64,
    /// Of those, sessions refused because no host was up at all.
    pub no_host: AtomicU64,
    /// Outgoing connect attempts that were retries (same or next host).
    pub retries: AtomicU64,
    /// How long sessions that reached a host lasted.
    pub durations: hasocks_admin::metrics::AtomicHistogram,
    /// Clients closed for sending nothing within the first-byte timeout.
    pub first_byte_timeouts: AtomicU64,
    /// Clients that closed before sending anything.
    pub silent_closed: AtomicU64,
}

impl Default for RelayCounters {
    fn default() -> Self {
        RelayCounters {
            accepted: AtomicU64::new(0),
            open: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            no_host: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            durations: hasocks_admin::metrics::AtomicHistogram::new(
                hasocks_admin::metrics::SESSION_SECONDS,
            ),
            first_byte_timeouts: AtomicU64::new(0),
            silent_closed: AtomicU64::new(0),
        }
    }
}

/// A relay block's long-lived part.
#[derive(Debug)]
pub(crate) struct RelayRecord {
    pub id: u32,
    pub name: String,
    /// `relay disable` from the control socket: accepted connections are closed.
    pub disabled: AtomicBool,
    pub counters: RelayCounters,
    pub rates: crate::rates::SessionRates,
}

/// Every record, by key, with the id counters (one sequence per kind, as relayd numbers them).
#[derive(Debug, Default)]
pub(crate) struct Records {
    last_relay: u32,
    last_table: u32,
    last_host: u32,
    pub relays: HashMap<String, Arc<RelayRecord>>,
    pub tables: HashMap<String, Arc<TableRecord>>,
    pub hosts: HashMap<HostKey, Arc<HostRecord>>,
    /// States handed over by a predecessor process, for hosts not yet recorded.
    inherited: HashMap<HostKey, HostState>,
}

/// The records a new generation uses, found or made while it is built; they replace the
/// registry's maps (and the new ids its counters, the inherited states they used its store)
/// only when the generation is published, so a generation that is not published changes
/// nothing.
#[derive(Debug, Default)]
pub(crate) struct Claimed {
    pub relays: HashMap<String, Arc<RelayRecord>>,
    pub tables: HashMap<String, Arc<TableRecord>>,
    pub hosts: HashMap<HostKey, Arc<HostRecord>>,
    /// Hosts that had no record before.
    pub new_hosts: usize,
    /// Relays and tables that had no record before (ids taken after the registry's last).
    new_relays: u32,
    new_tables: u32,
    /// Inherited states the new hosts took.
    inherited_used: Vec<HostKey>,
    /// Hosts to set up at publication (their table lost its check).
    pub force_up: Vec<Arc<HostRecord>>,
}

impl Records {
    /// The relay record named `name`, from the registry or new.
    pub fn relay(&self, claimed: &mut Claimed, name: &str) -> Arc<RelayRecord> {
        if let Some(r) = claimed.relays.get(name) {
            return r.clone();
        }
        let r = match self.relays.get(name) {
            Some(r) => r.clone(),
            None => {
                claimed.new_relays += 1;
                Arc::new(RelayRecord {
                    id: self.last_relay + claimed.new_relays,
                    name: name.to_string(),
                    disabled: AtomicBool::new(false),
                    counters: RelayCounters::default(),
                    rates: crate::rates::SessionRates::default(),
                })
            }
        };
        claimed.relays.insert(name.to_string(), r.clone());
        r
    }

    /// The table record of instance `name`, from the registry or new.
    pub fn table(&self, claimed: &mut Claimed, name: &str) -> Arc<TableRecord> {
        if let Some(t) = claimed.tables.get(name) {
            return t.clone();
        }
        let t = match self.tables.get(name) {
            Some(t) => t.clone(),
            None => {
                claimed.new_tables += 1;
                Arc::new(TableRecord {
                    id: self.last_table + claimed.new_tables,
                    disabled: AtomicBool::new(false),
                })
            }
        };
        claimed.tables.insert(name.to_string(), t.clone());
        t
    }

    /// The host record for `key`, from the registry or new in state `initial`.
    pub fn host(&self, claimed: &mut Claimed, key: HostKey, initial: HostState) -> Arc<HostRecord> {
        if let Some(h) = claimed.hosts.get(&key) {
            return h.clone();
        }
        let h = match self.hosts.get(&key) {
            Some(h) => h.clone(),
            None => {
                claimed.new_hosts += 1;
                let id = self.last_host + u32::try_from(claimed.new_hosts).unwrap_or(u32::MAX);
                let state = match self.inherited.get(&key) {
                    Some(s) => {
                        claimed.inherited_used.push(key.clone());
                        *s
                    }
                    None => initial,
                };
                Arc::new(HostRecord::new(id, key.clone(), state))
            }
        };
        claimed.hosts.insert(key, h.clone());
        h
    }

    /// Seeds the states of hosts not recorded yet (a predecessor's, at an upgrade).
    pub fn inherit_states(&mut self, states: Vec<(HostKey, HostState)>) {
        self.inherited.extend(states);
    }

    /// Makes the claimed records the registry; returns how many hosts left it.
    pub fn publish(&mut self, claimed: Claimed) -> usize {
        let removed = self
            .hosts
            .keys()
            .filter(|k| !claimed.hosts.contains_key(*k))
            .count();
        for h in &claimed.force_up {
            h.set_health(HostState::Up);
        }
        self.last_relay += claimed.new_relays;
        self.last_table += claimed.new_tables;
        self.last_host += u32::try_from(claimed.new_hosts).unwrap_or(u32::MAX);
        for k in &claimed.inherited_used {
            self.inherited.remove(k);
        }
        self.relays = claimed.relays;
        self.tables = claimed.tables;
        self.hosts = claimed.hosts;
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(v: Verdict) -> CheckOutcome {
        CheckOutcome {
            verdict: v,
            took_us: 1,
        }
    }

    fn up() -> CheckOutcome {
        outcome(Verdict::Up("tcp connect ok".into()))
    }

    fn down() -> CheckOutcome {
        outcome(Verdict::Down("tcp connect failed".into()))
    }

    fn host() -> HostRecord {
        let key = HostKey {
            table: "t:1".into(),
            name: "h".into(),
            port: 1,
        };
        HostRecord::new(1, key, HostState::Unknown)
    }

    #[test]
    fn host_goes_down_after_retry_plus_one_failures_and_up_after_one_success() {
        let h = host();
        assert_eq!(
            h.record_check(&down(), 1).1,
            HostState::Unknown,
            "first failure tolerated"
        );
        assert_eq!(h.record_check(&down(), 1).1, HostState::Down);
        assert_eq!(h.record_check(&up(), 1).1, HostState::Up);
        assert_eq!(
            h.record_check(&down(), 1).1,
            HostState::Up,
            "one failure tolerated again"
        );
        h.record_check(&up(), 1);
        assert_eq!(
            h.record_check(&down(), 1).1,
            HostState::Up,
            "a success reset the count"
        );
        assert_eq!(h.record_check(&down(), 1).1, HostState::Down);
        let hist = h.history();
        assert_eq!((hist.checks, hist.ups), (7, 2));
    }

    #[test]
    fn a_local_error_changes_neither_state_nor_the_failure_count() {
        let h = host();
        h.record_check(&up(), 0);
        let local = outcome(Verdict::Local("socket: Too many open files".into()));
        for _ in 0..5 {
            assert_eq!(h.record_check(&local, 0), (HostState::Up, HostState::Up));
        }
        let hist = h.history();
        assert_eq!(
            (hist.checks, hist.failed_in_row, hist.local_errors),
            (1, 0, 5)
        );
        assert_eq!(hist.last_result.as_deref(), Some("tcp connect ok"));
    }

    #[test]
    fn a_drained_or_disabled_host_takes_no_traffic_though_up() {
        let h = host();
        h.record_check(&up(), 0);
        assert!(h.takes_traffic());
        h.draining.store(true, Ordering::Relaxed);
        assert!(!h.takes_traffic());
        h.draining.store(false, Ordering::Relaxed);
        h.disabled.store(true, Ordering::Relaxed);
        assert!(!h.takes_traffic());
    }

    #[test]
    fn a_record_kept_by_a_new_generation_is_the_same_record_and_a_dropped_one_goes() {
        let mut r = Records::default();
        let key = |n: &str| HostKey {
            table: "t:1".into(),
            name: n.into(),
            port: 1,
        };
        let mut c = Claimed::default();
        let a = r.host(&mut c, key("a"), HostState::Unknown);
        r.host(&mut c, key("b"), HostState::Unknown);
        assert_eq!(r.publish(c), 0);
        a.record_check(&up(), 0);

        let mut c = Claimed::default();
        let a2 = r.host(&mut c, key("a"), HostState::Unknown);
        let n = r.host(&mut c, key("n"), HostState::Unknown);
        assert_eq!(c.new_hosts, 1);
        assert_eq!(r.publish(c), 1, "b left");
        assert!(Arc::ptr_eq(&a, &a2));
        assert_eq!(a2.health(), HostState::Up);
        assert_eq!(n.health(), HostState::Unknown);
        assert!(n.id > a.id, "ids are never reused");
    }

    #[test]
    fn a_generation_that_is_not_published_takes_no_id_and_no_inherited_state() {
        let mut r = Records::default();
        let key = |n: &str| HostKey {
            table: "t:1".into(),
            name: n.into(),
            port: 1,
        };
        r.inherit_states(vec![(key("a"), HostState::Up)]);
        let mut dropped = Claimed::default();
        assert_eq!(r.host(&mut dropped, key("a"), HostState::Unknown).id, 1);
        assert_eq!(r.relay(&mut dropped, "x").id, 1);
        drop(dropped);

        let mut c = Claimed::default();
        let a = r.host(&mut c, key("a"), HostState::Unknown);
        assert_eq!(
            (a.id, a.health()),
            (1, HostState::Up),
            "the same id, the state still there"
        );
        assert_eq!(r.relay(&mut c, "y").id, 1);
        r.publish(c);
        let mut c = Claimed::default();
        assert_eq!(r.host(&mut c, key("b"), HostState::Unknown).id, 2);
        assert_eq!(r.table(&mut c, "t:1").id, 1);
    }
}

//! What outlives config generations for routes: each upstream's health (Dante's failure
//! count and bad mark, and ours: the last active check), each route's counters (sessions,
//! failures by reason, handshake latency), kept by key across reloads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hasocks_admin::metrics::AtomicHistogram;

/// Why an attempt through an upstream failed, as counted.
pub const FAILURES: [&str; 7] = [
    "connect",
    "timeout",
    "handshake",
    "method",
    "reply",
    "refused",
    "auth",
];

/// Upper bounds of the handshake latency histogram, in seconds (connect + handshake).
pub const LATENCY_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What the last active check said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// No check ran (checks off, or none yet).
    Unknown = 0,
    /// The last check passed.
    Up = 1,
    /// The last check failed.
    Down = 2,
}

/// One upstream's health, shared by the routes naming it (keyed by host, port and
/// protocol).
#[derive(Debug)]
pub struct Health {
    /// Failures in a row (Dante's `route.maxfail` counts these).
    fails: AtomicU32,
    /// When it was marked bad, as ms since `born` + 1; 0 = not marked.
    bad_at: AtomicU64,
    /// The last active check's verdict.
    checked: AtomicU8,
    /// Times it was marked bad.
    marked: AtomicU64,
    /// The last check's text (what failed, or "ok").
    last_check: Mutex<String>,
    born: Instant,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            fails: AtomicU32::new(0),
            bad_at: AtomicU64::new(0),
            checked: AtomicU8::new(Checked::Unknown as u8),
            marked: AtomicU64::new(0),
            last_check: Mutex::new(String::new()),
            born: Instant::now(),
        }
    }
}

/// A change of an upstream's mark, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// It is marked bad now.
    MarkedBad,
    /// Its bad mark was cleared.
    Cleared,
}

impl Health {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
    }

    /// Whether it is marked bad now; a mark older than `badexpire` (Some) has expired.
    pub fn is_bad(&self, badexpire: Option<Duration>) -> bool {
        let at = self.bad_at.load(Relaxed);
        if at == 0 {
            return false;
        }
        match badexpire {
            Some(d) => {
                self.now_ms().saturating_sub(at) < u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
            }
            None => true,
        }
    }

    /// Counts a failure that is the upstream's; marks it bad at `maxfail` in a row (0 =
    /// never), or at once when `now` (an active check failed).
    pub fn failed(
        &self,
        maxfail: u32,
        now: bool,
        badexpire: Option<Duration>,
    ) -> Option<Transition> {
        let n = self.fails.fetch_add(1, Relaxed).saturating_add(1);
        let due = now || (maxfail > 0 && n >= maxfail);
        if !due || self.is_bad(badexpire) {
            return None;
        }
        self.bad_at.store(self.now_ms(), Relaxed);
        self.marked.fetch_add(1, Relaxed);
        Some(Transition::MarkedBad)
    }

    /// A success through it: the failure count restarts and a mark is cleared.
    pub fn succeeded(&self) -> Option<Transition> {
        self.fails.store(0, Relaxed);
        (self.bad_at.swap(0, Relaxed) != 0).then_some(Transition::Cleared)
    }

    /// Records an active check's verdict and text; returns a change of the mark.
    pub fn checked(
        &self,
        ok: bool,
        text: String,
        maxfail: u32,
        badexpire: Option<Duration>,
    ) -> Option<Transition> {
        let state = if ok { Checked::Up } else { Checked::Down };
        self.checked.store(state as u8, Relaxed);
        if let Ok(mut t) = self.last_check.lock() {
            *t = text;
        }
        if ok {
            self.succeeded()
        } else {
            self.failed(maxfail, true, badexpire)
        }
    }

    /// The last check's verdict.
    pub fn last_checked(&self) -> Checked {
        match self.checked.load(Relaxed) {
            1 => Checked::Up,
            2 => Checked::Down,
            _ => Checked::Unknown,
        }
    }

    /// The last check's text.
    pub fn last_check_text(&self) -> String {
        self.last_check
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// Failures in a row now.
    pub fn fails(&self) -> u32 {
        self.fails.load(Relaxed)
    }

    /// Times it was marked bad since start.
    pub fn times_marked(&self) -> u64 {
        self.marked.load(Relaxed)
    }
}

/// One route's counters.
#[derive(Debug)]
pub struct RouteStats {
    /// Sessions that went through the route.
    pub sessions: AtomicU64,
    /// Failed attempts, by [`FAILURES`] index.
    failures: [AtomicU64; FAILURES.len()],
    /// Connect plus handshake time of the attempts that succeeded.
    pub latency: AtomicHistogram,
}

impl Default for RouteStats {
    fn default() -> Self {
        RouteStats {
            sessions: AtomicU64::new(0),
            failures: Default::default(),
            latency: AtomicHistogram::new(LATENCY_SECONDS),
        }
    }
}

impl RouteStats {
    /// Counts a failed attempt by its [`FAILURES`] index.
    pub fn failure(&self, reason: usize) {
        if let Some(c) = self.failures.get(reason) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// The failures by reason now.
    pub fn failures(&self) -> [u64; FAILURES.len()] {
        std::array::from_fn(|i| self.failures.get(i).map_or(0, |c| c.load(Relaxed)))
    }
}

/// The key of an upstream's health: host as written, port, protocol word.
pub type UpstreamKey = (String, u16, &'static str);

/// The long-lived records by key; a generation takes what it uses, and the rest is dropped
/// when it is published.
#[derive(Debug, Default)]
pub struct Registry {
    health: Mutex<HashMap<UpstreamKey, Arc<Health>>>,
    stats: Mutex<HashMap<String, Arc<RouteStats>>>,
}

impl Registry {
    /// The health record of an upstream (new or kept).
    pub fn health(&self, key: UpstreamKey) -> Arc<Health> {
        let mut m = self.health.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(key).or_default().clone()
    }

    /// The counters of a route, by its identity (canonical text and which copy of it).
    pub fn stats(&self, key: &str) -> Arc<RouteStats> {
        let mut m = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(key.to_string()).or_default().clone()
    }

    /// Drops the records no longer named.
    pub fn retain(&self, upstreams: &[UpstreamKey], routes: &[String]) {
        let mut m = self.health.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|k, _| upstreams.contains(k));
        let mut m = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|k, _| routes.contains(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxfail_failures_in_a_row_mark_it_bad_and_a_success_clears_it() {
        let h = Health::default();
        assert_eq!(h.failed(2, false, None), None);
        assert!(!h.is_bad(None));
        assert_eq!(h.failed(2, false, None), Some(Transition::MarkedBad));
        assert!(h.is_bad(None));
        assert_eq!(h.failed(2, false, None), None, "marked once");
        assert_eq!(h.succeeded(), Some(Transition::Cleared));
        assert_eq!((h.fails(), h.is_bad(None)), (0, false));
        assert_eq!(h.times_marked(), 1);
    }

    #[test]
    fn maxfail_zero_never_marks_but_a_failed_check_does() {
        let h = Health::default();
        for _ in 0..10 {
            assert_eq!(h.failed(0, false, None), None);
        }
        let t = h.checked(false, "timeout".into(), 0, None);
        assert_eq!(t, Some(Transition::MarkedBad));
        assert_eq!(h.last_checked(), Checked::Down);
        assert_eq!(h.last_check_text(), "timeout");
    }

    #[test]
    fn an_expired_mark_is_not_bad() {
        let h = Health::default();
        h.failed(1, false, None);
        assert!(h.is_bad(Some(Duration::from_secs(300))));
        assert!(!h.is_bad(Some(Duration::ZERO)));
    }
}

//! Per-rule limits with Dante 1.4's meaning: `session.max` (concurrent sessions of the rule),
//! `session.throttle: N/S` (new sessions per fixed window), the same per client IP with
//! `session.state.key: from`, and `bandwidth:` (bytes per second shared by the rule's
//! sessions, both directions together; ours, a licensed module in Dante).
//!
//! The state is long-lived: the [`Registry`] keys it by the rule's kind, canonical text and
//! occurrence, so a reload keeps the counts, windows and bucket of every rule that did not
//! change; a changed or new rule starts from zero, and sessions already open keep counting
//! against the state they started with until they end.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hasocks_conf::sockd::{Limits, Throttle};

/// Why a session is refused by a limit, in Dante's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// `session.max` / `session.state.max` reached.
    #[error("{}session limit reached ({in_use}/{max} slot{} in use)", per_key(*.keyed), plural(*.max))]
    Sessions {
        /// Per-key (state) limit or the rule's.
        keyed: bool,
        /// Slots in use.
        in_use: u32,
        /// The limit.
        max: u32,
    },
    /// `session.throttle` / `session.state.throttle` reached.
    #[error("{}session rate limit reached (already accepted {accepted} new client{} during the last {seconds}s.  Current client count: {current})", per_key(*.keyed), plural(*.accepted))]
    Rate {
        /// Per-key (state) limit or the rule's.
        keyed: bool,
        /// Sessions accepted in this window.
        accepted: u32,
        /// The window.
        seconds: u32,
        /// Sessions open now.
        current: u32,
    },
}

fn per_key(keyed: bool) -> &'static str {
    if keyed {
        "per-key "
    } else {
        ""
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A fixed window of `session.throttle`: restarts when `now - start >= S`.
#[derive(Debug)]
struct Window {
    start: Instant,
    count: u32,
}

impl Window {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            count: 0,
        }
    }

    /// Counts a new session, or says the window is full.
    fn admit(&mut self, t: Throttle, now: Instant) -> Result<(), u32> {
        if now.duration_since(self.start) >= Duration::from_secs(u64::from(t.seconds)) {
            self.start = now;
            self.count = 0;
        }
        if self.count >= t.sessions {
            return Err(self.count);
        }
        self.count += 1;
        Ok(())
    }
}

/// Counters of one scope (the whole rule, or one client IP).
#[derive(Debug)]
struct Counts {
    open: u32,
    window: Window,
}

impl Counts {
    fn new() -> Self {
        Self {
            open: 0,
            window: Window::new(),
        }
    }

    fn admit(
        &mut self,
        max: Option<u32>,
        rate: Option<Throttle>,
        keyed: bool,
    ) -> Result<(), LimitError> {
        if let Some(max) = max {
            if self.open >= max {
                return Err(LimitError::Sessions {
                    keyed,
                    in_use: self.open,
                    max,
                });
            }
        }
        if let Some(t) = rate {
            self.window
                .admit(t, Instant::now())
                .map_err(|accepted| LimitError::Rate {
                    keyed,
                    accepted,
                    seconds: t.seconds,
                    current: self.open,
                })?;
        }
        self.open += 1;
        Ok(())
    }
}

/// The live state of one rule's limits.
#[derive(Debug)]
pub struct RuleState {
    limits: Limits,
    whole: Mutex<Counts>,
    keyed: Mutex<HashMap<IpAddr, Counts>>,
    bucket: Option<Bucket>,
}

impl RuleState {
    fn new(limits: Limits) -> Self {
        Self {
            limits,
            whole: Mutex::new(Counts::new()),
            keyed: Mutex::new(HashMap::new()),
            bucket: limits.bandwidth.map(Bucket::new),
        }
    }

    /// Admits a session from `client`, or says which limit refuses it. The slot is held
    /// until the returned guard drops.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Slot, LimitError> {
        let l = self.limits;
        let keyed = l.state_key.is_some() && (l.state_max.is_some() || l.state_throttle.is_some());
        if keyed {
            let mut map = self.keyed.lock().unwrap_or_else(|p| p.into_inner());
            let c = map.entry(client).or_insert_with(Counts::new);
            c.admit(l.state_max, l.state_throttle, true)?;
        }
        let whole = self
            .whole
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(l.max, l.throttle, false);
        if let Err(e) = whole {
            if keyed {
                self.release_key(client);
            }
            return Err(e);
        }
        Ok(Slot {
            state: self.clone(),
            client,
            keyed,
        })
    }

    fn release_key(&self, client: IpAddr) {
        let mut map = self.keyed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get_mut(&client) {
            c.open = c.open.saturating_sub(1);
            // Forget idle keys whose window is over, so the map stays as large as the
            // set of clients actually active.
            let over = self.limits.state_throttle.is_none_or(|t| {
                c.window.start.elapsed() >= Duration::from_secs(u64::from(t.seconds))
            });
            if c.open == 0 && over {
                map.remove(&client);
            }
        }
    }

    /// The rule's shared bandwidth bucket, if it has `bandwidth:`.
    pub fn bucket(&self) -> Option<&Bucket> {
        self.bucket.as_ref()
    }

    /// Sessions open under this rule now.
    pub fn open(&self) -> u32 {
        self.whole.lock().map(|c| c.open).unwrap_or(0)
    }
}

/// A session's place under a rule's limits; dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    state: Arc<RuleState>,
    client: IpAddr,
    keyed: bool,
}

impl Slot {
    /// The rule's state this slot belongs to.
    pub fn state(&self) -> &Arc<RuleState> {
        &self.state
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut c) = self.state.whole.lock() {
            c.open = c.open.saturating_sub(1);
        }
        if self.keyed {
            self.state.release_key(self.client);
        }
    }
}

/// A rate shared by every session of a rule: a virtual-clock token bucket (GCRA) that lets
/// [`BURST`] worth of bytes through at once and otherwise spaces them at the rate.
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    /// The time at which everything granted so far has been paid for.
    paid_until: Mutex<Instant>,
}

/// How far ahead of the rate a bucket lets traffic run (its burst), as time.
pub const BURST: Duration = Duration::from_millis(100);

impl Bucket {
    /// A bucket of `bytes_per_second`.
    pub fn new(bytes_per_second: u64) -> Self {
        Self {
            rate: bytes_per_second.max(1) as f64,
            paid_until: Mutex::new(Instant::now()),
        }
    }

    /// The largest read worth doing at once: a tenth of the burst, so that many sessions
    /// sharing the bucket interleave finely.
    pub fn chunk(&self) -> usize {
        ((self.rate * BURST.as_secs_f64() / 10.0) as usize).clamp(256, 64 * 1024)
    }

    /// Pays for `n` bytes: returns how long to wait before sending them.
    pub fn charge(&self, n: usize) -> Duration {
        let now = Instant::now();
        let mut paid = self.paid_until.lock().unwrap_or_else(|p| p.into_inner());
        // Unused time does not accumulate: idle time never buys more than the burst.
        let start = (*paid).max(now);
        *paid = start + Duration::from_secs_f64(n as f64 / self.rate);
        paid.saturating_duration_since(now + BURST)
    }

    /// Waits until `n` more bytes fit the rate.
    pub async fn take(&self, n: usize) {
        let wait = self.charge(n);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The long-lived limit states, by rule identity.
#[derive(Debug, Default)]
pub struct Registry {
    states: Mutex<HashMap<String, Arc<RuleState>>>,
}

impl Registry {
    /// The state of the rule with identity `key` and `limits`: the existing one when a rule
    /// with the same identity had it, else a new one.
    pub fn get(&self, key: &str, limits: Limits) -> Arc<RuleState> {
        let mut m = self.states.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(key.to_string())
            .or_insert_with(|| Arc::new(RuleState::new(limits)))
            .clone()
    }

    /// Forgets the states of rules that are no longer in the config (`keep` = the
    /// identities of the new generation). Open sessions keep theirs alive.
    pub fn retain(&self, keep: &[String]) {
        let mut m = self.states.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|k, _| keep.contains(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hasocks_conf::sockd::StateKey;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn session_max_refuses_the_extra_session_until_one_ends() {
        let s = Arc::new(RuleState::new(Limits {
            max: Some(2),
            ..Limits::default()
        }));
        let a = s.admit(ip("127.0.0.1")).unwrap();
        let _b = s.admit(ip("127.0.0.2")).unwrap();
        let e = s.admit(ip("127.0.0.3")).unwrap_err();
        assert_eq!(e.to_string(), "session limit reached (2/2 slots in use)");
        drop(a);
        assert!(s.admit(ip("127.0.0.3")).is_ok());
    }

    #[test]
    fn state_max_counts_per_client_ip_with_dantes_message() {
        let s = Arc::new(RuleState::new(Limits {
            state_key: Some(StateKey::From),
            state_max: Some(1),
            ..Limits::default()
        }));
        let _a = s.admit(ip("127.0.0.1")).unwrap();
        let e = s.admit(ip("127.0.0.1")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "per-key session limit reached (1/1 slot in use)"
        );
        assert!(s.admit(ip("127.0.0.2")).is_ok());
    }

    #[test]
    fn throttle_window_admits_n_then_refuses_until_it_restarts() {
        let mut w = Window::new();
        let t = Throttle {
            sessions: 2,
            seconds: 10,
        };
        let now = w.start;
        assert!(w.admit(t, now).is_ok());
        assert!(w.admit(t, now).is_ok());
        assert_eq!(w.admit(t, now + Duration::from_secs(9)), Err(2));
        assert!(w.admit(t, now + Duration::from_secs(10)).is_ok());
        let e = LimitError::Rate {
            keyed: false,
            accepted: 2,
            seconds: 10,
            current: 1,
        };
        assert_eq!(e.to_string(), "session rate limit reached (already accepted 2 new clients during the last 10s.  Current client count: 1)");
    }

    #[test]
    fn a_refused_rule_limit_gives_back_the_per_key_slot() {
        let s = Arc::new(RuleState::new(Limits {
            max: Some(1),
            state_key: Some(StateKey::From),
            state_max: Some(5),
            ..Limits::default()
        }));
        let _a = s.admit(ip("127.0.0.1")).unwrap();
        assert!(s.admit(ip("127.0.0.1")).is_err());
        let m = s.keyed.lock().unwrap();
        assert_eq!(m.get(&ip("127.0.0.1")).map(|c| c.open), Some(1));
    }

    #[test]
    fn bucket_spaces_bytes_at_its_rate_after_the_burst() {
        let b = Bucket::new(1000);
        // The burst (100 ms = 100 bytes) goes at once, the next 1000 bytes wait ~1 s.
        assert_eq!(b.charge(100), Duration::ZERO);
        let w = b.charge(1000);
        assert!(
            w > Duration::from_millis(900) && w <= Duration::from_millis(1000),
            "{w:?}"
        );
    }

    #[test]
    fn registry_keeps_state_for_the_same_identity() {
        let r = Registry::default();
        let l = Limits {
            max: Some(1),
            ..Limits::default()
        };
        let a = r.get("socks#0 x", l);
        let _slot = a.admit(ip("127.0.0.1")).unwrap();
        let again = r.get("socks#0 x", l);
        assert!(Arc::ptr_eq(&a, &again));
        assert_eq!(again.open(), 1);
        r.retain(&[]);
        assert!(!Arc::ptr_eq(&a, &r.get("socks#0 x", l)));
    }
}

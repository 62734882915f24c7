//! Every route's state and counters as the admin listener shows them.

use super::{health, Routes};

/// One route as the status page, `/status.json` and `/metrics` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RouteStatus {
    /// `route #N`.
    pub number: usize,
    /// Its line in the config.
    pub line: u32,
    /// `from ... to ...`.
    pub condition: String,
    /// `host:port`, or `direct`.
    pub via: String,
    /// The protocol spoken to the upstream (empty for direct).
    pub protocol: &'static str,
    /// `bad` (marked), `up`, `down` (the last check failed, the mark expired), `unknown`
    /// (checks on, none ran yet) or `direct`.
    pub state: &'static str,
    /// Failures in a row now.
    pub fails: u32,
    /// Times the upstream was marked bad.
    pub marked: u64,
    /// The last check's text.
    pub last_check: String,
    /// Sessions through the route.
    pub sessions: u64,
    /// Failed attempts by reason (see [`health::FAILURES`]).
    pub failures: Vec<(&'static str, u64)>,
    /// Connect and handshake time of the attempts that succeeded.
    #[serde(skip)]
    pub latency: hasocks_admin::metrics::HistogramSample,
    /// Their mean, in milliseconds.
    pub latency_ms: f64,
}

/// The states a route shows, in the order metrics list them.
pub const STATES: [&str; 5] = ["up", "bad", "down", "unknown", "direct"];

impl Routes {
    /// Every route's state and counters now.
    pub fn status(&self) -> Vec<RouteStatus> {
        self.list
            .iter()
            .map(|r| {
                let latency = r.stats.latency.sample();
                let latency_ms = if latency.count == 0 {
                    0.0
                } else {
                    latency.sum * 1000.0 / latency.count as f64
                };
                let failures = health::FAILURES
                    .iter()
                    .copied()
                    .zip(r.stats.failures())
                    .collect();
                let (via, protocol, state, fails, marked, last_check) = match &r.upstream {
                    None => ("direct".to_string(), "", "direct", 0, 0, String::new()),
                    Some(u) => {
                        let h = &u.health;
                        let state = if h.is_bad(self.badexpire) {
                            "bad"
                        } else if self.check_interval.is_none() {
                            "up"
                        } else {
                            match h.last_checked() {
                                health::Checked::Up => "up",
                                health::Checked::Down => "down",
                                health::Checked::Unknown => "unknown",
                            }
                        };
                        (
                            u.name(),
                            u.protocol.word(),
                            state,
                            h.fails(),
                            h.times_marked(),
                            h.last_check_text(),
                        )
                    }
                };
                RouteStatus {
                    number: r.number,
                    line: r.line,
                    condition: r.condition.clone(),
                    via,
                    protocol,
                    state,
                    fails,
                    marked,
                    last_check,
                    sessions: r.stats.sessions.load(std::sync::atomic::Ordering::Relaxed),
                    failures,
                    latency,
                    latency_ms,
                }
            })
            .collect()
    }
}

//! The history behind the status page's charts: the admin thread samples the daemon's
//! counters once a second (never per session) into a ring of the last [`CAPACITY`] samples;
//! rates come from the differences between samples, and each host's state is kept beside them.
//! Memory stays bounded: [`CAPACITY`] samples per series, at most [`MAX_HOSTS`] hosts.

use std::collections::VecDeque;
use std::time::Duration;

/// Samples kept per series: 15 minutes at one a second.
pub const CAPACITY: usize = 900;

/// Hosts whose state history is kept (a strip each on the page); more are left out.
pub const MAX_HOSTS: usize = 256;

/// How often the product samples.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// A host's state, as the state strips colour it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostState {
    /// Checks pass: it takes traffic.
    Up,
    /// Checks fail: it takes none.
    Down,
    /// Not checked yet.
    Unknown,
    /// Disabled (the host or its table).
    Disabled,
    /// Up, but drained: no new sessions.
    Draining,
}

impl HostState {
    /// Every state, in legend order.
    pub const ALL: [HostState; 5] = [
        HostState::Up,
        HostState::Down,
        HostState::Unknown,
        HostState::Disabled,
        HostState::Draining,
    ];

    /// The word the page's tables use for it.
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Up => "up",
            HostState::Down => "down",
            HostState::Unknown => "unknown",
            HostState::Disabled => "disabled",
            HostState::Draining => "draining",
        }
    }
}

/// One host in a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSample {
    /// Its name on the page, unique in the sample (the relay writes `table:port host`).
    pub name: String,
    /// Its state when sampled.
    pub state: HostState,
}

/// What a daemon's counters read at one moment. The totals are counters since the start
/// (they only grow, except when a reload removes what they were summed over).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// Sessions started.
    pub sessions: u64,
    /// Sessions or connects that failed.
    pub errors: u64,
    /// Bytes from clients towards targets.
    pub bytes_up: u64,
    /// Bytes from targets back to clients.
    pub bytes_down: u64,
    /// Every host and its state (empty for a daemon without hosts).
    pub hosts: Vec<HostSample>,
}

/// A total of [`Sample`] that the charts show as a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// [`Sample::sessions`].
    Sessions,
    /// [`Sample::errors`].
    Errors,
    /// [`Sample::bytes_up`].
    BytesUp,
    /// [`Sample::bytes_down`].
    BytesDown,
}

#[derive(Debug, Clone, Copy)]
struct Point {
    at: Duration,
    totals: [u64; 4],
}

#[derive(Debug)]
struct HostSeries {
    name: String,
    /// One per point, aligned with `History::points`; None where the host was not sampled.
    states: VecDeque<Option<HostState>>,
}

/// The last [`CAPACITY`] samples of a daemon.
#[derive(Debug)]
pub struct History {
    interval: Duration,
    points: VecDeque<Point>,
    /// In order of first appearance (the config's order).
    hosts: Vec<HostSeries>,
}

impl History {
    /// An empty history, to be sampled every `interval`.
    pub fn new(interval: Duration) -> History {
        History {
            interval,
            points: VecDeque::with_capacity(CAPACITY),
            hosts: Vec::new(),
        }
    }

    /// The sampling interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The time a full history spans (15 minutes in the product).
    pub fn window(&self) -> Duration {
        self.interval.saturating_mul(CAPACITY as u32)
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no sample was taken yet.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// When the newest sample was taken (time since sampling began).
    pub fn latest(&self) -> Option<Duration> {
        self.points.back().map(|p| p.at)
    }

    /// Adds `sample`, taken `at` (time since sampling began); the oldest goes when full. A
    /// sample not newer than the last one is dropped (a rate needs time between samples).
    pub fn push(&mut self, at: Duration, sample: Sample) {
        if self.latest().is_some_and(|last| at <= last) {
            return;
        }
        let s = &sample;
        self.points.push_back(Point {
            at,
            totals: [s.sessions, s.errors, s.bytes_up, s.bytes_down],
        });
        for h in &mut self.hosts {
            h.states.push_back(None);
        }
        let before = self.points.len() - 1;
        for hs in sample.hosts {
            match self.hosts.iter().position(|h| h.name == hs.name) {
                Some(i) => {
                    if let Some(last) = self.hosts.get_mut(i).and_then(|h| h.states.back_mut()) {
                        *last = Some(hs.state);
                    }
                }
                None if self.hosts.len() < MAX_HOSTS => {
                    let mut states: VecDeque<_> = std::iter::repeat_n(None, before).collect();
                    states.push_back(Some(hs.state));
                    self.hosts.push(HostSeries {
                        name: hs.name,
                        states,
                    });
                }
                None => {}
            }
        }
        if self.points.len() > CAPACITY {
            self.points.pop_front();
            for h in &mut self.hosts {
                h.states.pop_front();
            }
        }
        // A host gone (by a reload) for the whole window has nothing left to show.
        self.hosts.retain(|h| h.states.iter().any(Option::is_some));
    }

    /// (time of a sample, per-second rate) for every sample after the first: the counter's
    /// increase since the sample before, over the time between them. A counter that went
    /// down (a reload removed a relay or host it summed) counts as no increase, so that a
    /// reset shows neither a negative rate nor a spike.
    pub fn rates(&self, counter: Counter) -> Vec<(Duration, f64)> {
        let i = counter as usize;
        self.points
            .iter()
            .zip(self.points.iter().skip(1))
            .map(|(a, b)| {
                let up = b.totals[i].saturating_sub(a.totals[i]);
                let dt = b.at.saturating_sub(a.at).as_secs_f64();
                let rate = if dt > 0.0 { up as f64 / dt } else { 0.0 };
                (b.at, rate)
            })
            .collect()
    }

    /// Every host with its (time, state) samples, oldest first, leaving out the samples
    /// without it.
    pub fn host_states(&self) -> Vec<(&str, Vec<(Duration, HostState)>)> {
        self.hosts
            .iter()
            .map(|h| {
                let states = self
                    .points
                    .iter()
                    .zip(&h.states)
                    .filter_map(|(p, s)| Some((p.at, (*s)?)))
                    .collect();
                (h.name.as_str(), states)
            })
            .collect()
    }

    /// The rate charts (sessions/s, errors/s, bytes/s), as inline SVG in a `div`.
    pub fn rate_charts_html(&self) -> String {
        crate::chart::rate_charts(self)
    }

    /// One state strip per host, as inline SVG; empty when there are no hosts.
    pub fn host_strips_html(&self) -> String {
        crate::chart::host_strips(self)
    }

    /// The charts section of a page: a heading, the rate charts and the host strips.
    pub fn section_html(&self) -> String {
        format!(
            "<h2>last {}</h2>\n{}{}",
            crate::chart::span_words(self.window()),
            self.rate_charts_html(),
            self.host_strips_html()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn totals(sessions: u64, errors: u64) -> Sample {
        Sample {
            sessions,
            errors,
            ..Sample::default()
        }
    }

    fn hosts(list: &[(&str, HostState)]) -> Sample {
        Sample {
            hosts: list
                .iter()
                .map(|(n, s)| HostSample {
                    name: (*n).into(),
                    state: *s,
                })
                .collect(),
            ..Sample::default()
        }
    }

    #[test]
    fn rates_come_from_counter_deltas() {
        let mut h = History::new(at(1));
        h.push(at(1), totals(10, 0));
        h.push(at(2), totals(15, 1));
        h.push(at(4), totals(25, 1));
        assert_eq!(
            h.rates(Counter::Sessions),
            vec![(at(2), 5.0), (at(4), 5.0)],
            "10 more over 2 s is 5/s"
        );
        assert_eq!(h.rates(Counter::Errors), vec![(at(2), 1.0), (at(4), 0.0)]);
    }

    #[test]
    fn a_counter_reset_is_not_a_negative_rate() {
        let mut h = History::new(at(1));
        h.push(at(1), totals(1000, 0));
        h.push(at(2), totals(3, 0));
        h.push(at(3), totals(7, 0));
        assert_eq!(h.rates(Counter::Sessions), vec![(at(2), 0.0), (at(3), 4.0)]);
    }

    #[test]
    fn a_single_sample_has_no_rate_yet() {
        let mut h = History::new(at(1));
        assert!(h.rates(Counter::BytesUp).is_empty());
        h.push(at(1), totals(5, 0));
        assert!(h.rates(Counter::BytesUp).is_empty());
    }

    #[test]
    fn a_sample_not_newer_than_the_last_is_dropped() {
        let mut h = History::new(at(1));
        h.push(at(2), totals(5, 0));
        h.push(at(2), totals(9, 0));
        h.push(at(1), totals(9, 0));
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn the_ring_keeps_the_last_900_samples_of_every_series() {
        let mut h = History::new(at(1));
        for i in 0..2000u64 {
            h.push(at(i + 1), hosts(&[("a", HostState::Up)]));
        }
        assert_eq!(h.len(), CAPACITY);
        assert_eq!(h.latest(), Some(at(2000)));
        assert_eq!(h.rates(Counter::Sessions).len(), CAPACITY - 1);
        let hs = h.host_states();
        assert_eq!(hs.len(), 1);
        assert_eq!(hs[0].1.len(), CAPACITY);
        assert_eq!(hs[0].1[0].0, at(1101), "the oldest kept");
        assert_eq!(h.window(), Duration::from_secs(15 * 60));
    }

    #[test]
    fn host_states_follow_each_host_and_a_late_host_starts_when_it_appears() {
        let mut h = History::new(at(1));
        h.push(at(1), hosts(&[("a", HostState::Up)]));
        h.push(
            at(2),
            hosts(&[("a", HostState::Down), ("b", HostState::Unknown)]),
        );
        h.push(at(3), hosts(&[("b", HostState::Up), ("a", HostState::Up)]));
        let hs = h.host_states();
        assert_eq!(hs[0].0, "a", "first seen first");
        assert_eq!(
            hs[0].1,
            vec![
                (at(1), HostState::Up),
                (at(2), HostState::Down),
                (at(3), HostState::Up)
            ]
        );
        assert_eq!(hs[1].0, "b");
        assert_eq!(
            hs[1].1,
            vec![(at(2), HostState::Unknown), (at(3), HostState::Up)]
        );
    }

    #[test]
    fn a_host_gone_for_the_whole_window_is_forgotten() {
        let mut h = History::new(at(1));
        h.push(at(1), hosts(&[("old", HostState::Up)]));
        for i in 2..=(CAPACITY as u64) {
            h.push(at(i), hosts(&[("new", HostState::Up)]));
        }
        assert_eq!(h.host_states().len(), 2, "still in the window");
        h.push(at(CAPACITY as u64 + 1), hosts(&[("new", HostState::Up)]));
        let names: Vec<&str> = h.host_states().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["new"]);
    }

    #[test]
    fn hosts_beyond_the_cap_are_left_out() {
        let mut h = History::new(at(1));
        let many: Vec<(String, HostState)> = (0..MAX_HOSTS + 10)
            .map(|i| (format!("h{i}"), HostState::Up))
            .collect();
        let list: Vec<(&str, HostState)> = many.iter().map(|(n, s)| (n.as_str(), *s)).collect();
        h.push(at(1), hosts(&list));
        assert_eq!(h.host_states().len(), MAX_HOSTS);
    }
}

//! The admin HTTP listener both daemons use: `/metrics` (Prometheus text format), `/` (a live
//! HTML status page), `/status.json`, `/live` and `/ready`. A daemon hands it a [`Source`];
//! the listener runs on a thread and runtime of its own, with its own connection limit and
//! timeouts, so that slow or hostile admin clients cannot disturb the data path. The same
//! thread samples the source once a second into a [`History`], which the page draws as charts.
#![forbid(unsafe_code)]

mod chart;
pub mod history;
pub mod html;
pub mod metrics;
pub mod process;
mod server;

pub use history::{History, HostSample, HostState, Sample};
pub use server::{start, start_sampling_every, AdminError, AdminHandle, Limits};

/// Whether the daemon should get traffic (`/ready`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Every listener bound and, for a relay, every enabled relay has a host up.
    Ready,
    /// Why not, for the 503 body.
    NotReady(String),
}

/// What a daemon shows on its admin listener. Called from the admin thread; implementations
/// read the daemon's state (atomics, snapshots) and never block on the data path.
pub trait Source: Send + Sync + 'static {
    /// The daemon's metrics, as a collector (it is asked at every scrape).
    fn collector(&self) -> Box<dyn prometheus_client::collector::Collector>;
    /// The status page (a whole HTML document), with the charts of `history` in it (for
    /// instance [`History::section_html`] under the page's first line).
    fn status_html(&self, history: &History) -> String;
    /// The same data as the page, as JSON.
    fn status_json(&self) -> String;
    /// `/ready`.
    fn ready(&self) -> Readiness;
    /// The totals and host states now, for the page's charts. The admin thread calls it once
    /// a second, whether anyone looks or not: read counters that exist (atomics, the
    /// snapshot a scrape reads), never add work per session.
    fn sample(&self) -> Sample;
}

//! The admin HTTP listener both daemons use: `/metrics` (Prometheus text format), `/` (a live
//! HTML status page), `/status.json`, `/live` and `/ready`. A daemon hands it a [`Source`];
//! the listener runs on a thread and runtime of its own, with its own connection limit and
//! timeouts, so that slow or hostile admin clients cannot disturb the data path.
#![forbid(unsafe_code)]

pub mod html;
pub mod metrics;
pub mod process;
mod server;

pub use server::{start, AdminError, AdminHandle, Limits};

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
    /// The status page (a whole HTML document).
    fn status_html(&self) -> String;
    /// The same data as the page, as JSON.
    fn status_json(&self) -> String;
    /// `/ready`.
    fn ready(&self) -> Readiness;
}

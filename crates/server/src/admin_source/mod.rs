//! What the server shows on its admin listener (`hasocks.admin: ADDR port = N`): Prometheus
//! metrics (sessions by version and command, blocks by rule, negotiation and connect
//! failures, bytes, UDP, authentication), the HTML status page with its charts,
//! `/status.json`, readiness, and the once-a-second sample behind the charts.

use std::sync::Arc;
use std::time::SystemTime;

mod metrics;
mod routes;

use hasocks_admin::html::{self, num, td};
use hasocks_admin::{History, Readiness, Sample, Source};
use prometheus_client::collector::Collector;
use serde::Serialize;

use crate::handle::ServerHandle;
use crate::stats::{StatsSnapshot, COMMANDS, NEGOTIATION_FAILURES, VERSIONS};

/// The server as an admin [`Source`].
#[derive(Clone)]
pub struct ServerAdmin {
    handle: Arc<ServerHandle>,
    started: SystemTime,
}

impl ServerAdmin {
    /// Shows `handle`.
    pub fn new(handle: Arc<ServerHandle>) -> Self {
        ServerAdmin {
            handle,
            started: SystemTime::now(),
        }
    }
}

/// `/status.json`.
#[derive(Serialize)]
struct Status<'a> {
    pid: u32,
    listeners: Vec<String>,
    sessions_open: usize,
    admission: crate::admission::AdmissionStatus,
    auth: AuthJson,
    routes: Vec<crate::route::RouteStatus>,
    #[serde(flatten)]
    stats: &'a StatsSnapshot,
}

#[derive(Serialize)]
struct AuthJson {
    successes: u64,
    failures: u64,
    cache_hits: u64,
}

impl Source for ServerAdmin {
    fn collector(&self) -> Box<dyn Collector> {
        Box::new(metrics::ServerCollector(self.handle.clone()))
    }

    fn status_html(&self, history: &History) -> String {
        page(
            &self.handle,
            &self.handle.stats().snapshot(),
            history,
            self.started,
            SystemTime::now(),
        )
    }

    /// The counters' snapshot (atomics): sessions that passed the rules; errors are failed
    /// negotiations and failed connects; bytes of TCP sessions and UDP associations, counted
    /// when they end.
    fn sample(&self) -> Sample {
        let mut s = sample_of(&self.handle.stats().snapshot());
        s.hosts = routes::hosts(&self.handle.routes());
        s
    }

    fn status_json(&self) -> String {
        let stats = self.handle.stats().snapshot();
        let a = self.handle.auth_stats();
        let s = Status {
            pid: std::process::id(),
            listeners: self
                .handle
                .local_addrs()
                .iter()
                .map(ToString::to_string)
                .collect(),
            sessions_open: self.handle.active_sessions(),
            admission: self.handle.admission(),
            auth: AuthJson {
                successes: a.successes,
                failures: a.failures,
                cache_hits: a.cache_hits,
            },
            routes: self.handle.routes(),
            stats: &stats,
        };
        serde_json::to_string(&s).unwrap_or_else(|_| "{}".into())
    }

    fn ready(&self) -> Readiness {
        if self.handle.local_addrs().is_empty() {
            Readiness::NotReady("no listener".into())
        } else {
            Readiness::Ready
        }
    }
}

/// The charts' totals of `s` (see [`ServerAdmin::sample`]).
fn sample_of(s: &StatsSnapshot) -> Sample {
    let add = |a: u64, n: &u64| a.saturating_add(*n);
    let connects = s.connect_failures.iter().map(|(_, n)| n);
    Sample {
        sessions: s.sessions_total.iter().flatten().fold(0, add),
        errors: s.negotiation_failures.iter().chain(connects).fold(0, add),
        bytes_up: s.bytes_up.saturating_add(s.udp[1]),
        bytes_down: s.bytes_down.saturating_add(s.udp[3]),
        hosts: Vec::new(),
    }
}

/// The status page: the charts of `history`, then listeners, sessions by command,
/// authentication, failures, recent blocks.
fn page(
    h: &ServerHandle,
    s: &StatsSnapshot,
    history: &History,
    started: SystemTime,
    now: SystemTime,
) -> String {
    let meta = format!(
        "pid {}, up {}, {} sessions open, {}",
        std::process::id(),
        html::age(now.duration_since(started).unwrap_or_default()),
        h.active_sessions(),
        hasocks_net::clock::utc(now)
    );
    let mut body = history.section_html();
    body.push_str("<h2>listeners</h2>\n");
    let rows: Vec<Vec<String>> = h
        .local_addrs()
        .iter()
        .map(|a| vec![td(&a.to_string())])
        .collect();
    body.push_str(&html::table(&["listening on"], &rows));

    body.push_str("<h2>sessions</h2>\n");
    let mut rows = Vec::new();
    for (vi, v) in VERSIONS.iter().enumerate() {
        for (ci, c) in COMMANDS.iter().enumerate() {
            let cell = |g: &[Vec<u64>]| g.get(vi).and_then(|r| r.get(ci)).copied().unwrap_or(0);
            let (open, total) = (cell(&s.sessions_open), cell(&s.sessions_total));
            if total > 0 || open > 0 {
                rows.push(vec![td(&format!("{v}/{c}")), num(open), num(total)]);
            }
        }
    }
    body.push_str(&html::table(&["kind", "open", "total"], &rows));
    let a = h.auth_stats();
    body.push_str(&html::table(
        &[
            "accepted",
            "bytes up",
            "bytes down",
            "auth ok",
            "auth failed",
            "UDP datagrams up/down",
        ],
        &[vec![
            num(s.accepted),
            num(html::bytes(s.bytes_up)),
            num(html::bytes(s.bytes_down)),
            num(a.successes),
            num(a.failures),
            num(format!("{}/{}", s.udp[0], s.udp[2])),
        ]],
    ));
    body.push_str(&routes::section_html(&h.routes()));
    let fails: Vec<Vec<String>> = NEGOTIATION_FAILURES
        .iter()
        .zip(&s.negotiation_failures)
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| vec![td(&format!("negotiation: {r}")), num(n)])
        .chain(
            s.connect_failures
                .iter()
                .map(|(c, n)| vec![td(&format!("connect: reply {c:02x}")), num(n)]),
        )
        .collect();
    if !fails.is_empty() {
        body.push_str("<h2>failures</h2>\n");
        body.push_str(&html::table(&["what", "count"], &fails));
    }
    body.push_str("<h2>recent blocks</h2>\n");
    let rows: Vec<Vec<String>> = s
        .recent_blocks
        .iter()
        .rev()
        .map(|b| {
            vec![
                td(&html::ago(b.at_ms, now)),
                td(&format!("{:?} rule {}", b.kind, b.rule).to_lowercase()),
                td(&b.client.to_string()),
                td(&b.target),
            ]
        })
        .collect();
    body.push_str(&html::table(&["when", "rule", "client", "target"], &rows));
    html::page("hasocks server", &meta, &body)
}

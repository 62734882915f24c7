//! What the server shows on its admin listener (`hasocks.admin: ADDR port = N`): Prometheus
//! metrics (sessions by version and command, blocks by rule, negotiation and connect
//! failures, bytes, UDP, authentication), the HTML status page with its charts,
//! `/status.json`, readiness, and the once-a-second sample behind the charts.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use admin::html::{self, num, td};
use admin::metrics::{counters, gauges, Labels};
use admin::{History, Readiness, Sample, Source};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;
use serde::Serialize;

use crate::handle::ServerHandle;
use crate::stats::{StatsSnapshot, COMMANDS, NEGOTIATION_FAILURES, UDP_DROPS, VERSIONS};

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
        Box::new(ServerCollector(self.handle.clone()))
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
        sample_of(&self.handle.stats().snapshot())
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

struct ServerCollector(Arc<ServerHandle>);

impl fmt::Debug for ServerCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerCollector")
    }
}

/// (labels, value) for every version and command of a grid.
fn by_kind(grid: &[Vec<u64>]) -> Vec<(Labels, u64)> {
    let mut out = Vec::new();
    for (v, row) in VERSIONS.iter().zip(grid) {
        for (c, n) in COMMANDS.iter().zip(row) {
            out.push((
                vec![("version", (*v).to_string()), ("command", (*c).to_string())],
                *n,
            ));
        }
    }
    out
}

impl Collector for ServerCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let s = self.0.stats().snapshot();
        let e = &mut enc;
        counters(
            e,
            "server_connections_accepted",
            "Client connections the server accepted",
            None,
            [(Vec::new(), s.accepted)],
        )?;
        counters(
            e,
            "server_sessions",
            "Requests that passed the rules, by SOCKS version and command",
            None,
            by_kind(&s.sessions_total),
        )?;
        gauges(
            e,
            "server_current_sessions",
            "Sessions open now, by SOCKS version and command",
            None,
            by_kind(&s.sessions_open)
                .into_iter()
                .map(|(l, n)| (l, n as f64))
                .collect::<Vec<_>>(),
        )?;
        let rule = |kind: &str, list: &[(u32, u64)]| -> Vec<(Labels, u64)> {
            list.iter()
                .map(|(r, n)| {
                    (
                        vec![("kind", kind.to_string()), ("rule", r.to_string())],
                        *n,
                    )
                })
                .collect()
        };
        let mut blocks = rule("client", &s.client_blocks);
        blocks.extend(rule("socks", &s.socks_blocks));
        counters(
            e,
            "server_blocks",
            "Connections and requests blocked, by rule kind and number (0 = no rule matched)",
            None,
            blocks,
        )?;
        counters(
            e,
            "server_negotiation_failures",
            "Negotiations that failed, by reason",
            None,
            NEGOTIATION_FAILURES
                .iter()
                .zip(&s.negotiation_failures)
                .map(|(r, n)| (vec![("reason", (*r).to_string())], *n))
                .collect::<Vec<_>>(),
        )?;
        counters(
            e,
            "server_connect_failures",
            "CONNECTs that failed, by the SOCKS reply code sent",
            None,
            s.connect_failures
                .iter()
                .map(|(c, n)| (vec![("reply", format!("{c:02x}"))], *n))
                .collect::<Vec<_>>(),
        )?;
        counters(
            e,
            "server_upload",
            "Bytes from clients to targets (sessions that ended)",
            Some(Unit::Bytes),
            [(Vec::new(), s.bytes_up)],
        )?;
        counters(
            e,
            "server_download",
            "Bytes from targets to clients (sessions that ended)",
            Some(Unit::Bytes),
            [(Vec::new(), s.bytes_down)],
        )?;
        let dir = |d: &str| vec![("direction", d.to_string())];
        counters(
            e,
            "server_udp_datagrams",
            "UDP datagrams relayed (associations that ended), by direction",
            None,
            [(dir("up"), s.udp[0]), (dir("down"), s.udp[2])],
        )?;
        counters(
            e,
            "server_udp_payload",
            "UDP payload bytes relayed (associations that ended), by direction",
            Some(Unit::Bytes),
            [(dir("up"), s.udp[1]), (dir("down"), s.udp[3])],
        )?;
        counters(
            e,
            "server_udp_drops",
            "UDP datagrams dropped, by reason",
            None,
            UDP_DROPS
                .iter()
                .zip(&s.udp_drops)
                .map(|(r, n)| (vec![("reason", (*r).to_string())], *n))
                .collect::<Vec<_>>(),
        )?;
        let a = self.0.auth_stats();
        counters(
            e,
            "server_auth_successes",
            "Authentications that passed",
            None,
            [(Vec::new(), a.successes)],
        )?;
        counters(
            e,
            "server_auth_failures",
            "Authentications that failed",
            None,
            [(Vec::new(), a.failures)],
        )?;
        counters(
            e,
            "server_auth_cache_hits",
            "Authentications answered from the success cache",
            None,
            [(Vec::new(), a.cache_hits)],
        )?;
        gauges(
            e,
            "server_listeners",
            "Addresses the server listens on",
            None,
            [(Vec::new(), self.0.local_addrs().len() as f64)],
        )?;
        admission_metrics(e, &self.0.admission())
    }
}

/// The connection caps, their use, and what admission refused and evicted.
fn admission_metrics(
    e: &mut DescriptorEncoder<'_>,
    a: &crate::admission::AdmissionStatus,
) -> Result<(), fmt::Error> {
    let kind = |k: &str| vec![("kind", k.to_string())];
    gauges(
        e,
        "server_admission_cap",
        "Connection caps: all connections, negotiating, negotiating from one address (0 = none)",
        None,
        [
            (kind("connections"), f64::from(a.caps.total)),
            (kind("negotiating"), f64::from(a.caps.negotiating)),
            (
                kind("negotiating_per_source"),
                f64::from(a.caps.negotiating_per_source),
            ),
        ],
    )?;
    gauges(
        e,
        "server_admission_connections",
        "Connections held now, and of those still negotiating",
        None,
        [
            (kind("connections"), f64::from(a.connections)),
            (kind("negotiating"), f64::from(a.negotiating)),
        ],
    )?;
    counters(
        e,
        "server_admission_refused",
        "Connections closed at once: their address had hasocks.maxconn.negotiating.source negotiating",
        None,
        [(Vec::new(), a.refused_per_source)],
    )?;
    counters(
        e,
        "server_admission_evicted",
        "Negotiating connections closed, oldest first, to admit new ones at hasocks.maxconn.negotiating",
        None,
        [(Vec::new(), a.evicted)],
    )?;
    counters(
        e,
        "server_admission_waits",
        "Times the accept loops found hasocks.maxconn connections held and left new ones in the backlog",
        None,
        [(Vec::new(), a.waits_at_cap)],
    )
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
        net::clock::utc(now)
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

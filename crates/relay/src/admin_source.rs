//! What the relay shows on its admin listener (`hasocks.admin listen on ...`): Prometheus
//! metrics per host, table and relay; the HTML status page with its charts; `/status.json`;
//! readiness; the once-a-second sample behind the charts.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use hasocks_admin::html::{self, num, td, td_class};
use hasocks_admin::metrics::{counters, gauges, histograms, state_set, Labels};
use hasocks_admin::{History, HostSample, HostState as ChartState, Readiness, Sample, Source};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use crate::handle::RelayHandle;
use hasocks_ctl_proto::relay::{ConnectReason, HostState, HostStatus, Status, TableStatus};
use hasocks_ctl_proto::render::host_name;

/// The states a host's `relay_host_state` series cover.
const STATES: [&str; 5] = ["up", "down", "unknown", "disabled", "draining"];

/// The relay as an admin [`Source`].
#[derive(Debug, Clone)]
pub struct RelayAdmin {
    handle: Arc<RelayHandle>,
}

impl RelayAdmin {
    /// Shows `handle`.
    pub fn new(handle: Arc<RelayHandle>) -> Self {
        RelayAdmin { handle }
    }
}

impl Source for RelayAdmin {
    fn collector(&self) -> Box<dyn Collector> {
        Box::new(RelayCollector(self.handle.clone()))
    }

    fn status_html(&self, history: &History) -> String {
        page(&self.handle.snapshot(), history, SystemTime::now())
    }

    fn status_json(&self) -> String {
        serde_json::to_string(&self.handle.snapshot()).unwrap_or_else(|_| "{}".into())
    }

    fn ready(&self) -> Readiness {
        match self.handle.readiness() {
            Ok(()) => Readiness::Ready,
            Err(why) => Readiness::NotReady(why.to_string()),
        }
    }

    /// The snapshot a scrape reads (counters and each host's bytes, open sessions included).
    fn sample(&self) -> Sample {
        sample_of(&self.handle.snapshot())
    }
}

/// The charts' totals of `s`: sessions accepted by every relay; errors are sessions that
/// failed plus connects to hosts that failed (a dead host shows before its check notices);
/// bytes summed over the hosts; every host as `table:port host` with its state.
fn sample_of(s: &Status) -> Sample {
    let hosts = || s.tables.iter().flat_map(|t| t.hosts.iter());
    let sum = |f: &dyn Fn(&HostStatus) -> u64| hosts().map(f).fold(0u64, u64::saturating_add);
    let relays = |f: &dyn Fn(&crate::RelayStatus) -> u64| {
        s.relays.iter().map(f).fold(0u64, u64::saturating_add)
    };
    Sample {
        sessions: relays(&|r| r.sessions_total),
        errors: relays(&|r| r.sessions_failed).saturating_add(sum(&|h| h.connect_failures)),
        bytes_up: sum(&|h| h.bytes_out),
        bytes_down: sum(&|h| h.bytes_in),
        hosts: s
            .tables
            .iter()
            .flat_map(|t| {
                let port = table_port(t);
                t.hosts.iter().map(move |h| HostSample {
                    name: format!("{} {}", t.name, host_name(h, port)),
                    state: chart_state(h),
                })
            })
            .collect(),
    }
}

#[derive(Debug)]
struct RelayCollector(Arc<RelayHandle>);

/// (table, host) labels and the host, for every host of every table.
fn hosts(s: &Status) -> Vec<(Labels, &HostStatus)> {
    s.tables
        .iter()
        .flat_map(|t| {
            let port = table_port(t);
            t.hosts.iter().map(move |h| {
                (
                    vec![("table", t.name.clone()), ("host", host_name(h, port))],
                    h,
                )
            })
        })
        .collect()
}

/// A host's state as the strips colour it (draining is a kind of up).
fn chart_state(h: &HostStatus) -> ChartState {
    match h.state {
        HostState::Up if h.draining => ChartState::Draining,
        HostState::Up => ChartState::Up,
        HostState::Down => ChartState::Down,
        HostState::Unknown => ChartState::Unknown,
        HostState::Disabled => ChartState::Disabled,
    }
}

fn table_port(t: &TableStatus) -> Option<u16> {
    t.name.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

impl Collector for RelayCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let s = self.0.snapshot();
        let hs = hosts(&s);
        let per_host = |f: &dyn Fn(&HostStatus) -> u64| -> Vec<(Labels, u64)> {
            hs.iter().map(|(l, h)| (l.clone(), f(h))).collect()
        };
        let e = &mut enc;
        gauges(
            e,
            "relay_host_state",
            "Host state, one series per state, 1 for the current one",
            None,
            hs.iter()
                .flat_map(|(l, h)| state_set(l, &STATES, h.status_word()))
                .collect::<Vec<_>>(),
        )?;
        gauges(
            e,
            "relay_host_last_state_change_timestamp",
            "When the host's state last changed (Unix time)",
            Some(Unit::Seconds),
            hs.iter()
                .filter_map(|(l, h)| Some((l.clone(), h.last_change_at_ms? as f64 / 1000.0)))
                .collect::<Vec<_>>(),
        )?;
        gauges(
            e,
            "relay_host_check_duration",
            "How long the host's last health check took",
            Some(Unit::Seconds),
            hs.iter()
                .filter_map(|(l, h)| Some((l.clone(), h.last_check_us? as f64 / 1e6)))
                .collect::<Vec<_>>(),
        )?;
        gauges(
            e,
            "relay_host_check_success",
            "Whether the host's last health check passed (1) or failed (0)",
            None,
            hs.iter()
                .filter_map(|(l, h)| Some((l.clone(), f64::from(u8::from(h.last_check_ok?)))))
                .collect::<Vec<_>>(),
        )?;
        counters(
            e,
            "relay_host_checks",
            "Health checks of the host that gave a verdict",
            None,
            per_host(&|h| h.checks),
        )?;
        counters(
            e,
            "relay_host_check_failures",
            "Health checks the host failed",
            None,
            per_host(&|h| h.checks - h.ups),
        )?;
        counters(
            e,
            "relay_host_check_local_errors",
            "Health checks without a verdict because this machine failed (descriptors, ports)",
            None,
            per_host(&|h| h.local_errors),
        )?;
        gauges(
            e,
            "relay_host_current_sessions",
            "Sessions open to the host now",
            None,
            hs.iter()
                .map(|(l, h)| (l.clone(), h.open as f64))
                .collect::<Vec<_>>(),
        )?;
        counters(
            e,
            "relay_host_sessions",
            "Sessions forwarded to the host",
            None,
            per_host(&|h| h.sessions),
        )?;
        counters(
            e,
            "relay_host_connect_failures",
            "Connections to the host that failed by its or the network's doing (local errors not counted)",
            None,
            per_host(&|h| h.connect_failures),
        )?;
        counters(
            e,
            "relay_host_connect_errors",
            "Connections to the host that failed, by reason (refused, timeout, unreachable; local: this machine's fault)",
            None,
            hs.iter()
                .flat_map(|(l, h)| {
                    ConnectReason::ALL.iter().map(move |r| {
                        let mut l = l.clone();
                        l.push(("reason", r.as_str().to_string()));
                        (l, h.connect_errors.get(*r))
                    })
                })
                .collect::<Vec<_>>(),
        )?;
        counters(
            e,
            "relay_host_retries",
            "Connection attempts to the host that retried a failed one",
            None,
            per_host(&|h| h.retries),
        )?;
        counters(
            e,
            "relay_host_sent",
            "Bytes from clients to the host",
            Some(Unit::Bytes),
            per_host(&|h| h.bytes_out),
        )?;
        counters(
            e,
            "relay_host_received",
            "Bytes from the host to clients",
            Some(Unit::Bytes),
            per_host(&|h| h.bytes_in),
        )?;

        let per_table = |f: &dyn Fn(&TableStatus) -> f64| -> Vec<(Labels, f64)> {
            s.tables
                .iter()
                .map(|t| (vec![("table", t.name.clone())], f(t)))
                .collect()
        };
        gauges(
            e,
            "relay_table_hosts_up",
            "Hosts of the table that are up",
            None,
            per_table(&|t| t.hosts_up() as f64),
        )?;
        gauges(
            e,
            "relay_table_hosts",
            "Hosts in the table",
            None,
            per_table(&|t| t.hosts.len() as f64),
        )?;

        let rd = |name: &str| vec![("redirect", name.to_string())];
        gauges(
            e,
            "redirect_enabled",
            "Whether the redirect is enabled (1) or disabled (0)",
            None,
            s.redirects
                .iter()
                .map(|r| (rd(&r.name), f64::from(u8::from(!r.disabled))))
                .collect::<Vec<_>>(),
        )?;
        gauges(
            e,
            "redirect_active",
            "Whether the kernel redirects new flows (1: enabled, a table with a host up)",
            None,
            s.redirects
                .iter()
                .map(|r| {
                    let on = !r.disabled && r.active_table.is_some();
                    (rd(&r.name), f64::from(u8::from(on)))
                })
                .collect::<Vec<_>>(),
        )?;
        gauges(
            e,
            "redirect_using_backup",
            "Whether new flows go to a backup table (1) or the primary one (0)",
            None,
            s.redirects
                .iter()
                .map(|r| {
                    let backup = r.active_table.is_some() && r.state().contains("backup");
                    (rd(&r.name), f64::from(u8::from(backup)))
                })
                .collect::<Vec<_>>(),
        )?;
        let rl = |name: &str| vec![("relay", name.to_string())];
        let per_relay = |f: &dyn Fn(&crate::RelayStatus) -> u64| -> Vec<(Labels, u64)> {
            s.relays.iter().map(|r| (rl(&r.name), f(r))).collect()
        };
        counters(
            e,
            "relay_connections_accepted",
            "Client connections the relay accepted",
            None,
            per_relay(&|r| r.sessions_total),
        )?;
        gauges(
            e,
            "relay_current_sessions",
            "Client connections open now",
            None,
            s.relays
                .iter()
                .map(|r| (rl(&r.name), r.sessions_open as f64))
                .collect::<Vec<_>>(),
        )?;
        counters(
            e,
            "relay_no_host_refusals",
            "Sessions refused because no host was up",
            None,
            per_relay(&|r| r.no_host),
        )?;
        counters(
            e,
            "relay_session_failures",
            "Sessions closed without reaching a host (none up, or every connect failed)",
            None,
            per_relay(&|r| r.sessions_failed),
        )?;
        counters(
            e,
            "relay_retries",
            "Connection attempts that retried a failed one (same or next host)",
            None,
            per_relay(&|r| r.retries),
        )?;
        gauges(
            e,
            "relay_enabled",
            "Whether the relay forwards (1) or is disabled (0)",
            None,
            s.relays
                .iter()
                .map(|r| (rl(&r.name), f64::from(u8::from(!r.disabled))))
                .collect::<Vec<_>>(),
        )?;
        histograms(
            e,
            "relay_session_duration",
            "How long sessions that reached a host lasted",
            Some(Unit::Seconds),
            self.0
                .session_durations()
                .into_iter()
                .map(|(name, h)| (rl(&name), h))
                .collect::<Vec<_>>(),
        )?;
        gauges(
            e,
            "relay_config_generation",
            "The config generation in effect (1 at start, one more per reload)",
            None,
            [(Vec::new(), s.generation as f64)],
        )?;
        gauges(
            e,
            "relay_draining",
            "Whether relay drain is in effect (1): /ready answers 503, sessions are still served",
            None,
            [(Vec::new(), f64::from(u8::from(s.draining)))],
        )
    }
}

/// The status page: the charts of `history`, then every relay, its tables and their hosts.
pub fn page(s: &Status, history: &History, now: SystemTime) -> String {
    let up = now
        .duration_since(std::time::UNIX_EPOCH + std::time::Duration::from_millis(s.started_at_ms))
        .unwrap_or_default();
    let meta = format!(
        "pid {}, up {}, config generation {}, {}",
        s.pid,
        html::age(up),
        s.generation,
        hasocks_net::clock::utc(now)
    );
    let mut body = history.section_html();
    for r in &s.relays {
        let (st, class) = match (r.disabled, s.draining) {
            (true, _) => ("disabled", "bad"),
            (false, true) => ("draining", "draining"),
            (false, false) => ("active", "ok"),
        };
        let listens: Vec<String> = r.listens.iter().map(|a| a.to_string()).collect();
        body.push_str(&format!(
            "<h2>relay {} <small class=\"{class}\">{st}</small></h2>\n",
            html::escape(&r.name),
        ));
        body.push_str(&html::table(
            &[
                "listening on",
                "sessions open",
                "sessions total",
                "failed",
                "no host up",
                "retries",
            ],
            &[vec![
                td(&listens.join(", ")),
                num(r.sessions_open),
                num(r.sessions_total),
                num(r.sessions_failed),
                num(r.no_host),
                num(r.retries),
            ]],
        ));
        for (i, t) in r.tables.iter().filter_map(|n| s.table(n)).enumerate() {
            let role = if i == 0 { "table" } else { "backup table" };
            let state = if t.disabled {
                "disabled".to_string()
            } else {
                format!("{} of {} hosts up", t.hosts_up(), t.hosts.len())
            };
            body.push_str(&format!(
                "<h3>{role} {} &middot; check {} &middot; {}</h3>\n",
                html::escape(&t.name),
                html::escape(t.check.as_deref().unwrap_or("none")),
                html::escape(&state)
            ));
            let port = table_port(t);
            let rows: Vec<Vec<String>> = t.hosts.iter().map(|h| host_row(h, port, now)).collect();
            body.push_str(&html::table(
                &[
                    "id",
                    "host",
                    "state",
                    "since",
                    "avail.",
                    "last check",
                    "took",
                    "checks",
                    "open",
                    "sessions",
                    "bytes out",
                    "bytes in",
                    "retries",
                    "failed connects",
                ],
                &rows,
            ));
        }
    }
    html::page("hasocks relay", &meta, &body)
}

fn host_row(h: &HostStatus, port: Option<u16>, now: SystemTime) -> Vec<String> {
    let word = h.status_word();
    let since = h.last_change_at_ms.map_or_else(
        || td("-"),
        |ms| {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
            format!(
                "<td title=\"{}\">{}</td>",
                hasocks_net::clock::utc(at),
                html::escape(&html::ago(ms, now))
            )
        },
    );
    let name = host_name(h, port);
    let addr = h.addr.to_string();
    let host = if name == addr || name == h.addr.ip().to_string() {
        td(&name)
    } else {
        td(&format!("{name} ({addr})"))
    };
    let avail = h
        .availability()
        .map_or_else(|| "-".to_string(), |a| format!("{a:.2}%"));
    let last = match (&h.last_result, h.last_check_ok) {
        (Some(m), Some(true)) => format!("<td class=\"ok\">{}</td>", html::escape(m)),
        (Some(m), _) => format!("<td class=\"bad\">{}</td>", html::escape(m)),
        (None, _) => td("not checked yet"),
    };
    vec![
        num(h.id),
        host,
        td_class(word, word),
        since,
        num(avail),
        last,
        num(h.last_check_us.map_or_else(
            || "-".to_string(),
            |us| format!("{:.1} ms", us as f64 / 1000.0),
        )),
        num(format!("{}/{}", h.ups, h.checks)),
        num(h.open),
        num(h.sessions),
        num(html::bytes(h.bytes_out)),
        num(html::bytes(h.bytes_in)),
        num(h.retries),
        failed_connects(h),
    ]
}

/// The failed-connects cell: the count against the host, every reason in its title.
fn failed_connects(h: &HostStatus) -> String {
    let why = h.connect_errors.summary();
    if why.is_empty() {
        return num(h.connect_failures);
    }
    format!(
        "<td class=\"n\" title=\"{}\">{}</td>",
        html::escape(&why),
        h.connect_failures
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RelayStatus;

    fn host(id: u32, port: u16, state: HostState, draining: bool) -> HostStatus {
        HostStatus {
            id,
            name: format!("10.0.0.{id}"),
            addr: std::net::SocketAddr::from(([10, 0, 0, id as u8], port)),
            state,
            draining,
            checks: 0,
            ups: 0,
            failed_in_row: 0,
            retry: 0,
            last_result: None,
            last_check_ok: None,
            last_check_us: None,
            last_check_at_ms: None,
            last_change_at_ms: None,
            local_errors: 0,
            open: 0,
            sessions: 0,
            connect_failures: u64::from(id),
            connect_errors: Default::default(),
            retries: 0,
            bytes_out: 100 * u64::from(id),
            bytes_in: 1000 * u64::from(id),
        }
    }

    fn relay(total: u64, failed: u64) -> RelayStatus {
        RelayStatus {
            id: 1,
            name: "socks".into(),
            listens: Vec::new(),
            disabled: false,
            tables: vec!["pool:1080".into()],
            sessions_open: 0,
            sessions_total: total,
            sessions_failed: failed,
            no_host: 0,
            retries: 0,
            first_byte_timeouts: 0,
            silent_closed: 0,
            rates: Default::default(),
        }
    }

    #[test]
    fn a_sample_sums_relays_and_hosts_and_names_each_host_by_its_table() {
        let s = Status {
            generation: 1,
            pid: 1,
            started_at_ms: 0,
            admission: Default::default(),
            draining: false,
            sessions_open: 0,
            relays: vec![relay(10, 1), relay(5, 0)],
            tables: vec![TableStatus {
                id: 1,
                name: "pool:1080".into(),
                disabled: false,
                check: None,
                interval_ms: 0,
                timeout_ms: 0,
                hosts: vec![
                    host(1, 1080, HostState::Up, false),
                    host(2, 1081, HostState::Up, true),
                    host(3, 1080, HostState::Down, false),
                ],
            }],
            redirects: Vec::new(),
        };
        let got = sample_of(&s);
        assert_eq!(got.sessions, 15);
        assert_eq!(
            got.errors,
            1 + (1 + 2 + 3),
            "failed sessions and failed connects"
        );
        assert_eq!((got.bytes_up, got.bytes_down), (600, 6000));
        let hosts: Vec<(&str, ChartState)> = got
            .hosts
            .iter()
            .map(|h| (h.name.as_str(), h.state))
            .collect();
        assert_eq!(
            hosts,
            vec![
                ("pool:1080 10.0.0.1", ChartState::Up),
                ("pool:1080 10.0.0.2:1081", ChartState::Draining),
                ("pool:1080 10.0.0.3", ChartState::Down),
            ]
        );
    }
}

//! The server's `/metrics` families, read from its counters at scrape time: sessions by
//! version and command, blocks by rule, failures, bytes, UDP, authentication, admission.

use std::fmt;
use std::sync::Arc;

use hasocks_admin::metrics::{by_word, counter, counters, gauge, gauges, Labels};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use crate::admission::AdmissionStatus;
use crate::handle::ServerHandle;
use crate::stats::{StatsSnapshot, COMMANDS, NEGOTIATION_FAILURES, UDP_DROPS, VERSIONS};

type Enc<'a, 'b> = &'a mut DescriptorEncoder<'b>;

/// The collector behind `/metrics`.
pub(super) struct ServerCollector(pub Arc<ServerHandle>);

impl fmt::Debug for ServerCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerCollector")
    }
}

impl Collector for ServerCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let s = self.0.stats().snapshot();
        let e = &mut enc;
        sessions(e, &s)?;
        failures(e, &s)?;
        traffic(e, &s)?;
        let a = self.0.auth_stats();
        counter(
            e,
            "server_auth_successes",
            "Authentications that passed",
            a.successes,
        )?;
        counter(
            e,
            "server_auth_failures",
            "Authentications that failed",
            a.failures,
        )?;
        counter(
            e,
            "server_auth_cache_hits",
            "Authentications answered from the success cache",
            a.cache_hits,
        )?;
        let listeners = self.0.local_addrs().len() as f64;
        gauge(
            e,
            "server_listeners",
            "Addresses the server listens on",
            listeners,
        )?;
        admission(e, &self.0.admission())?;
        super::routes::metrics(e, &self.0.routes())
    }
}

/// (labels, value) for every version and command of a grid.
fn by_kind(grid: &[Vec<u64>]) -> Vec<(Labels, u64)> {
    let mut out = Vec::new();
    for (v, row) in VERSIONS.iter().zip(grid) {
        for (c, n) in COMMANDS.iter().zip(row) {
            let labels = vec![("version", (*v).to_string()), ("command", (*c).to_string())];
            out.push((labels, *n));
        }
    }
    out
}

fn sessions(e: Enc<'_, '_>, s: &StatsSnapshot) -> fmt::Result {
    counter(
        e,
        "server_connections_accepted",
        "Client connections the server accepted",
        s.accepted,
    )?;
    counters(
        e,
        "server_sessions",
        "Requests that passed the rules, by SOCKS version and command",
        None,
        by_kind(&s.sessions_total),
    )?;
    let open = by_kind(&s.sessions_open)
        .into_iter()
        .map(|(l, n)| (l, n as f64));
    gauges(
        e,
        "server_current_sessions",
        "Sessions open now, by SOCKS version and command",
        None,
        open,
    )?;
    let rule = |kind: &'static str, list: &[(u32, u64)]| {
        list.iter()
            .map(move |(r, n)| {
                (
                    vec![("kind", kind.to_string()), ("rule", r.to_string())],
                    *n,
                )
            })
            .collect::<Vec<_>>()
    };
    let mut blocks = rule("client", &s.client_blocks);
    blocks.extend(rule("socks", &s.socks_blocks));
    counters(
        e,
        "server_blocks",
        "Connections and requests blocked, by rule kind and number (0 = no rule matched)",
        None,
        blocks,
    )
}

fn failures(e: Enc<'_, '_>, s: &StatsSnapshot) -> fmt::Result {
    counters(
        e,
        "server_negotiation_failures",
        "Negotiations that failed, by reason",
        None,
        by_word("reason", &NEGOTIATION_FAILURES, &s.negotiation_failures),
    )?;
    let replies = s
        .connect_failures
        .iter()
        .map(|(c, n)| (vec![("reply", format!("{c:02x}"))], *n));
    counters(
        e,
        "server_connect_failures",
        "CONNECTs that failed, by the SOCKS reply code sent",
        None,
        replies,
    )
}

fn traffic(e: Enc<'_, '_>, s: &StatsSnapshot) -> fmt::Result {
    let bytes = Some(Unit::Bytes);
    let ended = "(sessions that ended)";
    for (name, what, v) in [
        ("server_upload", "Bytes from clients to targets", s.bytes_up),
        (
            "server_download",
            "Bytes from targets to clients",
            s.bytes_down,
        ),
    ] {
        counters(
            e,
            name,
            &format!("{what} {ended}"),
            bytes.clone(),
            [(Vec::new(), v)],
        )?;
    }
    let dirs = ["up", "down"];
    counters(
        e,
        "server_udp_datagrams",
        "UDP datagrams relayed (associations that ended), by direction",
        None,
        by_word("direction", &dirs, &[s.udp[0], s.udp[2]]),
    )?;
    counters(
        e,
        "server_udp_payload",
        "UDP payload bytes relayed (associations that ended), by direction",
        bytes,
        by_word("direction", &dirs, &[s.udp[1], s.udp[3]]),
    )?;
    counters(
        e,
        "server_udp_drops",
        "UDP datagrams dropped, by reason",
        None,
        by_word("reason", &UDP_DROPS, &s.udp_drops),
    )
}

/// The connection caps, their use, and what admission refused and evicted.
fn admission(e: Enc<'_, '_>, a: &AdmissionStatus) -> fmt::Result {
    let kinds = ["connections", "negotiating", "negotiating_per_source"];
    let caps = [
        a.caps.total,
        a.caps.negotiating,
        a.caps.negotiating_per_source,
    ]
    .map(f64::from);
    gauges(
        e,
        "server_admission_cap",
        "Connection caps: all connections, negotiating, negotiating from one address (0 = none)",
        None,
        by_word("kind", &kinds, &caps),
    )?;
    let held = [a.connections, a.negotiating].map(f64::from);
    gauges(
        e,
        "server_admission_connections",
        "Connections held now, and of those still negotiating",
        None,
        by_word("kind", &kinds[..2], &held),
    )?;
    counter(
        e,
        "server_admission_refused",
        "Connections closed at once: their address had hasocks.maxconn.negotiating.source negotiating",
        a.refused_per_source,
    )?;
    counter(
        e,
        "server_admission_evicted",
        "Negotiating connections closed, oldest first, to admit new ones at hasocks.maxconn.negotiating",
        a.evicted,
    )?;
    counter(
        e,
        "server_admission_waits",
        "Times the accept loops found hasocks.maxconn connections held and left new ones in the backlog",
        a.waits_at_cap,
    )
}

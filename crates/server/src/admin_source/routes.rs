//! The routes on the admin listener: per route and upstream, its state, sessions, failed
//! attempts by reason and handshake latency, as metrics families and a status page table
//! (`/status.json` carries [`RouteStatus`] as it is).

use std::fmt;

use hasocks_admin::html::{self, num, td};
use hasocks_admin::metrics::{counters, gauges, histograms, state_set, Labels};
use hasocks_admin::{HostSample, HostState};
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use crate::route::{RouteStatus, STATES};

/// The labels of one route: its number and where it goes.
fn labels(r: &RouteStatus) -> Labels {
    vec![("route", r.number.to_string()), ("upstream", r.via.clone())]
}

/// The route families.
pub(super) fn metrics(e: &mut DescriptorEncoder<'_>, routes: &[RouteStatus]) -> fmt::Result {
    gauges(
        e,
        "server_route_state",
        "Each route's upstream state: up, bad (marked by route.maxfail or a failed check), \
         down (the last check failed, the mark expired), unknown (no check yet), direct",
        None,
        routes
            .iter()
            .flat_map(|r| state_set(&labels(r), &STATES, r.state)),
    )?;
    counters(
        e,
        "server_route_sessions",
        "Sessions that went through each route",
        None,
        routes.iter().map(|r| (labels(r), r.sessions)),
    )?;
    counters(
        e,
        "server_route_failures",
        "Attempts through each route's upstream that failed, by reason",
        None,
        routes.iter().flat_map(|r| {
            r.failures.iter().map(move |(why, n)| {
                let mut l = labels(r);
                l.push(("reason", (*why).to_string()));
                (l, *n)
            })
        }),
    )?;
    counters(
        e,
        "server_route_marked_bad",
        "Times each route's upstream was marked bad",
        None,
        routes.iter().map(|r| (labels(r), r.marked)),
    )?;
    histograms(
        e,
        "server_route_handshake",
        "Connect and handshake time through each route's upstream (attempts that succeeded)",
        Some(Unit::Seconds),
        routes.iter().map(|r| (labels(r), r.latency.clone())),
    )
}

/// The status page's routes table.
pub(super) fn section_html(routes: &[RouteStatus]) -> String {
    if routes.is_empty() {
        return String::new();
    }
    let rows: Vec<Vec<String>> = routes
        .iter()
        .map(|r| {
            let failed: u64 = r.failures.iter().map(|(_, n)| n).sum();
            vec![
                td(&format!("#{} (line {})", r.number, r.line)),
                td(&r.condition),
                td(&format!("{} {}", r.via, r.protocol)),
                td(r.state),
                num(r.sessions),
                num(failed),
                num(format!("{:.2}", r.latency_ms)),
                td(&r.last_check),
            ]
        })
        .collect();
    let mut out = String::from("<h2>routes</h2>\n");
    out.push_str(&html::table(
        &[
            "route",
            "matches",
            "via",
            "state",
            "sessions",
            "failed attempts",
            "handshake ms",
            "last check",
        ],
        &rows,
    ));
    out
}

/// The upstreams as the charts' state strips show them.
pub(super) fn hosts(routes: &[RouteStatus]) -> Vec<HostSample> {
    routes
        .iter()
        .filter(|r| r.state != "direct")
        .map(|r| HostSample {
            name: format!("route #{} {}", r.number, r.via),
            state: match r.state {
                "up" => HostState::Up,
                "bad" | "down" => HostState::Down,
                _ => HostState::Unknown,
            },
        })
        .collect()
}

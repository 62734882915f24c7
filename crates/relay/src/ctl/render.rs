//! relayctl's output formats (relayctl.c), for `hasocks ctl` and `hasocks up`: the
//! `show summary|hosts|relays` table, `show sessions`, `monitor` events, and our reload
//! report.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use super::Show;
use crate::events::{Event, EventKind};
use crate::handle::ReloadReport;
use crate::rates::INTERVAL_S;
use crate::status::{HostStatus, RelayStatus, SessionStatus, Status, TableStatus};

/// relayctl's row: `%-4s\t%-8s\t%-24s\t%-7s\t%s`.
fn row(out: &mut String, id: &str, kind: &str, name: &str, avail: &str, status: &str) {
    let _ = writeln!(out, "{id:<4}\t{kind:<8}\t{name:<24}\t{avail:<7}\t{status}");
}

/// `show summary` (relays, their tables and hosts), `show hosts` (tables and hosts with check
/// totals) or `show relays` (relays with session statistics). `Show::Sessions` is
/// [`sessions`].
pub fn status(s: &Status, what: Show) -> String {
    let mut out = String::new();
    row(&mut out, "Id", "Type", "Name", "Avlblty", "Status");
    for r in &s.relays {
        if what != Show::Hosts {
            relay_row(&mut out, r, what == Show::Relays);
        }
        if what == Show::Relays {
            continue;
        }
        for t in r.tables.iter().filter_map(|n| s.table(n)) {
            table_rows(&mut out, t, what == Show::Hosts);
        }
    }
    out
}

fn relay_row(out: &mut String, r: &RelayStatus, stats: bool) {
    let st = if r.disabled { "disabled" } else { "active" };
    row(out, &r.id.to_string(), "relay", &r.name, "", st);
    if stats && r.sessions_total > 0 {
        let p = r.rates;
        let _ = writeln!(out, "\t{:8}\ttotal: {} sessions", "", r.sessions_total);
        let _ = writeln!(
            out,
            "\t{:8}\tlast: {}/{INTERVAL_S}s {}/h {}/d sessions",
            "", p.last, p.last_hour, p.last_day
        );
        let _ = writeln!(
            out,
            "\t{:8}\taverage: {}/{INTERVAL_S}s {}/h {}/d sessions",
            "", p.avg, p.avg_hour, p.avg_day
        );
    }
}

fn table_rows(out: &mut String, t: &TableStatus, totals: bool) {
    let up = t.hosts_up();
    let st = if t.disabled {
        "disabled".to_string()
    } else if up == 0 {
        "empty".to_string()
    } else {
        format!("active ({up} hosts)")
    };
    row(out, &t.id.to_string(), "table", &t.name, "", &st);
    let table_port = t
        .name
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok());
    for h in &t.hosts {
        host_row(out, h, table_port, totals);
    }
}

/// The host's name as relayctl shows it; a host with a port of its own (our extension) is
/// shown as `name:port`, since one name may then stand for several hosts.
pub fn host_name(h: &HostStatus, table_port: Option<u16>) -> String {
    if Some(h.addr.port()) == table_port {
        h.name.clone()
    } else {
        format!("{}:{}", h.name, h.addr.port())
    }
}

fn host_row(out: &mut String, h: &HostStatus, table_port: Option<u16>, totals: bool) {
    let avail = h
        .availability()
        .map(|a| format!("{a:.2}%"))
        .unwrap_or_default();
    row(
        out,
        &h.id.to_string(),
        "host",
        &host_name(h, table_port),
        &avail,
        h.status_word(),
    );
    if totals && h.checks > 0 {
        let mut line = format!("\t{:8}\ttotal: {}/{} checks", "", h.ups, h.checks);
        if h.failed_in_row > 0 {
            let _ = write!(line, ", {} retries", h.failed_in_row);
        }
        if let (Some(err), crate::HostState::Down) = (&h.last_result, h.state) {
            let _ = write!(line, ", error: {err}");
        }
        let _ = writeln!(out, "{line}");
    }
}

/// relayctl's `print_time`: hours (unbounded), minutes, seconds.
fn hms(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
}

/// `show sessions`: `session W:ID CLIENT -> HOST\tRUNNING`, then `\tage, idle, relay, pid`
/// (and, ours, the bytes each way).
pub fn sessions(pid: u32, list: &[SessionStatus]) -> String {
    let mut out = String::new();
    for s in list {
        let _ = writeln!(
            out,
            "session {}:{} {}:{} -> {}:{}\tRUNNING",
            s.worker,
            s.id,
            s.client.ip(),
            s.client.port(),
            s.backend.ip(),
            s.backend.port()
        );
        let _ = writeln!(
            out,
            "\tage {}, idle {}, relay {}, pid {pid}, {} bytes out, {} bytes in",
            hms(s.age_ms),
            hms(s.idle_ms),
            s.relay_id,
            s.bytes_out,
            s.bytes_in
        );
    }
    out
}

/// One `monitor` event in relayctl's layout.
pub fn event(e: &Event) -> String {
    let pid = e.pid;
    let mut out = String::new();
    let at = UNIX_EPOCH + Duration::from_millis(e.at_ms);
    let peer = match &e.kind {
        EventKind::HostStatus { id, .. }
        | EventKind::HostDisable { id, .. }
        | EventKind::HostEnable { id, .. }
        | EventKind::HostDrain { id, .. }
        | EventKind::TableDisable { id, .. }
        | EventKind::TableEnable { id, .. }
        | EventKind::RelayDisable { id, .. }
        | EventKind::RelayEnable { id, .. } => *id,
        EventKind::Reload { .. } => 0,
    };
    let _ = writeln!(
        out,
        "{}: imsg type {} len 0 peerid {peer} pid {pid}",
        e.kind.name(),
        e.kind.code()
    );
    let _ = writeln!(
        out,
        "\ttimestamp: {}, {}",
        net::clock::unix_secs(at),
        net::clock::ctime(at)
    );
    match &e.kind {
        EventKind::HostStatus {
            id, state, table, ..
        } => {
            let _ = writeln!(
                out,
                "\tid: {id}\n\tstate: {}\n\ttable: {table}",
                state.as_str()
            );
        }
        EventKind::HostDisable { id, name }
        | EventKind::HostEnable { id, name }
        | EventKind::HostDrain { id, name }
        | EventKind::TableDisable { id, name }
        | EventKind::TableEnable { id, name }
        | EventKind::RelayDisable { id, name }
        | EventKind::RelayEnable { id, name } => {
            let _ = writeln!(out, "\tid: {id}\n\tname: {name}");
        }
        EventKind::Reload { generation } => {
            let _ = writeln!(out, "\tgeneration: {generation}");
        }
    }
    out
}

/// One line saying what a reload changed.
pub fn reload(r: &ReloadReport) -> String {
    let mut s = format!(
        "generation {}: {} relays, {} tables, {} hosts ({} new, {} removed); listeners: {} kept, {} opened, {} closed",
        r.generation,
        r.relays,
        r.tables,
        r.hosts,
        r.hosts_new,
        r.hosts_removed,
        r.listeners_kept,
        r.listeners_opened,
        r.listeners_closed
    );
    for n in &r.notes {
        let _ = write!(s, "; {n}");
    }
    s
}

//! relayctl's output formats (relayctl.c), for `hasocks ctl` and `hasocks up`: the
//! `show summary|hosts|relays` table, `show sessions`, `monitor` events, and our reload
//! report.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use crate::relay::{Event, EventKind, ReloadReport, INTERVAL_S};
use crate::relay::{HostStatus, RelayStatus, SessionStatus, Status, TableStatus};
use crate::server::{ServerReloadReport, ServerStatus};
use crate::Show;

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
    // relayctl's order: each redirect with its tables and hosts, then each relay with its.
    if matches!(what, Show::Summary | Show::Redirects | Show::Hosts) {
        for r in &s.redirects {
            if what != Show::Hosts {
                row(
                    &mut out,
                    &r.id.to_string(),
                    "redirect",
                    &r.name,
                    "",
                    r.state(),
                );
            }
            for t in r.tables.iter().filter_map(|n| s.table(n)) {
                table_rows(&mut out, t, what == Show::Hosts);
            }
        }
    }
    if what == Show::Redirects {
        return out;
    }
    for r in &s.relays {
        if what != Show::Hosts {
            relay_row(&mut out, r, s.draining, what == Show::Relays);
        }
        if what == Show::Relays {
            continue;
        }
        for t in r.tables.iter().filter_map(|n| s.table(n)) {
            table_rows(&mut out, t, what == Show::Hosts);
        }
    }
    // Ours: what a drain's hook waits on (the open sessions reaching 0).
    if s.draining && what != Show::Hosts {
        let _ = writeln!(out, "draining, {} sessions open", s.sessions_open);
    }
    out
}

fn relay_row(out: &mut String, r: &RelayStatus, draining: bool, stats: bool) {
    let st = match (r.disabled, draining) {
        (true, _) => "disabled",
        (false, true) => "draining",
        (false, false) => "active",
    };
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
        if h.retries_left() > 0 {
            let _ = write!(line, ", {} retries", h.retries_left());
        }
        if let (Some(err), crate::relay::HostState::Down) = (&h.last_result, h.state) {
            let _ = write!(line, ", error: {err}");
        }
        let _ = writeln!(out, "{line}");
    }
    // Ours, below relayctl's lines and only when there is something to say.
    let failed = h.connect_errors.summary();
    if totals && !failed.is_empty() {
        let _ = writeln!(out, "\t{:8}\tfailed connects: {failed}", "");
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
        EventKind::Reload { .. }
        | EventKind::RelayDrain { .. }
        | EventKind::RelayUndrain { .. } => 0,
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
        hasocks_net::clock::unix_secs(at),
        hasocks_net::clock::ctime(at)
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
        EventKind::RelayDrain { sessions_open } | EventKind::RelayUndrain { sessions_open } => {
            let _ = writeln!(out, "\tsessions open: {sessions_open}");
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

/// What `hasocks ctl` prints for a reply, and its exit status (1 when the command failed, as
/// relayctl).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printed {
    /// For stdout.
    pub out: String,
    /// For stderr (the failure's message).
    pub err: String,
    /// The exit status.
    pub code: i32,
}

/// A reply that does not answer the command that was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected answer: {0}")]
pub struct Unexpected(pub String);

/// relayctl's text for the reply `body` to `cmd`.
pub fn reply(cmd: &crate::Command, body: crate::Body) -> Result<Printed, Unexpected> {
    use crate::{Body, Command};
    let ok = |out: String| Printed {
        out,
        err: String::new(),
        code: 0,
    };
    Ok(match (cmd, body) {
        (Command::Show { what }, Body::Status { status }) => ok(self::status(&status, *what)),
        (_, Body::Server { status }) => ok(server(&status)),
        (_, Body::Sessions { pid, sessions }) => ok(self::sessions(pid, &sessions)),
        (Command::Log { .. }, Body::Done { .. }) => ok("logging request sent.\n".into()),
        (_, Body::Done { .. }) => ok("command succeeded\n".into()),
        (_, Body::Reloaded { file, report }) => ok(format!(
            "command succeeded\nreloaded {}: {}\n",
            file.display(),
            reload(&report)
        )),
        (_, Body::ServerReloaded { file, report }) => ok(format!(
            "command succeeded\nreloaded {}: {}\n",
            file.display(),
            server_reload(&report)
        )),
        (_, Body::Error { message, .. }) => Printed {
            out: "command failed\n".into(),
            err: message,
            code: 1,
        },
        (_, other) => return Err(Unexpected(format!("{other:?}"))),
    })
}

/// A server's `show summary`: what it listens on, its sessions and its connection caps.
pub fn server(s: &ServerStatus) -> String {
    let a = &s.admission;
    let mut out = String::new();
    let _ = writeln!(out, "server pid {}, generation {}", s.pid, s.generation);
    for l in &s.listeners {
        let _ = writeln!(out, "listening\t{l}");
    }
    let _ = writeln!(out, "sessions\t{} open", s.sessions_open);
    let _ = writeln!(
        out,
        "connections\t{} of {} held, {} of {} negotiating ({} at most from one address)",
        a.connections,
        a.caps.total,
        a.negotiating,
        a.caps.negotiating,
        a.caps.negotiating_per_source
    );
    let _ = writeln!(
        out,
        "admission\t{} refused per source, {} evicted, {} waits at the cap",
        a.refused_per_source, a.evicted, a.waits_at_cap
    );
    out
}

/// A server's reload report.
pub fn server_reload(r: &ServerReloadReport) -> String {
    format!(
        "generation {}: listeners {} kept, {} opened, {} closed",
        r.generation,
        r.kept,
        r.opened.len(),
        r.closed.len()
    )
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::relay::{ConnectErrors, HostState};

    fn host(id: u32, name: &str, port: u16, state: HostState) -> HostStatus {
        HostStatus {
            id,
            name: name.into(),
            addr: SocketAddr::from(([10, 0, 0, id as u8], port)),
            state,
            draining: false,
            checks: 4,
            ups: 3,
            failed_in_row: 1,
            retry: 2,
            last_result: Some("tcp connect failed".into()),
            last_check_ok: Some(false),
            last_check_us: Some(1_000),
            last_check_at_ms: None,
            last_change_at_ms: None,
            local_errors: 0,
            open: 0,
            sessions: 0,
            connect_failures: 0,
            connect_errors: Default::default(),
            retries: 0,
            bytes_out: 0,
            bytes_in: 0,
        }
    }

    fn fixture() -> Status {
        Status {
            generation: 1,
            pid: 42,
            started_at_ms: 0,
            admission: Default::default(),
            draining: false,
            sessions_open: 0,
            relays: vec![RelayStatus {
                id: 1,
                name: "relaysockd".into(),
                listens: vec![],
                disabled: false,
                tables: vec!["sockdhosts:1080".into()],
                sessions_open: 0,
                sessions_total: 0,
                sessions_failed: 0,
                no_host: 0,
                retries: 0,
                first_byte_timeouts: 0,
                silent_closed: 0,
                rates: Default::default(),
            }],
            tables: vec![TableStatus {
                id: 1,
                name: "sockdhosts:1080".into(),
                disabled: false,
                check: Some("tcp".into()),
                interval_ms: 10_000,
                timeout_ms: 200,
                hosts: vec![
                    host(1, "10.0.0.1", 1080, HostState::Up),
                    host(2, "10.0.0.2", 1090, HostState::Down),
                ],
            }],
            redirects: Vec::new(),
        }
    }

    #[test]
    fn show_redirects_prints_each_redirect_with_its_tables_and_hosts_first() {
        let mut s = fixture();
        s.redirects.push(crate::relay::RedirectStatus {
            id: 7,
            name: "kernel".into(),
            disabled: false,
            listens: vec!["192.0.2.10:1080".into()],
            tables: vec!["sockdhosts:1080".into()],
            active_table: Some("sockdhosts:1080".into()),
        });
        let got = status(&s, Show::Redirects);
        assert!(
            got.contains("7   \tredirect\tkernel                  \t       \tactive\n"),
            "{got}"
        );
        assert!(got.contains("\thost    \t10.0.0.1"), "{got}");
        assert!(!got.contains("\trelay   \t"), "{got}");
        let summary = status(&s, Show::Summary);
        assert!(
            summary.find("redirect") < summary.find("\trelay"),
            "{summary}"
        );
        s.redirects[0].active_table = None;
        assert!(status(&s, Show::Redirects).contains("\tdown\n"));
    }

    #[test]
    fn show_hosts_prints_relayctls_rows_totals_retries_left_and_the_error_of_a_down_host() {
        let want = "\
Id  \tType    \tName                    \tAvlblty\tStatus
1   \ttable   \tsockdhosts:1080         \t       \tactive (1 hosts)
1   \thost    \t10.0.0.1                \t75.00% \tup
\t        \ttotal: 3/4 checks, 1 retries
2   \thost    \t10.0.0.2:1090           \t75.00% \tdown
\t        \ttotal: 3/4 checks, 1 retries, error: tcp connect failed
";
        assert_eq!(status(&fixture(), Show::Hosts), want);
    }

    #[test]
    fn show_hosts_adds_a_line_of_failed_connects_by_reason_only_where_there_are_some() {
        let mut s = fixture();
        s.tables[0].hosts[1].connect_errors = ConnectErrors {
            refused: 2,
            local: 1,
            ..ConnectErrors::default()
        };
        let got = status(&s, Show::Hosts);
        let rows: Vec<&str> = got.lines().collect();
        assert_eq!(rows.len(), 7, "{got}");
        assert_eq!(
            rows[5],
            "\t        \ttotal: 3/4 checks, 1 retries, error: tcp connect failed"
        );
        assert_eq!(rows[6], "\t        \tfailed connects: 2 refused, 1 local");
        assert!(!status(&s, Show::Summary).contains("failed connects"));
    }

    #[test]
    fn show_summary_has_relay_table_and_host_rows_without_totals() {
        let got = status(&fixture(), Show::Summary);
        let rows: Vec<&str> = got.lines().collect();
        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows[1],
            "1   \trelay   \trelaysockd              \t       \tactive"
        );
        assert!(!got.contains("total:"));
    }

    #[test]
    fn show_summary_of_a_draining_relay_says_so_with_its_open_sessions() {
        let mut s = fixture();
        s.draining = true;
        s.sessions_open = 3;
        let got = status(&s, Show::Summary);
        let rows: Vec<&str> = got.lines().collect();
        assert_eq!(
            rows[1],
            "1   \trelay   \trelaysockd              \t       \tdraining"
        );
        assert_eq!(rows.last(), Some(&"draining, 3 sessions open"));
        assert!(!status(&s, Show::Hosts).contains("draining, 3"));
        assert!(!status(&fixture(), Show::Summary).contains("draining"));
    }

    #[test]
    fn relay_drain_events_print_with_the_open_sessions() {
        let e = Event {
            at_ms: 1_700_000_000_000,
            pid: 42,
            kind: EventKind::RelayDrain { sessions_open: 5 },
        };
        assert_eq!(
            event(&e),
            "ctl_relay_drain: imsg type 10 len 0 peerid 0 pid 42\n\
             \ttimestamp: 1700000000, Tue Nov 14 22:13:20 2023\n\
             \tsessions open: 5\n"
        );
    }

    #[test]
    fn sessions_print_age_and_idle_as_hours_minutes_seconds() {
        let s = SessionStatus {
            id: 7,
            worker: 1,
            client: SocketAddr::from(([192, 0, 2, 1], 5555)),
            backend: SocketAddr::from(([10, 0, 0, 1], 1080)),
            relay: "r".into(),
            relay_id: 1,
            host_id: 1,
            age_ms: 3_725_000,
            idle_ms: 61_000,
            bytes_out: 10,
            bytes_in: 20,
        };
        assert_eq!(
            sessions(42, &[s]),
            "session 1:7 192.0.2.1:5555 -> 10.0.0.1:1080\tRUNNING\n\
             \tage 01:02:05, idle 00:01:01, relay 1, pid 42, 10 bytes out, 20 bytes in\n"
        );
    }

    #[test]
    fn a_host_status_event_prints_as_relayctl_monitor() {
        let e = Event {
            at_ms: 1_700_000_000_000,
            pid: 42,
            kind: EventKind::HostStatus {
                id: 3,
                name: "h".into(),
                table: "t:1".into(),
                state: HostState::Up,
            },
        };
        assert_eq!(
            event(&e),
            "host_status: imsg type 1 len 0 peerid 3 pid 42\n\
             \ttimestamp: 1700000000, Tue Nov 14 22:13:20 2023\n\
             \tid: 3\n\tstate: up\n\ttable: t:1\n"
        );
    }
}

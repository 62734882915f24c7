//! The health checker of one table instance of one generation: a round at once, then one
//! every interval (or on `poll`); in a round all hosts are checked concurrently, each bounded
//! by the table's timeout, so a slow host never delays the others. Results go to the hosts'
//! long-lived records, so a reload (which starts new checkers) keeps every state.
//!
//! State rules (relayd's hce.c): hosts start Unknown and take no traffic until checked; one
//! success brings a host up; a host with `retry N` goes down after N+1 failures in a row (until
//! then it keeps its previous state). A local error (ours, not the host's) changes nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::checks::{self, CheckOutcome, Verdict};
use super::{Pool, PoolHost};
use crate::events::{EventKind, Events};
use crate::records::CheckHistory;
use hasocks_ctl_proto::relay::HostState;

/// Extra time on top of the check timeout before a check is abandoned as hung.
const GRACE: Duration = Duration::from_millis(100);

/// What a checker reports to besides the host records.
pub(crate) struct Reporting {
    /// `log host checks` in the generation's config.
    pub log_checks: bool,
    /// `log verbose` from the control socket.
    pub verbose: Arc<AtomicBool>,
    pub events: Arc<Events>,
    pub rendezvous: Arc<checks::Rendezvous>,
}

/// Runs the checks of `table` until `cancel` fires. Returns at once for unchecked tables.
pub(crate) async fn run(table: Arc<Pool>, report: Arc<Reporting>, cancel: CancellationToken) {
    let Some(check) = table.check.clone() else {
        return;
    };
    if table.disabled {
        return;
    }
    let preamble = table.check_preamble();
    loop {
        if !table.record.disabled.load(Ordering::Relaxed) {
            let mut round = JoinSet::new();
            for (i, host) in table.hosts.iter().enumerate() {
                if host.record.disabled.load(Ordering::Relaxed) {
                    continue;
                }
                let (check, name, addr, timeout, preamble, rv) = (
                    check.clone(),
                    host.record.key.name.clone(),
                    host.addr,
                    table.timeout,
                    preamble.clone(),
                    report.rendezvous.clone(),
                );
                round.spawn(async move {
                    let start = Instant::now();
                    let verdict = tokio::time::timeout(
                        timeout + GRACE,
                        checks::run(&check, &name, addr, timeout, &preamble, &rv),
                    )
                    .await
                    .unwrap_or_else(|_| Verdict::Down("interval timeout".to_string()));
                    let took_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
                    (i, CheckOutcome { verdict, took_us })
                });
            }
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    next = round.join_next() => match next {
                        Some(Ok((i, outcome))) => {
                            if let Some(h) = table.hosts.get(i) {
                                apply(&table, h, &outcome, &report);
                            }
                        }
                        Some(Err(_)) => {} // a check task panicked or was aborted: no verdict
                        None => break,
                    },
                }
            }
            table.ready.send_replace(true);
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(table.interval) => {}
            _ = table.poll.notified() => {}
        }
    }
}

/// Records one outcome for `host`, logs it as relayd does and tells the monitors.
fn apply(table: &Pool, host: &PoolHost, o: &CheckOutcome, report: &Reporting) {
    let run_before = host.record.history().local_run;
    let (old, new) = host.record.record_check(o, host.retry);
    let kind = table.check.as_ref().map_or("none", check_name);
    let name = &host.record.key.name;
    if let Verdict::Local(why) = &o.verdict {
        // Once per episode: the first local error of a run, with its cause.
        if run_before == 0 {
            tracing::warn!(
                "host {name}, check {kind}: no verdict, this machine failed: {why}; state stays {} until checks work again",
                new.as_str()
            );
        }
        return;
    }
    if run_before > 0 {
        tracing::info!(
            "host {name}, check {kind}: checks give verdicts again after {run_before} local errors"
        );
    }
    let line = state_line(
        &host.record.key.name,
        kind,
        &host.record.history(),
        old,
        new,
    );
    if old != new {
        tracing::info!("{line}");
        report.events.emit(EventKind::HostStatus {
            id: host.record.id,
            name: host.record.key.name.clone(),
            table: table.name.clone(),
            state: new,
        });
    } else if report.log_checks || report.verbose.load(Ordering::Relaxed) {
        tracing::info!("{line}");
    }
}

/// The check's type word, as relayd logs it.
pub(crate) fn check_name(check: &hasocks_conf::relayd::Check) -> &'static str {
    use hasocks_conf::relayd::Check;
    match check {
        Check::Tcp => "tcp",
        Check::Send { .. } => "send expect",
        Check::Binary { .. } => "binary send expect",
        Check::Script(_) => "script",
        Check::Socks { .. } => "socks",
        Check::SocksGssapi { .. } => "socks gssapi",
    }
}

/// relayd's (hce.c) log line for a check result.
fn state_line(name: &str, kind: &str, h: &CheckHistory, old: HostState, new: HostState) -> String {
    let pct = if h.checks == 0 {
        0.0
    } else {
        h.ups as f64 * 100.0 / h.checks as f64
    };
    format!(
        "host {name}, check {kind} ({}ms,{}), state {} -> {}, availability {pct:.2}%",
        h.last_us.unwrap_or(0) / 1000,
        h.last_result.as_deref().unwrap_or("none"),
        old.as_str(),
        new.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_change_line_has_relayd_format() {
        let h = CheckHistory {
            checks: 2,
            ups: 1,
            last_result: Some("tcp connect failed".into()),
            last_us: Some(12_400),
            ..CheckHistory::default()
        };
        assert_eq!(
            state_line("10.0.0.11", "tcp", &h, HostState::Up, HostState::Down),
            "host 10.0.0.11, check tcp (12ms,tcp connect failed), state up -> down, availability 50.00%"
        );
    }
}

//! The health checker of one table: every interval, all hosts are checked concurrently, each
//! bounded by the table's timeout (so a slow host never delays the others), and every result is
//! published at once as a new immutable snapshot.
//!
//! State rules (relayd's hce.c): hosts start Unknown and take no traffic until checked; one
//! success brings a host up; a host with `retry N` goes down after N+1 failures in a row (until
//! then it keeps its previous state).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::checks::{self, CheckResult};
use crate::status::HostState;
use crate::table::{check_name, Health, HostHealth, TableRt};

/// Extra time on top of the check timeout before a check is abandoned as hung.
const GRACE: Duration = Duration::from_millis(100);

/// Runs the checks of `table` until `cancel` fires. Returns at once for unchecked tables.
pub(crate) async fn run(table: Arc<TableRt>, log_checks: bool, cancel: CancellationToken) {
    let Some(check) = table.check.clone() else {
        return;
    };
    if table.disabled {
        return;
    }
    loop {
        let mut round = JoinSet::new();
        for (i, host) in table.hosts.iter().enumerate() {
            if host.disabled.load(Ordering::Relaxed) {
                continue;
            }
            let (check, name, addr, timeout) =
                (check.clone(), host.name.clone(), host.addr, table.timeout);
            round.spawn(async move {
                let start = Instant::now();
                let res = match tokio::time::timeout(
                    timeout + GRACE,
                    checks::run(&check, &name, addr, timeout),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => Err("interval timeout".to_string()),
                };
                (i, res, start.elapsed())
            });
        }
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                next = round.join_next() => match next {
                    Some(Ok((i, res, took))) => apply(&table, i, res, took, log_checks),
                    Some(Err(_)) => {} // a check task panicked or was aborted: no verdict
                    None => break,
                },
            }
        }
        table.ready.send_replace(true);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(table.interval) => {}
            _ = table.poll.notified() => {}
        }
    }
}

/// Records one check result for host `i` and publishes the new snapshot.
fn apply(table: &TableRt, i: usize, res: CheckResult, took: Duration, log_checks: bool) {
    let Some(host) = table.hosts.get(i) else {
        return;
    };
    // Only this task writes the snapshot, so load-modify-store cannot lose an update.
    let mut next: Health = (**table.health.load()).clone();
    let Some(h) = next.hosts.get_mut(i) else {
        return;
    };
    let old = h.state;
    let ms = took.as_millis() as u64;
    record(h, &res, host.retry, ms);
    let line = state_line(
        &host.name,
        table.check.as_ref().map_or("none", check_name),
        h,
        old,
    );
    let changed = old != h.state;
    table.health.store(Arc::new(next));
    if changed || log_checks {
        tracing::info!("{line}");
    }
}

/// The rise/fall rule: a success brings the host up; a failure takes it down only after
/// `retry + 1` failures in a row, else the host keeps its state.
fn record(h: &mut HostHealth, res: &CheckResult, retry: u32, ms: u64) {
    h.checks += 1;
    match res {
        Ok(_) => {
            h.ups += 1;
            h.failed_in_row = 0;
            h.state = HostState::Up;
        }
        Err(_) => {
            h.failed_in_row = h.failed_in_row.saturating_add(1);
            if h.failed_in_row > retry {
                h.state = HostState::Down;
            }
        }
    }
    h.last_ms = Some(ms);
    h.last_error = Some(match res {
        Ok(m) | Err(m) => m.clone(),
    });
}

/// relayd's (hce.c) log line for a check result.
fn state_line(name: &str, kind: &str, h: &HostHealth, old: HostState) -> String {
    let pct = if h.checks == 0 {
        0.0
    } else {
        h.ups as f64 * 100.0 / h.checks as f64
    };
    format!(
        "host {name}, check {kind} ({}ms,{}), state {} -> {}, availability {pct:.2}%",
        h.last_ms.unwrap_or(0),
        h.last_error.as_deref().unwrap_or("none"),
        old.as_str(),
        h.state.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> HostHealth {
        HostHealth {
            state: HostState::Unknown,
            checks: 0,
            ups: 0,
            failed_in_row: 0,
            last_error: None,
            last_ms: None,
        }
    }

    fn fail() -> CheckResult {
        Err("tcp connect failed".into())
    }

    fn ok() -> CheckResult {
        Ok("tcp connect ok".into())
    }

    #[test]
    fn host_goes_down_after_retry_plus_one_failures_and_up_after_one_success() {
        let mut h = fresh();
        record(&mut h, &fail(), 1, 1);
        assert_eq!(h.state, HostState::Unknown, "first failure tolerated");
        record(&mut h, &fail(), 1, 1);
        assert_eq!(h.state, HostState::Down);
        record(&mut h, &ok(), 1, 1);
        assert_eq!(h.state, HostState::Up);
        record(&mut h, &fail(), 1, 1);
        assert_eq!(h.state, HostState::Up, "one failure tolerated again");
        record(&mut h, &ok(), 1, 1);
        record(&mut h, &fail(), 1, 1);
        assert_eq!(h.state, HostState::Up, "a success reset the count");
        record(&mut h, &fail(), 1, 1);
        assert_eq!(h.state, HostState::Down);
        assert_eq!((h.checks, h.ups), (7, 2));
    }

    #[test]
    fn retry_zero_goes_down_on_first_failure() {
        let mut h = fresh();
        record(&mut h, &ok(), 0, 1);
        record(&mut h, &fail(), 0, 1);
        assert_eq!(h.state, HostState::Down);
    }

    #[test]
    fn state_change_line_has_relayd_format() {
        let mut h = fresh();
        record(&mut h, &ok(), 0, 3);
        record(&mut h, &fail(), 0, 12);
        assert_eq!(
            state_line("10.0.0.11", "tcp", &h, HostState::Up),
            "host 10.0.0.11, check tcp (12ms,tcp connect failed), state up -> down, availability 50.00%"
        );
    }
}

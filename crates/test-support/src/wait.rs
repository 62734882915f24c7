//! Waiting on a condition with a deadline (never a bare sleep as synchronisation).

use std::path::Path;
use std::time::{Duration, Instant};

/// How long any wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Waits until `cond` holds, polling every 10 ms; panics naming `what` after [`DEADLINE`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `cond` holds or `deadline` passes, polling every 20 ms; returns whether it
/// held.
pub async fn wait_for(mut cond: impl FnMut() -> bool, deadline: Duration) -> bool {
    let end = tokio::time::Instant::now() + deadline;
    while tokio::time::Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// [`wait_for`] for tests without a runtime (they drive processes from plain threads).
pub fn wait_blocking(mut cond: impl FnMut() -> bool, deadline: Duration) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Waits (5 s at most) until the file at `path` contains `needle`; returns its text then.
pub async fn wait_for_text(path: &Path, needle: &str) -> String {
    let mut text = String::new();
    wait_for(
        || {
            text = std::fs::read_to_string(path).unwrap_or_default();
            text.contains(needle)
        },
        Duration::from_secs(5),
    )
    .await;
    text
}

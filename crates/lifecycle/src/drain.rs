//! Graceful stop, the same for both daemons: a token that stops the accept loops, trackers
//! that know which sessions still run (one per worker thread, so that threads do not share a
//! counter), and a token that cuts the sessions left at the deadline.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long cut sessions get to end (and log their last line) after the deadline.
const AFTER_CUT: Duration = Duration::from_secs(1);

/// The sessions of a daemon and the tokens that stop them.
#[derive(Clone, Debug)]
pub struct Drain {
    stop: CancellationToken,
    cut: CancellationToken,
    trackers: Vec<TaskTracker>,
}

impl Default for Drain {
    fn default() -> Self {
        Drain::new(1)
    }
}

impl Drain {
    /// A drain with `trackers` session trackers (at least one).
    pub fn new(trackers: usize) -> Drain {
        Drain {
            stop: CancellationToken::new(),
            cut: CancellationToken::new(),
            trackers: (0..trackers.max(1)).map(|_| TaskTracker::new()).collect(),
        }
    }

    /// Fires when the daemon stops accepting (accept loops and checks watch it).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Fires when the sessions still open at the deadline are to be cut.
    pub fn cut_token(&self) -> CancellationToken {
        self.cut.clone()
    }

    /// Tracker `i` (modulo their number), for the sessions of one worker thread.
    pub fn tracker(&self, i: usize) -> TaskTracker {
        self.trackers[i % self.trackers.len()].clone()
    }

    /// Spawns a session on the current runtime, tracked by the first tracker.
    pub fn spawn<F: Future<Output = ()> + Send + 'static>(&self, session: F) {
        self.trackers[0].spawn(session);
    }

    /// Sessions still running.
    pub fn open(&self) -> usize {
        self.trackers.iter().map(TaskTracker::len).sum()
    }

    /// Whether the stop was given.
    pub fn stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    async fn all_ended(&self) {
        for t in &self.trackers {
            t.close();
            t.wait().await;
        }
    }

    /// Stops accepting, waits up to `deadline` for the sessions, then cuts the rest and gives
    /// them a moment to end. Returns how many had to be cut.
    pub async fn drain(&self, deadline: Duration) -> usize {
        self.stop.cancel();
        if tokio::time::timeout(deadline, self.all_ended())
            .await
            .is_ok()
        {
            return 0;
        }
        let left = self.open();
        tracing::info!("ending {left} sessions still open at the deadline");
        self.cut.cancel();
        let _ = tokio::time::timeout(AFTER_CUT, self.all_ended()).await;
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn drain_waits_for_a_session_that_ends_when_accepting_stops() {
        let d = Drain::new(2);
        let stop = d.stop_token();
        let (tx, rx) = oneshot::channel();
        d.tracker(1).spawn(async move {
            stop.cancelled().await;
            let _ = tx.send(());
        });
        assert_eq!(d.open(), 1);
        assert_eq!(d.drain(Duration::from_secs(5)).await, 0);
        rx.await.unwrap();
        assert_eq!(d.open(), 0);
    }

    #[tokio::test]
    async fn sessions_left_at_the_deadline_are_cut_and_counted() {
        let d = Drain::default();
        let cut = d.cut_token();
        d.spawn(async move { cut.cancelled().await });
        d.spawn(std::future::pending::<()>());
        let left = d.drain(Duration::from_millis(50)).await;
        assert_eq!(left, 2, "both were open at the deadline");
        assert_eq!(d.open(), 1, "the one that ignores the cut is still there");
    }
}

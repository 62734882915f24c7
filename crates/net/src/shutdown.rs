//! Graceful stop: one cancellation token that every task watches, and a tracker that knows
//! which tasks still run.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Cancellation + task tracking for graceful stop (tokio_util CancellationToken + TaskTracker).
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Shutdown {
    /// A fresh, not yet cancelled shutdown handle.
    pub fn new() -> Self {
        Self::default()
    }

    /// The token tasks watch to learn that a stop was requested.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Spawns a tracked task on the current tokio runtime.
    pub fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        self.tracker.spawn(fut);
    }

    /// Tasks still running.
    pub fn active(&self) -> usize {
        self.tracker.len()
    }

    /// Signal stop (token cancelled, tracker closed) and wait for tasks up to `deadline`;
    /// returns tasks left.
    pub async fn drain(&self, deadline: Duration) -> usize {
        self.token.cancel();
        self.tracker.close();
        // A timeout here just means some tasks overran; the count says how many.
        let _ = tokio::time::timeout(deadline, self.tracker.wait()).await;
        self.tracker.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn drain_waits_for_a_task_that_honours_the_token() {
        let sd = Shutdown::new();
        let token = sd.token();
        let (tx, rx) = oneshot::channel();
        sd.spawn(async move {
            token.cancelled().await;
            let _ = tx.send(());
        });
        assert_eq!(sd.active(), 1);
        assert_eq!(sd.drain(Duration::from_secs(10)).await, 0);
        assert!(rx.await.is_ok(), "task ran to its end");
        assert_eq!(sd.active(), 0);
    }

    #[tokio::test]
    async fn drain_reports_a_task_that_overruns() {
        let sd = Shutdown::new();
        let (_keep, never) = oneshot::channel::<()>();
        sd.spawn(async move {
            // Ignores the token: waits for a message that never comes.
            let _ = never.await;
        });
        sd.spawn(async {});
        assert_eq!(sd.drain(Duration::from_millis(50)).await, 1);
        assert!(sd.token().is_cancelled());
    }
}

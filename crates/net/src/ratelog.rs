//! Folding repeated warnings: the first of a run is logged, the rest are counted, and at most
//! one line per interval says how many there were. Lock-free, so it can sit on hot paths
//! (an accept loop out of descriptors, a flood refused at a cap).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often a folded warning may be logged by default.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// One kind of warning (one call site, or one per host or listener).
#[derive(Debug)]
pub struct Folded {
    interval_ms: u64,
    /// `clock::now_ms()` of the last line logged; 0 = never.
    last: AtomicU64,
    /// Occurrences since that line.
    pending: AtomicU64,
}

impl Default for Folded {
    fn default() -> Self {
        Folded::new(INTERVAL)
    }
}

impl Folded {
    /// A warning logged at most once per `interval`.
    pub fn new(interval: Duration) -> Self {
        Folded {
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            last: AtomicU64::new(0),
            pending: AtomicU64::new(0),
        }
    }

    /// Counts one occurrence. Returns `Some(n)` when a line should be logged now, `n` being
    /// how many occurrences it stands for (this one included); None while it is folded.
    pub fn hit(&self) -> Option<u64> {
        self.hit_at(crate::clock::now_ms())
    }

    fn hit_at(&self, now: u64) -> Option<u64> {
        let n = self.pending.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < self.interval_ms {
            return None;
        }
        // One thread wins the right to log; the others keep counting.
        if self
            .last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        let _ = n;
        Some(self.pending.swap(0, Ordering::Relaxed).max(1))
    }

    /// Ends a run: the occurrences not yet logged, if any (for a closing "N more" line), and
    /// the next occurrence logs at once.
    pub fn reset(&self) -> u64 {
        self.last.store(0, Ordering::Relaxed);
        self.pending.swap(0, Ordering::Relaxed)
    }
}

/// " (and N more like it in the last interval)" for a count from [`Folded::hit`], empty for 1.
pub fn more(n: u64) -> String {
    if n > 1 {
        format!(" ({} more like it since the last such line)", n - 1)
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_is_logged_the_rest_are_counted_into_one_line_per_interval() {
        let f = Folded::new(Duration::from_millis(1000));
        assert_eq!(f.hit_at(10), Some(1));
        for t in 11..600 {
            assert_eq!(f.hit_at(t), None, "folded at {t}");
        }
        assert_eq!(
            f.hit_at(1011),
            Some(590),
            "one line counts the folded ones and itself"
        );
        assert_eq!(f.hit_at(1012), None);
        assert_eq!(f.reset(), 1);
        assert_eq!(
            f.hit_at(1013),
            Some(1),
            "after a reset the next one logs at once"
        );
    }

    #[test]
    fn the_count_reads_as_a_suffix() {
        assert_eq!(more(1), "");
        assert_eq!(more(5), " (4 more like it since the last such line)");
    }
}

//! Session rates of a relay, as relayctl's `show relays` prints them: sessions in the last
//! minute, hour and day, and the averages per minute, hour and day since the relay started.
//! A ticker rolls the counts once a minute (relayd's RELAY_STATINTERVAL); nothing is done per
//! session.

use std::collections::VecDeque;
use std::sync::Mutex;

pub use hasocks_ctl_proto::relay::RateStats;

/// Minutes in a day: how many per-minute counts are kept.
const DAY_MINUTES: usize = 24 * 60;

pub use hasocks_ctl_proto::relay::INTERVAL_S;

/// Per-minute session counts of one relay.
#[derive(Debug, Default)]
pub(crate) struct SessionRates {
    ring: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    /// Sessions per finished minute, newest last, at most a day of them.
    minutes: VecDeque<u64>,
    /// The session total at the last tick.
    last_total: u64,
    /// Ticks since the relay started.
    ticks: u64,
}

impl SessionRates {
    /// Ends a minute in which the session total reached `total`.
    pub fn tick(&self, total: u64) {
        let mut r = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let n = total.saturating_sub(r.last_total);
        r.last_total = total;
        r.ticks += 1;
        r.minutes.push_back(n);
        if r.minutes.len() > DAY_MINUTES {
            r.minutes.pop_front();
        }
    }

    /// The figures now, with `total` sessions since start.
    pub fn stats(&self, total: u64) -> RateStats {
        let r = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let sum_last = |n: usize| r.minutes.iter().rev().take(n).sum::<u64>();
        // Averages over the time elapsed, counting the running minute as one.
        let minutes = r.ticks + 1;
        RateStats {
            last: r.minutes.back().copied().unwrap_or(0),
            last_hour: sum_last(60),
            last_day: sum_last(DAY_MINUTES),
            avg: total / minutes,
            avg_hour: total * 60 / minutes.max(60),
            avg_day: total * DAY_MINUTES as u64 / minutes.max(DAY_MINUTES as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_minute_hour_and_day_sum_the_right_ticks() {
        let r = SessionRates::default();
        let mut total = 0;
        for m in 0..(DAY_MINUTES as u64 + 10) {
            total += m % 7;
            r.tick(total);
        }
        let s = r.stats(total);
        let last_day_total: u64 = (10..DAY_MINUTES as u64 + 10).map(|m| m % 7).sum();
        let last_hour_total: u64 = (DAY_MINUTES as u64 - 50..DAY_MINUTES as u64 + 10)
            .map(|m| m % 7)
            .sum();
        assert_eq!(s.last, (DAY_MINUTES as u64 + 9) % 7);
        assert_eq!(s.last_hour, last_hour_total);
        assert_eq!(s.last_day, last_day_total);
    }

    #[test]
    fn before_the_first_tick_only_the_averages_count() {
        let r = SessionRates::default();
        let s = r.stats(12);
        assert_eq!((s.last, s.last_hour, s.avg), (0, 0, 12));
    }
}

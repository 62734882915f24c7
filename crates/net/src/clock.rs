//! Clocks shared by the daemons: a cheap monotonic millisecond count (for "idle since" figures
//! of open sessions) and wall-clock formatting for logs and the control socket.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The process's monotonic epoch: the first time any clock function was called.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since the process epoch, plus one, so that 0 can mean "never".
pub fn now_ms() -> u64 {
    ms_at(Instant::now())
}

/// [`now_ms`] for an instant already read (saves a clock read on hot paths).
pub fn ms_at(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch()).as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// A wait with no practical end: "until the sessions end" (tokio timers take it).
pub const FOREVER: Duration = Duration::from_secs(100 * 365 * 86_400);

/// A grace time for a log line: "up to N s", or "until they end" for [`FOREVER`].
pub fn shown_wait(d: Duration) -> String {
    if d >= FOREVER {
        "until they end".into()
    } else {
        format!("up to {} s", d.as_secs())
    }
}

/// Civil date and time (UTC) of a wall-clock time: (year, month 1-12, day 1-31, weekday
/// 0 = Sunday, seconds of the day, milliseconds).
fn civil(t: SystemTime) -> (i64, u32, u32, u32, u64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    // 1970-01-01 was a Thursday.
    let weekday = ((days + 4) % 7) as u32;
    (year, month, day, weekday, rem, d.subsec_millis())
}

/// An RFC 3339 UTC timestamp with milliseconds: `2023-11-14T22:13:20.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let (year, month, day, _, rem, ms) = civil(t);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
    )
}

/// A UTC time for people: `2023-11-14 22:13:20 UTC`.
pub fn utc(t: SystemTime) -> String {
    let (year, month, day, _, rem, _) = civil(t);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// ctime(3)'s layout in UTC, as relayctl prints event times: `Tue Nov 14 22:13:20 2023`.
pub fn ctime(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day, weekday, rem, _) = civil(t);
    let wd = DAYS.get(weekday as usize).copied().unwrap_or("???");
    let mo = MONTHS
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("???");
    format!(
        "{wd} {mo} {day:2} {:02}:{:02}:{:02} {year}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Seconds since the Unix epoch.
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_is_utc_with_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn ctime_has_the_weekday_and_a_padded_day() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(ctime(t), "Tue Nov 14 22:13:20 2023");
        assert_eq!(ctime(UNIX_EPOCH), "Thu Jan  1 00:00:00 1970");
    }

    #[test]
    fn monotonic_milliseconds_never_read_zero_and_do_not_go_back() {
        let a = now_ms();
        let b = now_ms();
        assert!(a > 0 && b >= a);
    }
}

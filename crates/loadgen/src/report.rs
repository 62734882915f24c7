//! What a load reports: one line of text or one JSON object per run, in the formats the bench
//! scripts parse (`bench/*.sh` read the JSON fields and the UDP line's `key=value` words).

use std::fmt;

use crate::SessionError;

/// Failures of a load: how many, and the first one (its text is the most useful clue).
#[derive(Debug, Default)]
pub struct Errors {
    /// Failed sessions, streams or associations.
    pub count: u64,
    /// The first failure seen.
    pub first: Option<SessionError>,
}

impl Errors {
    /// Counts one failure.
    pub fn add(&mut self, e: SessionError) {
        self.count += 1;
        self.first.get_or_insert(e);
    }

    /// Takes in another worker's failures.
    pub fn merge(&mut self, other: Errors) {
        self.count += other.count;
        if let Some(e) = other.first {
            self.first.get_or_insert(e);
        }
    }
}

/// One run's figures.
#[derive(Debug)]
pub enum Report {
    /// Bulk upload.
    Throughput(Throughput),
    /// Whole sessions per second.
    Sessions(Sessions),
    /// Sessions opened and held.
    Idle(Idle),
    /// UDP datagrams echoed through associations.
    Udp(Udp),
}

/// Bulk upload on a few streams.
#[derive(Debug)]
pub struct Throughput {
    /// The route's label.
    pub via: String,
    /// Streams that opened.
    pub streams: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Bytes moved.
    pub bytes: u64,
    /// Where `bytes` were counted: "received by target" or "written by client".
    pub counted: &'static str,
    /// Failures.
    pub errors: Errors,
}

/// Whole sessions (connect, handshake, CONNECT, echo, close) in a loop.
#[derive(Debug)]
pub struct Sessions {
    /// The route's label.
    pub via: String,
    /// Workers.
    pub concurrency: usize,
    /// Echo bytes per session.
    pub payload: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Sessions that completed.
    pub sessions: u64,
    /// Latency quantiles of a whole session, microseconds: p50, p99, max.
    pub latency_us: [u64; 3],
    /// Failures.
    pub errors: Errors,
}

/// Sessions opened and held.
#[derive(Debug)]
pub struct Idle {
    /// The route's label.
    pub via: String,
    /// Sessions asked for.
    pub requested: usize,
    /// Sessions open.
    pub open: usize,
    /// Seconds it took to open them.
    pub open_seconds: f64,
    /// The soft RLIMIT_NOFILE in force.
    pub nofile_limit: u64,
    /// Failures.
    pub errors: Errors,
}

/// Datagrams echoed through UDP associations.
#[derive(Debug)]
pub struct Udp {
    /// The route's label.
    pub via: String,
    /// Associations asked for.
    pub associations: usize,
    /// Payload bytes per datagram.
    pub size: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Datagrams that came back.
    pub echoes: u64,
    /// Payload bytes that came back.
    pub bytes: u64,
    /// Datagrams sent and never answered.
    pub unanswered: u64,
    /// Failed associations.
    pub errors: Errors,
}

impl Report {
    /// Whether the run did anything at all (the command's exit status).
    pub fn succeeded(&self) -> bool {
        match self {
            Report::Throughput(t) => t.streams > 0,
            Report::Sessions(s) => s.sessions > 0,
            Report::Idle(i) => i.open > 0,
            Report::Udp(u) => u.echoes > 0 && u.errors.count == 0,
        }
    }

    /// The failures of the run.
    pub fn errors(&self) -> &Errors {
        match self {
            Report::Throughput(Throughput { errors, .. })
            | Report::Sessions(Sessions { errors, .. })
            | Report::Idle(Idle { errors, .. })
            | Report::Udp(Udp { errors, .. }) => errors,
        }
    }

    /// One JSON object on one line.
    pub fn json(&self) -> String {
        match self {
            Report::Throughput(t) => {
                let mbs = t.mb_per_s();
                format!(
                    "{{\"mode\":\"throughput\",\"via\":\"{}\",\"direction\":\"upload\",\"streams\":{},\"seconds\":{:.3},\"bytes\":{},\"counted\":\"{}\",\"mb_per_s\":{mbs:.2},\"mbit_per_s\":{:.2},\"errors\":{}}}",
                    t.via, t.streams, t.seconds, t.bytes, t.counted, mbs * 8.0, t.errors.count
                )
            }
            Report::Sessions(s) => {
                let [p50, p99, max] = s.latency_us;
                format!(
                    "{{\"mode\":\"sessions\",\"via\":\"{}\",\"concurrency\":{},\"payload\":{},\"seconds\":{:.3},\"sessions\":{},\"sessions_per_s\":{:.1},\"errors\":{},\"p50_us\":{p50},\"p99_us\":{p99},\"max_us\":{max}}}",
                    s.via, s.concurrency, s.payload, s.seconds, s.sessions, s.rate(), s.errors.count
                )
            }
            Report::Idle(i) => format!(
                "{{\"mode\":\"idle\",\"via\":\"{}\",\"requested\":{},\"open\":{},\"errors\":{},\"open_seconds\":{:.3},\"nofile_limit\":{}}}",
                i.via, i.requested, i.open, i.errors.count, i.open_seconds, i.nofile_limit
            ),
            Report::Udp(u) => format!(
                "{{\"mode\":\"udp\",\"via\":\"{}\",\"associations\":{},\"size\":{},\"seconds\":{:.3},\"echoes\":{},\"dgram_per_s\":{:.0},\"mbit_per_s\":{:.1},\"unanswered\":{},\"failed_associations\":{}}}",
                u.via, u.associations, u.size, u.seconds, u.echoes, u.dgram_per_s(), u.mbit_per_s(), u.unanswered, u.errors.count
            ),
        }
    }
}

impl Throughput {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.seconds / 1e6
    }
}

impl Sessions {
    fn rate(&self) -> f64 {
        self.sessions as f64 / self.seconds
    }
}

impl Udp {
    fn dgram_per_s(&self) -> f64 {
        self.echoes as f64 / self.seconds
    }

    fn mbit_per_s(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.seconds / 1e6
    }
}

/// The human line.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::Throughput(t) => {
                let mbs = t.mb_per_s();
                write!(
                    f,
                    "throughput via {}: {} streams, {:.1} s, upload (client -> target, {}): {mbs:.1} MB/s ({:.0} Mbit/s), errors {}",
                    t.via, t.streams, t.seconds, t.counted, mbs * 8.0, t.errors.count
                )
            }
            Report::Sessions(s) => {
                let [p50, p99, max] = s.latency_us.map(|us| us as f64 / 1000.0);
                write!(
                    f,
                    "sessions via {}: {} workers, {:.1} s: {} sessions ({:.0}/s), errors {}, latency p50 {p50:.3} ms p99 {p99:.3} ms max {max:.3} ms",
                    s.via, s.concurrency, s.seconds, s.sessions, s.rate(), s.errors.count
                )
            }
            Report::Idle(i) => write!(
                f,
                "idle via {}: {} of {} sessions open in {:.1} s, errors {} (RLIMIT_NOFILE {})",
                i.via, i.open, i.requested, i.open_seconds, i.errors.count, i.nofile_limit
            ),
            // The words bench/udp/run.sh reads (`dgram_per_s=`, `mbit_per_s=`, `echoes=`).
            Report::Udp(u) => write!(
                f,
                "assoc={} size={} secs={:.1} echoes={} dgram_per_s={:.0} mbit_per_s={:.1} unanswered={} failed_assoc={}",
                u.associations, u.size, u.seconds, u.echoes, u.dgram_per_s(), u.mbit_per_s(), u.unanswered, u.errors.count
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_report_keeps_the_fields_the_scripts_read() {
        let r = Report::Sessions(Sessions {
            via: "direct".into(),
            concurrency: 2,
            payload: 64,
            seconds: 2.0,
            sessions: 10,
            latency_us: [100, 2000, 3000],
            errors: Errors::default(),
        });
        assert_eq!(
            r.json(),
            "{\"mode\":\"sessions\",\"via\":\"direct\",\"concurrency\":2,\"payload\":64,\"seconds\":2.000,\"sessions\":10,\"sessions_per_s\":5.0,\"errors\":0,\"p50_us\":100,\"p99_us\":2000,\"max_us\":3000}"
        );
        assert!(r
            .to_string()
            .ends_with("p50 0.100 ms p99 2.000 ms max 3.000 ms"));
    }

    #[test]
    fn udp_line_is_key_value_words() {
        let r = Report::Udp(Udp {
            via: "socks5 127.0.0.1:1080".into(),
            associations: 1,
            size: 64,
            seconds: 2.0,
            echoes: 100,
            bytes: 6400,
            unanswered: 3,
            errors: Errors::default(),
        });
        assert_eq!(
            r.to_string(),
            "assoc=1 size=64 secs=2.0 echoes=100 dgram_per_s=50 mbit_per_s=0.0 unanswered=3 failed_assoc=0"
        );
        assert!(r.succeeded());
    }
}

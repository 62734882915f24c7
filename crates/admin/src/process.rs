//! The standard `process_*` metrics (what Prometheus client libraries export), read from
//! /proc at scrape time: open and maximum descriptors, resident and virtual memory, CPU
//! seconds, start time.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use crate::metrics::{counters, gauges};

/// The process's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    /// Descriptors open now.
    pub open_fds: u64,
    /// The soft RLIMIT_NOFILE.
    pub max_fds: Option<u64>,
    /// Resident memory.
    pub resident_bytes: u64,
    /// Virtual memory.
    pub virtual_bytes: u64,
    /// User + system CPU time.
    pub cpu_seconds: f64,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

/// Reads this process's figures; None where /proc cannot be read.
pub fn read() -> Option<ProcessStats> {
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let max_fds = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let page = rustix::param::page_size() as u64;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let mut m = statm.split_whitespace().map(|x| x.parse::<u64>().ok());
    let virtual_bytes = m.next()??.saturating_mul(page);
    let resident_bytes = m.next()??.saturating_mul(page);
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let num = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok());
    // utime, stime and starttime are fields 14, 15 and 22 of stat(5); `rest` starts at 3.
    let cpu_seconds = (num(11)? + num(12)?) as f64 / ticks;
    let started_ticks = num(19)? as f64;
    let btime = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| {
            l.strip_prefix("btime ")
                .and_then(|v| v.trim().parse::<f64>().ok())
        })?;
    Some(ProcessStats {
        open_fds,
        max_fds,
        resident_bytes,
        virtual_bytes,
        cpu_seconds,
        start_time_seconds: btime + started_ticks / ticks,
    })
}

/// Encodes [`read`] as `process_*` metrics.
#[derive(Debug)]
pub(crate) struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let Some(p) = read() else { return Ok(()) };
        let one = |v: f64| [(Vec::new(), v)];
        counters(
            &mut enc,
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            one(p.cpu_seconds),
        )?;
        gauges(
            &mut enc,
            "process_open_fds",
            "Number of open file descriptors",
            None,
            one(p.open_fds as f64),
        )?;
        if let Some(max) = p.max_fds {
            gauges(
                &mut enc,
                "process_max_fds",
                "Maximum number of open file descriptors",
                None,
                one(max as f64),
            )?;
        }
        gauges(
            &mut enc,
            "process_resident_memory",
            "Resident memory size in bytes",
            Some(Unit::Bytes),
            one(p.resident_bytes as f64),
        )?;
        gauges(
            &mut enc,
            "process_virtual_memory",
            "Virtual memory size in bytes",
            Some(Unit::Bytes),
            one(p.virtual_bytes as f64),
        )?;
        gauges(
            &mut enc,
            "process_start_time",
            "Start time of the process since unix epoch in seconds",
            Some(Unit::Seconds),
            one(p.start_time_seconds),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_descriptors_memory_and_a_start_time_in_the_past() {
        let p = read().expect("/proc is readable");
        assert!(p.open_fds >= 3, "{p:?}");
        assert!(p.resident_bytes > 0 && p.virtual_bytes >= p.resident_bytes);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(p.start_time_seconds <= now + 1.0 && p.start_time_seconds > now - 86_400.0 * 365.0);
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(read().unwrap().open_fds > p.open_fds, "one more file open");
        drop(f);
    }
}

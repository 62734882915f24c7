//! `/metrics`: the Prometheus text format (version 0.0.4, what `promtool check metrics`
//! reads), encoded by prometheus-client from collectors that read the daemons' own counters at
//! scrape time; plus helpers so that a collector names each family once.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeCounterValue, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::Source;

/// A sample's labels: (name, value) pairs.
pub type Labels = Vec<(&'static str, String)>;

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Encodes every metric of `source` (under `hasocks_`), the build info and the process
/// metrics (`process_*`).
pub fn encode(source: &dyn Source) -> Result<String, fmt::Error> {
    let mut reg = Registry::default();
    reg.register_collector(Box::new(crate::process::ProcessCollector));
    let ours = reg.sub_registry_with_prefix("hasocks");
    ours.register_collector(Box::new(BuildInfo));
    ours.register_collector(source.collector());
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &reg)?;
    Ok(out)
}

/// `hasocks_build_info{version="..."} 1`.
#[derive(Debug)]
struct BuildInfo;

impl Collector for BuildInfo {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        gauges(
            &mut enc,
            "build_info",
            "The running build: its version, value 1",
            None,
            [(
                vec![("version", env!("CARGO_PKG_VERSION").to_string())],
                1.0,
            )],
        )
    }
}

/// Encodes one family: its descriptor, then each sample with `put`.
fn family<T>(
    enc: &mut DescriptorEncoder<'_>,
    (name, help, unit, kind): (&str, &str, Option<Unit>, MetricType),
    samples: impl IntoIterator<Item = (Labels, T)>,
    mut put: impl FnMut(prometheus_client::encoding::MetricEncoder<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, unit.as_ref(), kind)?;
    for (labels, v) in samples {
        put(m.encode_family(&labels)?, &v)?;
    }
    Ok(())
}

/// A counter family: one sample per label set, of whole (`u64`) or fractional (`f64`, CPU
/// seconds) values. `name` is without `_total` and without the unit (both are appended).
pub fn counters<V: EncodeCounterValue>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    samples: impl IntoIterator<Item = (Labels, V)>,
) -> fmt::Result {
    family(
        enc,
        (name, help, unit, MetricType::Counter),
        samples,
        |mut m, v| m.encode_counter::<NoLabelSet, V, u64>(v, None),
    )
}

/// One counter without labels.
pub fn counter(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> fmt::Result {
    counters(enc, name, help, None, [(Vec::new(), value)])
}

/// A gauge family: one sample per label set.
pub fn gauges(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    samples: impl IntoIterator<Item = (Labels, f64)>,
) -> fmt::Result {
    family(
        enc,
        (name, help, unit, MetricType::Gauge),
        samples,
        |mut m, v| m.encode_gauge(v),
    )
}

/// One gauge without labels.
pub fn gauge(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: f64) -> fmt::Result {
    gauges(enc, name, help, None, [(Vec::new(), value)])
}

/// (labels, value) for each name of `names` with the value at the same place of `values`,
/// under the label `label`: a family indexed by a fixed list of words.
pub fn by_word<T: Copy>(label: &'static str, names: &[&str], values: &[T]) -> Vec<(Labels, T)> {
    names
        .iter()
        .zip(values)
        .map(|(n, v)| (vec![(label, (*n).to_string())], *v))
        .collect()
}

/// A histogram's figures: per-bucket (not cumulative) counts by upper bound, sum and count.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSample {
    /// (upper bound, observations in this bucket only).
    pub buckets: Vec<(f64, u64)>,
    /// Sum of the observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

/// A histogram family: one histogram per label set.
pub fn histograms(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    samples: impl IntoIterator<Item = (Labels, HistogramSample)>,
) -> fmt::Result {
    family(
        enc,
        (name, help, unit, MetricType::Histogram),
        samples,
        |mut m, h| m.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None),
    )
}

/// One series per state, 1 for the current one and 0 for the others (HAProxy's
/// `haproxy_server_status{state=...}` layout), so that `sum()` over states is 1.
pub fn state_set(labels: &Labels, states: &[&'static str], current: &str) -> Vec<(Labels, f64)> {
    states
        .iter()
        .map(|s| {
            let mut l = labels.clone();
            l.push(("state", (*s).to_string()));
            (l, if *s == current { 1.0 } else { 0.0 })
        })
        .collect()
}

/// A histogram updated from many threads without a lock: one atomic add per bucket hit, one
/// for the sum, one for the count.
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    /// One per bound, plus the `+Inf` bucket.
    counts: Vec<std::sync::atomic::AtomicU64>,
    sum_us: std::sync::atomic::AtomicU64,
    count: std::sync::atomic::AtomicU64,
}

/// Upper bounds for session durations, in seconds: from a short request to a day-long
/// control connection.
pub const SESSION_SECONDS: &[f64] = &[
    0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 86_400.0,
];

impl AtomicHistogram {
    /// An empty histogram over `bounds` (ascending, finite).
    pub fn new(bounds: &'static [f64]) -> Self {
        AtomicHistogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| Default::default()).collect(),
            sum_us: Default::default(),
            count: Default::default(),
        }
    }

    /// Records one observation.
    pub fn observe(&self, d: std::time::Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        let s = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Relaxed);
        }
        self.sum_us
            .fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// The figures now.
    pub fn sample(&self) -> HistogramSample {
        use std::sync::atomic::Ordering::Relaxed;
        let buckets = self
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.counts.iter().map(|c| c.load(Relaxed)))
            .collect();
        HistogramSample {
            buckets,
            sum: self.sum_us.load(Relaxed) as f64 / 1e6,
            count: self.count.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = AtomicHistogram::new(&[0.1, 1.0]);
        for ms in [50, 100, 150, 5000] {
            h.observe(Duration::from_millis(ms));
        }
        let s = h.sample();
        assert_eq!(s.buckets, vec![(0.1, 2), (1.0, 1), (f64::INFINITY, 1)]);
        assert_eq!(s.count, 4);
        assert!((s.sum - 5.3).abs() < 1e-9);
    }
}

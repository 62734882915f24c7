//! The status page's charts, drawn here as inline SVG: no script, no external asset, so the
//! page stays one self-refreshing document. Line charts of rates with axis labels and a
//! legend ([`rates`]); one state strip per host, its runs of one state as coloured bars
//! ([`strips`]). Every name that reaches the SVG is escaped.

mod rates;
mod strips;

use std::fmt::Write as _;
use std::time::Duration;

use crate::html::escape;

pub(crate) use rates::rate_charts;
pub(crate) use strips::host_strips;

/// Where time `t` falls on an x axis from `x0` to `x1` that shows `window` up to `end`.
fn x_of(t: Duration, end: Duration, window: Duration, x0: f64, x1: f64) -> f64 {
    let span = window.as_secs_f64().max(f64::MIN_POSITIVE);
    let age = end.saturating_sub(t).as_secs_f64();
    (x1 - age / span * (x1 - x0)).clamp(x0, x1)
}

/// The opening `<svg>`, with a title for screen readers and tooltips.
fn svg_open(key: &str, title: &str, width: f64, height: f64) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" data-chart=\"{k}\" \
         viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" \
         aria-label=\"{t}\"><title>{t}</title>\n",
        k = escape(key),
        t = escape(title)
    )
}

/// The time labels under a plot from `x0` to `x1`, at `y`: the window's start, two thirds
/// and one third of it ago, and now.
fn time_axis(out: &mut String, window: Duration, x0: f64, x1: f64, y: f64) {
    for i in 0..=3u32 {
        let x = x0 + (x1 - x0) * f64::from(i) / 3.0;
        let age = window.mul_f64(f64::from(3 - i) / 3.0);
        let anchor = match i {
            0 => "start",
            3 => "end",
            _ => "middle",
        };
        let _ = writeln!(
            out,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" class=\"axis\">{}</text>",
            ago_label(age)
        );
    }
}

/// The chart's name, shown above its plot at `x`.
fn heading(out: &mut String, x: f64, text: &str) {
    let _ = writeln!(
        out,
        "<text x=\"{x:.1}\" y=\"14\" class=\"heading\" font-weight=\"600\">{}</text>",
        escape(text)
    );
}

/// A legend entry: a swatch of `color` and `text` at (`x`, `y`), in a group with `attrs`.
fn legend(out: &mut String, attrs: &str, x: f64, y: f64, color: &str, text: &str) {
    let _ = writeln!(
        out,
        "<g class=\"legend\"{attrs}><rect x=\"{x:.1}\" y=\"{ry:.1}\" width=\"10\" height=\"10\" \
         fill=\"{c}\"/><text x=\"{tx:.1}\" y=\"{y:.1}\">{t}</text></g>",
        ry = y - 9.0,
        tx = x + 14.0,
        c = escape(color),
        t = escape(text)
    );
}

/// The smallest 1, 2 or 5 times a power of ten at or above `v` (1 for nothing), so that the
/// y axis reads in round figures; for bytes, round in the binary unit the labels use.
fn nice_ceiling(v: f64, unit: Unit) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let mut scale = 1.0;
    if unit == Unit::BytesPerSecond {
        while v / scale >= 1024.0 {
            scale *= 1024.0;
        }
    }
    let v = v / scale;
    let p = 10f64.powf(v.log10().floor());
    let nice = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * p);
    nice * scale
}

/// How a chart's values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// Events per second.
    PerSecond,
    /// Bytes per second, in binary units.
    BytesPerSecond,
}

/// A rate as the axis and legend show it: `0`, `2.5/s`, `1.2k/s`, `3.0 MiB/s`.
fn value_label(v: f64, unit: Unit) -> String {
    let (units, base): (&[&str], f64) = match unit {
        Unit::PerSecond => (&["/s", "k/s", "M/s", "G/s"], 1000.0),
        Unit::BytesPerSecond => (&[" B/s", " KiB/s", " MiB/s", " GiB/s", " TiB/s"], 1024.0),
    };
    if !(v.is_finite() && v > 0.0) {
        return "0".into();
    }
    let mut v = v;
    let mut u = 0;
    while v >= base && u + 1 < units.len() {
        v /= base;
        u += 1;
    }
    let suffix = units.get(u).copied().unwrap_or("");
    // Three figures at most: 512, 19.5, 2.5, 3.
    let n = if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    };
    format!("{}{suffix}", n.strip_suffix(".0").unwrap_or(&n))
}

/// How long ago, for a time axis: `now`, `-250ms`, `-30s`, `-1m30s`, `-5m`.
fn ago_label(d: Duration) -> String {
    let (s, ms) = (d.as_secs(), d.subsec_millis());
    match (s / 60, s % 60) {
        (0, 0) if ms == 0 => "now".into(),
        (0, 0) => format!("-{ms}ms"),
        (0, s) => format!("-{s}s"),
        (m, 0) => format!("-{m}m"),
        (m, s) => format!("-{m}m{s}s"),
    }
}

/// A window's length in words: `15 minutes`, `90 seconds`.
pub(crate) fn span_words(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, 0) => format!("{} ms", d.as_millis()),
        (1, 0) => "1 minute".into(),
        (m, 0) => format!("{m} minutes"),
        _ => format!("{s} seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_y_axis_tops_out_at_a_round_figure() {
        let n = |v| nice_ceiling(v, Unit::PerSecond);
        assert_eq!(n(0.0), 1.0);
        assert_eq!(n(f64::NAN), 1.0);
        assert_eq!(n(0.3), 0.5);
        assert_eq!(n(7.0), 10.0);
        assert_eq!(n(10.0), 10.0);
        assert_eq!(n(130.0), 200.0);
        assert_eq!(n(4100.0), 5000.0);
        let b = |v| nice_ceiling(v, Unit::BytesPerSecond);
        assert_eq!(b(20_000.0), 20.0 * 1024.0, "20 KiB/s, not 20000 B/s");
        assert_eq!(b(3.0 * 1024.0 * 1024.0), 5.0 * 1024.0 * 1024.0);
        assert_eq!(b(900.0), 1000.0);
    }

    #[test]
    fn rates_read_as_people_write_them() {
        assert_eq!(value_label(0.0, Unit::PerSecond), "0");
        assert_eq!(value_label(-3.0, Unit::PerSecond), "0");
        assert_eq!(value_label(2.5, Unit::PerSecond), "2.5/s");
        assert_eq!(value_label(40.0, Unit::PerSecond), "40/s");
        assert_eq!(value_label(1200.0, Unit::PerSecond), "1.2k/s");
        assert_eq!(value_label(20_000.0, Unit::BytesPerSecond), "19.5 KiB/s");
        assert_eq!(value_label(512.0, Unit::BytesPerSecond), "512 B/s");
        assert_eq!(
            value_label(3.0 * 1024.0 * 1024.0, Unit::BytesPerSecond),
            "3 MiB/s"
        );
    }

    #[test]
    fn time_axis_labels_count_back_from_now() {
        assert_eq!(ago_label(Duration::ZERO), "now");
        assert_eq!(ago_label(Duration::from_secs(300)), "-5m");
        assert_eq!(ago_label(Duration::from_secs(90)), "-1m30s");
        assert_eq!(ago_label(Duration::from_secs(30)), "-30s");
        assert_eq!(ago_label(Duration::from_millis(250)), "-250ms");
        assert_eq!(span_words(Duration::from_secs(900)), "15 minutes");
        assert_eq!(span_words(Duration::from_secs(90)), "90 seconds");
        assert_eq!(span_words(Duration::from_secs(60)), "1 minute");
        let mut out = String::new();
        time_axis(&mut out, Duration::from_secs(900), 0.0, 300.0, 10.0);
        for l in ["-15m", "-10m", "-5m", "now"] {
            assert!(out.contains(&format!(">{l}</text>")), "{out}");
        }
    }

    #[test]
    fn the_newest_sample_is_at_the_right_edge_and_older_ones_clamp_left() {
        let (w, end) = (Duration::from_secs(100), Duration::from_secs(500));
        assert_eq!(x_of(end, end, w, 10.0, 110.0), 110.0);
        assert_eq!(x_of(Duration::from_secs(450), end, w, 10.0, 110.0), 60.0);
        assert_eq!(x_of(Duration::from_secs(1), end, w, 10.0, 110.0), 10.0);
        assert_eq!(x_of(end, end, Duration::ZERO, 10.0, 110.0), 110.0);
    }
}

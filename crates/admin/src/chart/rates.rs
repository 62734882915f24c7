//! The rate charts: sessions/s, errors/s and bytes/s over the history's window, each a line
//! per series on a y axis that tops out at a round figure, with time labels under it and a
//! legend giving each series' latest value and peak.

use std::fmt::Write as _;
use std::time::Duration;

use super::{
    heading, legend, nice_ceiling, span_words, svg_open, time_axis, value_label, x_of, Unit,
};
use crate::history::{Counter, History};
use crate::html::escape;

/// Narrow enough for three side by side on a laptop's screen.
const WIDTH: f64 = 460.0;
const HEIGHT: f64 = 180.0;
/// The plot area: room for the heading above, the y labels on the left, the time labels
/// and the legend below.
const X0: f64 = 62.0;
const X1: f64 = 448.0;
const Y0: f64 = 24.0;
const Y1: f64 = 134.0;
/// Where the legend starts, and the width of a legend character (11px sans-serif, wide
/// enough for digits) to place the next entry after it.
const LEGEND_X: f64 = 12.0;
const CHAR_W: f64 = 6.2;

/// One line of a chart.
struct Series {
    key: &'static str,
    label: &'static str,
    color: &'static str,
    points: Vec<(Duration, f64)>,
}

impl Series {
    fn of(
        h: &History,
        c: Counter,
        key: &'static str,
        label: &'static str,
        color: &'static str,
    ) -> Self {
        Series {
            key,
            label,
            color,
            points: h.rates(c),
        }
    }
}

/// The three rate charts of `h`, side by side in a `div`.
pub(crate) fn rate_charts(h: &History) -> String {
    let charts = [
        line_chart(
            h,
            "sessions",
            "sessions/s",
            Unit::PerSecond,
            &[Series::of(
                h,
                Counter::Sessions,
                "sessions",
                "sessions",
                "#1f77b4",
            )],
        ),
        line_chart(
            h,
            "errors",
            "errors/s",
            Unit::PerSecond,
            &[Series::of(
                h,
                Counter::Errors,
                "errors",
                "errors",
                "#d62728",
            )],
        ),
        line_chart(
            h,
            "bytes",
            "bytes/s (up: clients to targets, down: back)",
            Unit::BytesPerSecond,
            &[
                Series::of(h, Counter::BytesUp, "up", "up", "#2ca02c"),
                Series::of(h, Counter::BytesDown, "down", "down", "#9467bd"),
            ],
        ),
    ];
    format!("<div class=\"charts\">\n{}</div>\n", charts.concat())
}

fn line_chart(h: &History, key: &str, title: &str, unit: Unit, series: &[Series]) -> String {
    let (end, window) = (h.latest().unwrap_or_default(), h.window());
    let peak = |s: &Series| s.points.iter().map(|p| p.1).fold(0.0, f64::max);
    let top = nice_ceiling(series.iter().map(peak).fold(0.0, f64::max), unit);
    let mut out = svg_open(
        key,
        &format!("{title}, last {}", span_words(window)),
        WIDTH,
        HEIGHT,
    );
    heading(&mut out, X0, title);
    let _ = writeln!(
        out,
        "<rect class=\"plot\" x=\"{X0}\" y=\"{Y0}\" width=\"{w}\" height=\"{hh}\" \
         fill=\"#fff\" stroke=\"#ccc\"/>",
        w = X1 - X0,
        hh = Y1 - Y0
    );
    // The y axis: 0, half the top and the top, with grid lines.
    for i in 0..=2u32 {
        let y = Y1 - (Y1 - Y0) * f64::from(i) / 2.0;
        if i > 0 {
            let _ = writeln!(
                out,
                "<line x1=\"{X0}\" x2=\"{X1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>"
            );
        }
        let _ = writeln!(
            out,
            "<text x=\"{x:.1}\" y=\"{ty:.1}\" text-anchor=\"end\" class=\"axis\">{}</text>",
            value_label(top * f64::from(i) / 2.0, unit),
            x = X0 - 4.0,
            ty = y + 4.0
        );
    }
    time_axis(&mut out, window, X0, X1, Y1 + 14.0);
    if series.iter().all(|s| s.points.is_empty()) {
        // A rate needs two samples.
        let _ = writeln!(
            out,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"middle\" class=\"axis\">\
             collecting data\u{2026}</text>",
            x = (X0 + X1) / 2.0,
            y = (Y0 + Y1) / 2.0
        );
    }
    for s in series.iter().filter(|s| !s.points.is_empty()) {
        let mut pts = String::with_capacity(s.points.len() * 12);
        for (t, v) in &s.points {
            let x = x_of(*t, end, window, X0, X1);
            let y = Y1 - (v / top).clamp(0.0, 1.0) * (Y1 - Y0);
            let _ = write!(pts, "{x:.1},{y:.1} ");
        }
        let _ = writeln!(
            out,
            "<polyline class=\"series\" data-series=\"{k}\" fill=\"none\" stroke=\"{c}\" \
             stroke-width=\"1.5\" stroke-linejoin=\"round\" points=\"{p}\"/>",
            k = escape(s.key),
            c = escape(s.color),
            p = pts.trim_end()
        );
    }
    let mut x = LEGEND_X;
    for s in series {
        let now = s.points.last().map_or(0.0, |p| p.1);
        let text = format!(
            "{}: {} now, peak {}",
            s.label,
            value_label(now, unit),
            value_label(peak(s), unit)
        );
        let attrs = format!(
            " data-series=\"{}\" data-peak=\"{}\"",
            escape(s.key),
            peak(s)
        );
        legend(&mut out, &attrs, x, HEIGHT - 9.0, s.color, &text);
        x += 30.0 + CHAR_W * text.chars().count() as f64;
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Sample;

    fn history(sessions: &[u64]) -> History {
        let mut h = History::new(Duration::from_secs(1));
        for (i, n) in sessions.iter().enumerate() {
            let s = Sample {
                sessions: *n,
                bytes_down: n * 1000,
                ..Sample::default()
            };
            h.push(Duration::from_secs(i as u64 + 1), s);
        }
        h
    }

    /// The (x, y) pairs of the polyline of `series` in `svg`.
    fn points(svg: &str, series: &str) -> Vec<(f64, f64)> {
        let tag = format!("data-series=\"{series}\" fill=\"none\"");
        let line = svg.lines().find(|l| l.contains(&tag)).unwrap_or("");
        let p = line.split("points=\"").nth(1).unwrap_or("");
        p.split('"')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|xy| {
                let (x, y) = xy.split_once(',')?;
                Some((x.parse().ok()?, y.parse().ok()?))
            })
            .collect()
    }

    #[test]
    fn a_chart_draws_each_rate_as_a_line_with_the_newest_at_the_right() {
        let svg = rate_charts(&history(&[0, 0, 10, 30, 30]));
        let p = points(&svg, "sessions");
        assert_eq!(p.len(), 4, "one point per rate: {svg}");
        assert_eq!(p.last().map(|p| p.0), Some(X1));
        let ys: Vec<f64> = p.iter().map(|p| p.1).collect();
        assert_eq!(
            ys,
            vec![Y1, Y1 - (Y1 - Y0) / 2.0, Y0, Y1],
            "0, 10, 20, 0 of 20"
        );
        assert_eq!(points(&svg, "down").len(), 4);
        assert_eq!(
            points(&svg, "errors").len(),
            4,
            "a flat line is still drawn"
        );
    }

    #[test]
    fn a_chart_has_axis_labels_and_a_legend_with_now_and_peak() {
        let svg = rate_charts(&history(&[0, 0, 10, 30, 30]));
        for label in [
            ">0</text>",
            ">10/s</text>",
            ">20/s</text>",
            ">-15m</text>",
            ">now</text>",
        ] {
            assert!(svg.contains(label), "{label} missing: {svg}");
        }
        assert!(svg.contains("sessions: 0 now, peak 20/s"), "{svg}");
        assert!(svg.contains("data-series=\"sessions\" data-peak=\"20\""));
        assert!(svg.contains("down: 0 now, peak 19.5 KiB/s"), "{svg}");
        assert!(svg.contains("<title>sessions/s, last 15 minutes</title>"));
        assert!(
            svg.contains("font-weight=\"600\">errors/s</text>"),
            "a visible heading"
        );
        assert_eq!(svg.matches("<svg ").count(), 3);
        assert_eq!(svg.matches("</svg>").count(), 3);
    }

    #[test]
    fn a_chart_without_two_samples_says_it_is_collecting_data() {
        let svg = rate_charts(&history(&[5]));
        assert!(!svg.contains("<polyline"));
        assert_eq!(svg.matches("collecting data").count(), 3);
    }

    #[test]
    fn samples_older_than_the_window_are_not_drawn_outside_the_plot() {
        let h = history(&(0..1000u64).map(|i| i * i).collect::<Vec<_>>());
        let svg = rate_charts(&h);
        let p = points(&svg, "sessions");
        assert!(p
            .iter()
            .all(|(x, y)| (X0..=X1).contains(x) && (Y0..=Y1).contains(y)));
        assert!(svg.len() < 64 * 1024, "the page stays small: {}", svg.len());
    }
}

//! The host state strips: one row per host, its name on the left (escaped, shortened, the
//! full name in the tooltip) and its history as bars, one per run of samples in one state,
//! coloured like the page's state cells; the time axis and a legend of the states below.

use std::fmt::Write as _;

use super::{heading, legend, span_words, svg_open, time_axis, x_of};
use crate::history::{History, HostState};
use crate::html::escape;

/// Space for the host names, then the strips (as wide as a rate chart's plot).
const LABEL_W: f64 = 230.0;
const STRIP_W: f64 = 482.0;
const RIGHT: f64 = 12.0;
/// Room for the heading.
const TOP: f64 = 24.0;
const ROW: f64 = 18.0;
const BAR: f64 = 13.0;
/// Below the rows: time labels and the legend.
const FOOT: f64 = 44.0;
/// Characters of a host name shown.
const LABEL_CHARS: usize = 32;
/// Space per legend entry.
const LEGEND_STEP: f64 = 90.0;

fn color(s: HostState) -> &'static str {
    match s {
        HostState::Up => "#4caf50",
        HostState::Down => "#d9534f",
        HostState::Unknown => "#bbbbbb",
        HostState::Disabled => "#777777",
        HostState::Draining => "#f0ad4e",
    }
}

/// `name`, cut to [`LABEL_CHARS`] characters with an ellipsis.
fn shortened(name: &str) -> String {
    if name.chars().count() <= LABEL_CHARS {
        return name.to_string();
    }
    let mut s: String = name.chars().take(LABEL_CHARS - 1).collect();
    s.push('\u{2026}');
    s
}

/// One strip per host of `h`; empty when it has no hosts. A sample's state stands for the
/// interval that ends at it, so a run of samples is a bar from the sample before the run to
/// the run's last sample.
pub(crate) fn host_strips(h: &History) -> String {
    let hosts = h.host_states();
    if hosts.is_empty() {
        return String::new();
    }
    let (end, window, every) = (h.latest().unwrap_or_default(), h.window(), h.interval());
    let (x0, x1) = (LABEL_W, LABEL_W + STRIP_W);
    let rows = ROW * hosts.len() as f64;
    let (width, height) = (x1 + RIGHT, TOP + rows + FOOT);
    let title = format!("host states, last {}", span_words(window));
    let mut out = svg_open("hosts", &title, width, height);
    heading(&mut out, x0, "host states");
    for (i, (name, states)) in hosts.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let n = escape(name);
        let _ = write!(
            out,
            "<g class=\"host\" data-host=\"{n}\"><title>{n}</title>\
             <text x=\"{lx:.1}\" y=\"{ty:.1}\" text-anchor=\"end\">{s}</text>\
             <rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{STRIP_W}\" height=\"{BAR}\" fill=\"#f4f4f4\"/>",
            s = escape(&shortened(name)),
            lx = x0 - 6.0,
            ty = y + BAR - 2.0,
        );
        let mut from = states.first().map_or(end, |f| f.0.saturating_sub(every));
        let mut k = 0;
        while let Some(&(_, state)) = states.get(k) {
            let mut last = k;
            while states.get(last + 1).is_some_and(|s| s.1 == state) {
                last += 1;
            }
            let to = states.get(last).map_or(end, |s| s.0);
            let (a, b) = (
                x_of(from, end, window, x0, x1),
                x_of(to, end, window, x0, x1),
            );
            let _ = write!(
                out,
                "<rect class=\"state-{w}\" x=\"{a:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" \
                 height=\"{BAR}\" fill=\"{c}\"><title>{n}: {w}</title></rect>",
                w = state.as_str(),
                bw = (b - a).max(1.0),
                c = color(state),
            );
            from = to;
            k = last + 1;
        }
        out.push_str("</g>\n");
    }
    time_axis(&mut out, window, x0, x1, TOP + rows + 12.0);
    for (i, s) in HostState::ALL.into_iter().enumerate() {
        let x = x0 + LEGEND_STEP * i as f64;
        legend(&mut out, "", x, height - 9.0, color(s), s.as_str());
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::history::{HostSample, Sample};

    fn history(rows: &[&[(&str, HostState)]]) -> History {
        let mut h = History::new(Duration::from_secs(1));
        for (i, row) in rows.iter().enumerate() {
            let hosts = row
                .iter()
                .map(|(n, s)| HostSample {
                    name: (*n).to_string(),
                    state: *s,
                })
                .collect();
            let s = Sample {
                hosts,
                ..Sample::default()
            };
            h.push(Duration::from_secs(i as u64 + 1), s);
        }
        h
    }

    /// The `<g class="host">` of `name` (as escaped) in `svg`.
    fn row<'a>(svg: &'a str, name: &str) -> &'a str {
        let tag = format!("data-host=\"{name}\"");
        svg.lines().find(|l| l.contains(&tag)).unwrap_or("")
    }

    #[test]
    fn each_host_has_a_strip_with_one_bar_per_run_of_one_state() {
        use HostState::*;
        let svg = host_strips(&history(&[
            &[("a", Up), ("b", Up)],
            &[("a", Up), ("b", Down)],
            &[("a", Up), ("b", Down)],
            &[("a", Up), ("b", Up)],
        ]));
        let (a, b) = (row(&svg, "a"), row(&svg, "b"));
        assert_eq!(a.matches("class=\"state-up\"").count(), 1, "{a}");
        assert!(!a.contains("state-down"));
        assert_eq!(b.matches("class=\"state-up\"").count(), 2, "{b}");
        assert_eq!(b.matches("class=\"state-down\"").count(), 1, "{b}");
        // The runs meet: the down bar spans the two intervals that ended down.
        let unit = STRIP_W / 900.0;
        let down = b.split("class=\"state-down\"").nth(1).unwrap_or("");
        assert!(
            down.contains(&format!("width=\"{:.1}\"", 2.0 * unit)),
            "{down}"
        );
        // And the newest ends at the right edge.
        assert!(a.contains(&format!("x=\"{:.1}\"", LABEL_W + STRIP_W - 4.0 * unit)));
        for w in [
            "up", "down", "unknown", "disabled", "draining", "-15m", "now",
        ] {
            assert!(svg.contains(&format!(">{w}</text>")), "legend or axis {w}");
        }
    }

    #[test]
    fn host_names_are_escaped_in_svg() {
        let evil = "<script>alert('x')</script>&\"";
        let svg = host_strips(&history(&[&[(evil, HostState::Up)]]));
        assert!(!svg.contains("<script"), "{svg}");
        assert!(!svg.contains("alert('x')"));
        assert!(svg.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"));
    }

    #[test]
    fn a_long_host_name_is_shortened_with_the_full_name_in_the_tooltip() {
        let long = "pool:1080 a-very-long-host-name.example.internal:1080";
        let svg = host_strips(&history(&[&[(long, HostState::Draining)]]));
        let r = row(&svg, long);
        assert!(r.contains(&format!("<title>{long}</title>")));
        assert!(r.contains(&format!(">{}</text>", shortened(long))));
        assert_eq!(shortened(long).chars().count(), LABEL_CHARS);
        assert!(r.contains("class=\"state-draining\""));
    }

    #[test]
    fn no_hosts_no_strips() {
        assert_eq!(host_strips(&history(&[&[], &[]])), "");
    }
}

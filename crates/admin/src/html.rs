//! The pieces of the status pages: the document around them (refreshing itself, no
//! JavaScript), escaping, and the ways figures are shown.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often the page reloads itself, in seconds.
pub const REFRESH_S: u32 = 5;

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}\
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.4em 0 .3em}\
h3{font-size:1em;margin:1em 0 .3em;color:#444}\
.meta{color:#666;margin-bottom:1em}\
table{border-collapse:collapse;margin:.3em 0 1em;background:#fff}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;white-space:nowrap}\
th{background:#eee;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.up{background:#c8f0c8}.down{background:#f7c1c1}.unknown{background:#eee}\
.disabled{background:#ddd;color:#666}.draining{background:#fde7a9}\
.bad{color:#a00}.ok{color:#060}\
.charts{display:flex;flex-wrap:wrap;gap:.6em 1.2em}\
svg.chart{background:#fff;border:1px solid #ddd;max-width:100%;height:auto;margin:.3em 0}\
svg.chart text{font:11px system-ui,sans-serif;fill:#333}svg.chart text.axis{fill:#777}";

/// A whole page: `title`, a line under it, then `body` (already HTML).
pub fn page(title: &str, meta: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_S}\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t}</title><style>{STYLE}</style></head>\n<body>\n\
         <h1>{t}</h1>\n<div class=\"meta\">{meta}</div>\n{body}\n</body></html>\n",
        t = escape(title)
    )
}

/// `s` with `& < > " '` escaped, for text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A table: a header row and rows of cells (each cell already HTML, with its `<td ...>`).
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = String::from("<table><tr>");
    for h in head {
        let _ = write!(t, "<th>{}</th>", escape(h));
    }
    t.push_str("</tr>\n");
    for r in rows {
        t.push_str("<tr>");
        for c in r {
            t.push_str(c);
        }
        t.push_str("</tr>\n");
    }
    t.push_str("</table>\n");
    t
}

/// A text cell.
pub fn td(s: &str) -> String {
    format!("<td>{}</td>", escape(s))
}

/// A number cell (right-aligned).
pub fn num(n: impl std::fmt::Display) -> String {
    format!("<td class=\"n\">{n}</td>")
}

/// A cell with a class (a state's colour).
pub fn td_class(class: &str, s: &str) -> String {
    format!("<td class=\"{}\">{}</td>", escape(class), escape(s))
}

/// Bytes as `1.5 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS.get(u).copied().unwrap_or("B"))
    }
}

/// A duration as `3d 4h`, `2h 5m`, `4m 10s` or `12s`.
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// "4m 10s ago" for a time in milliseconds since the epoch.
pub fn ago(at_ms: u64, now: SystemTime) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(at_ms);
    format!("{} ago", age(now.duration_since(at).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_the_page_refreshes_itself_without_scripts() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let p = page("t<", "m", "<p>b</p>");
        assert!(p.contains("<title>t&lt;</title>") && p.contains("http-equiv=\"refresh\""));
        assert!(!p.contains("<script"));
    }

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(age(Duration::from_secs(250)), "4m 10s");
        assert_eq!(age(Duration::from_secs(90_000)), "1d 1h");
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        assert_eq!(ago(1_700_000_000_000, now), "1m 40s ago");
    }
}

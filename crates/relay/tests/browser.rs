//! The status page in a real browser: headless Chromium (Debian's `chromium`) loads the page
//! of a running relay after a short load, with one host up and one killed. The DOM it builds
//! must show both hosts with their states in the tables, the rate charts drawn as inline SVG
//! with data, and the killed host's state strip turning from up to down; a screenshot is kept
//! as a test artifact (target/tmp, not in git).

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use hasocks_relay::HostState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sampling this often, the charts span 18 s instead of 15 min (the product samples every
/// second), so that a short load fills a visible part of them.
const EVERY: Duration = Duration::from_millis(20);
/// How long the load lasts: a few seconds of sessions.
const LOAD: Duration = Duration::from_secs(2);

/// Chromium as the machine's notes say to start it here: headless, no sandbox (root), no
/// background networking (the network is closed), a fresh profile.
async fn chromium(profile: &std::path::Path, args: &[String]) -> std::process::Output {
    tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run chromium")
}

/// One session that moves `n` bytes each way (after the host's id byte).
async fn echo_session(relay: SocketAddr, n: usize) -> Option<u8> {
    let mut s = connect_from(client(1), relay).await.ok()?;
    let mut id = [0u8; 1];
    s.read_exact(&mut id).await.ok()?;
    s.write_all(&vec![7u8; n]).await.ok()?;
    let mut back = vec![0u8; n];
    s.read_exact(&mut back).await.ok()?;
    Some(id[0])
}

/// The page at `admin` once `cond` holds for it; panics naming `what` after [`DEADLINE`].
async fn page_when(admin: SocketAddr, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        let page = http_get(admin, "/").await.map(|r| r.1).unwrap_or_default();
        if cond(&page) {
            return page;
        }
        assert!(tokio::time::Instant::now() < end, "{what}: {page}");
        tokio::time::sleep(EVERY).await;
    }
}

/// The legend's peak of `series` in `html`.
fn peak(html: &str, series: &str) -> f64 {
    let tag = format!("data-series=\"{series}\" data-peak=\"");
    html.split(&tag)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0)
}

/// The y coordinates of the polyline of `series` in `dom`.
fn line_ys(dom: &str, series: &str) -> Vec<f64> {
    let el = dom
        .split("<polyline")
        .find(|e| e.contains(&format!("data-series=\"{series}\"")))
        .unwrap_or_else(|| panic!("no line for {series} in the DOM: {dom}"));
    let points = el
        .split("points=\"")
        .nth(1)
        .and_then(|p| p.split('"').next());
    points
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|xy| xy.split_once(',')?.1.parse().ok())
        .collect()
}

/// The state strip of `host` in `html` (from its group to the next).
fn strip<'a>(html: &'a str, host: &str) -> &'a str {
    let tag = format!("<g class=\"host\" data-host=\"{host}\"");
    let from = html
        .find(&tag)
        .unwrap_or_else(|| panic!("no strip for {host}: {html}"));
    let rest = &html[from..];
    &rest[..rest.find("</g>").unwrap_or(rest.len())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_draws_the_charts_with_data_and_shows_the_killed_host_down() {
    if !tool("chromium") {
        return;
    }
    let mut b = [id_backend(1).await, id_backend(2).await];
    let (h, a) = relay_with_admin_sampling(&[b[0].port(), b[1].port()], EVERY).await;
    let (relay, admin) = (addr_of(&h), a.local_addr());
    let hosts = b
        .each_ref()
        .map(|b| format!("pool:1 127.0.0.1:{}", b.port()));

    // A short load: sessions one after another for a few seconds.
    let end = tokio::time::Instant::now() + LOAD;
    while tokio::time::Instant::now() < end {
        echo_session(relay, 4096).await.expect("session");
    }
    page_when(admin, "the load in the charts", |p| {
        peak(p, "sessions") > 0.0 && peak(p, "up") > 0.0 && peak(p, "down") > 0.0
    })
    .await;

    // Kill host 2: round robin still tries it until the check notices (failed connects,
    // retried on host 1: errors), then the check marks it down and its strip follows.
    b[1].stop().await;
    for _ in 0..4 {
        assert_eq!(echo_session(relay, 10).await, Some(1));
    }
    h.poll();
    wait_until("the killed host down", || {
        h.snapshot().tables[0].hosts[1].state == HostState::Down
    })
    .await;
    page_when(admin, "the killed host's strip down", |p| {
        p.contains("data-host") && strip(p, &hosts[1]).contains("state-down")
    })
    .await;

    let url = format!("http://{admin}/");
    let profile = temp_dir("chromium-profile");
    let dom = chromium(&profile, &["--dump-dom".into(), url.clone()]).await;
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();

    // The tables, as before the charts.
    for (port, state) in [(b[0].port(), "up"), (b[1].port(), "down")] {
        let cell = format!("<td>127.0.0.1:{port}</td>");
        let row = dom
            .split("<tr>")
            .find(|r| r.contains(&cell))
            .unwrap_or_else(|| panic!("no row for host {port} in the DOM: {dom}"));
        assert!(
            row.contains(&format!("<td class=\"{state}\">{state}</td>")),
            "host {port} is not shown {state}: {row}"
        );
    }
    // The charts: inline SVG, no script, each rate a line that is not flat at zero.
    assert!(!dom.contains("<script"), "no script on the page");
    for chart in ["sessions", "errors", "bytes", "hosts"] {
        assert!(
            dom.contains(&format!(
                "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" data-chart=\"{chart}\""
            )),
            "no {chart} chart in the DOM: {dom}"
        );
    }
    for series in ["sessions", "errors", "up", "down"] {
        let ys = line_ys(&dom, series);
        assert!(ys.len() >= 2, "{series}: {ys:?}");
        let baseline = ys.iter().copied().fold(f64::MIN, f64::max);
        assert!(
            ys.iter().any(|y| *y < baseline),
            "{series} is drawn flat: {ys:?}"
        );
        assert!(peak(&dom, series) > 0.0, "{series} has no peak");
    }
    // The strips: host 1 up all along, host 2 up, then down.
    let (one, two) = (strip(&dom, &hosts[0]), strip(&dom, &hosts[1]));
    assert!(
        one.contains("state-up") && !one.contains("state-down"),
        "{one}"
    );
    assert!(
        two.contains("state-up") && two.contains("state-down"),
        "{two}"
    );
    let (up, down) = (
        two.find("state-up").unwrap_or(usize::MAX),
        two.find("state-down").unwrap_or(0),
    );
    assert!(up < down, "up first, then down: {two}");

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("relay-status-page.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &profile,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1480,900".into(),
            url,
        ],
    )
    .await;
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    eprintln!("screenshot: {}", shot.display());
    let _ = std::fs::remove_dir_all(&profile);
    tokio::time::timeout(Duration::from_secs(5), h.shutdown(Duration::from_secs(1)))
        .await
        .ok();
}

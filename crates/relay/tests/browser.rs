//! The status page in a real browser: headless Chromium (Debian's `chromium`) loads the page
//! of a running relay with one host up and one killed; the DOM it builds must show both hosts
//! with their states, and a screenshot is kept as a test artifact (target/tmp, not in git).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use relay::HostState;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_one_host_up_and_the_killed_one_down() {
    if !tool("chromium") {
        return;
    }
    let mut b = [id_backend(1).await, id_backend(2).await];
    let (h, a) = relay_with_admin(&[b[0].port(), b[1].port()]).await;
    for _ in 0..3 {
        session_from(client(1), addr_of(&h)).await.expect("session");
    }
    b[1].stop().await;
    h.poll();
    wait_until("the killed host down", || {
        h.snapshot().tables[0].hosts[1].state == HostState::Down
    })
    .await;
    let url = format!("http://{}/", a.local_addr());
    let profile = temp_dir("chromium-profile");

    let dom = chromium(&profile, &["--dump-dom".into(), url.clone()]).await;
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
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

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("relay-status-page.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &profile,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1500,700".into(),
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

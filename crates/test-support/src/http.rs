//! A bare HTTP/1.0 GET for tests of the admin listener (the product serves HTTP with hyper;
//! the tests read it with the fewest bytes that can fail).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// GETs `path` from `addr`: (status code, body); None if the server did not answer.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let run = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut all = Vec::new();
        s.read_to_end(&mut all).await.ok()?;
        let text = String::from_utf8_lossy(&all).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        let code = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((code, body.to_string()))
    };
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .ok()?
}

/// The value of the sample `series` (name with labels, as printed) in a Prometheus text
/// scrape.
pub fn metric(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// Whether a tool is on PATH; when it is not, a test that needs it is skipped with a printed
/// reason unless `HASOCKS_REQUIRE_TOOLS` is set (CI sets it, so there it fails instead).
pub fn tool(name: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    if !found {
        assert!(
            std::env::var_os("HASOCKS_REQUIRE_TOOLS").is_none(),
            "{name} is not installed (HASOCKS_REQUIRE_TOOLS is set)"
        );
        eprintln!("skipped: {name} is not installed");
    }
    found
}

/// Asserts that `promtool check metrics` accepts `scrape` (no errors, no lint warnings);
/// skipped as [`tool`] says when promtool is not installed.
pub fn assert_promtool_accepts(scrape: &str, what: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    if !tool("promtool") {
        return;
    }
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    p.stdin
        .take()
        .expect("stdin")
        .write_all(scrape.as_bytes())
        .expect("write to promtool");
    let out = p.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool on {what}: {}{}\n{scrape}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

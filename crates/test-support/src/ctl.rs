//! A relay's control socket as the tests read it: `hasocks ctl --json show hosts`.

use std::path::Path;
use std::process::Command;

/// The hosts of the first table of the relay at `socket` (the JSON objects of `hasocks ctl
/// --json show hosts`, run with the binary `bin`); empty when the relay does not answer.
pub fn hosts(bin: &str, socket: &Path) -> Vec<serde_json::Value> {
    let Ok(out) = Command::new(bin)
        .args(["ctl", "--json", "-s"])
        .arg(socket)
        .args(["show", "hosts"])
        .output()
    else {
        return Vec::new();
    };
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    j["status"]["tables"][0]["hosts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The `state` of each host of [`hosts`].
pub fn host_states(bin: &str, socket: &Path) -> Vec<String> {
    hosts(bin, socket)
        .iter()
        .map(|h| h["state"].as_str().unwrap_or_default().to_string())
        .collect()
}

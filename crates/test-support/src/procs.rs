//! Processes a test did not start itself (successors that a daemon starts on SIGUSR2): found
//! by an argument they were started with, signalled and ended by pid.

/// Live processes (zombies excluded) whose command line has `arg` among its arguments.
pub fn live_with_arg(arg: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if !cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes()) {
            continue;
        }
        let zombie = std::fs::read_to_string(e.path().join("stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.starts_with('Z')))
            .unwrap_or(true);
        if !zombie {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// Sends `sig` to `pid` (errors ignored: it may have exited).
pub fn signal(pid: i32, sig: i32) {
    let _ = std::process::Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status();
}

/// Kills (SIGKILL) every live process started with `arg`, when dropped: successors a test
/// could not reap itself never outlive it.
pub struct KillOnDrop(pub String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in live_with_arg(&self.0) {
            signal(pid, 9);
        }
    }
}

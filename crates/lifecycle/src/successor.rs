//! SIGUSR2: starting the successor of a binary upgrade. It takes over through the control
//! socket (`--upgrade`); this process goes on serving until it does.

use std::io;

/// Starts the binary now installed at this process's path, with this process's arguments
/// plus `--upgrade`.
pub fn spawn() -> io::Result<std::process::Child> {
    let exe = std::env::current_exe()?;
    // /proc/self/exe names the replaced file "(deleted)"; the new one is at the old path.
    let exe = match exe.to_str().and_then(|p| p.strip_suffix(" (deleted)")) {
        Some(p) => std::path::PathBuf::from(p),
        None => exe,
    };
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if !args.iter().any(|a| a == "--upgrade") {
        args.push("--upgrade".into());
    }
    // WATCHDOG_PID names this process; the successor, once the main process, pings itself.
    std::process::Command::new(exe)
        .args(args)
        .env_remove("WATCHDOG_PID")
        .spawn()
}

/// [`spawn`], logging what happens (`kind`: "relay", "server").
pub fn start(kind: &str) {
    match spawn() {
        Ok(mut child) => {
            tracing::info!(
                "SIGUSR2: started the new binary (pid {}) to take over",
                child.id()
            );
            let kind = kind.to_string();
            std::thread::spawn(move || {
                if let Ok(st) = child.wait() {
                    if !st.success() {
                        tracing::error!(
                            "the new binary exited with {st}; this {kind} goes on serving unless it took over"
                        );
                    }
                }
            });
        }
        Err(e) => tracing::error!("SIGUSR2: cannot start the new binary: {e}"),
    }
}

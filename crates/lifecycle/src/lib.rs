//! One daemon skeleton for both `hasocks server` and `hasocks relay`: signals, binary upgrade
//! (the listening sockets handed over with SCM_RIGHTS), systemd (notify, watchdog, socket
//! activation), the control socket and its listener, the admin listener's start and stop,
//! and the drain at the end. A daemon implements [`Daemon`] (reload, execute a command, stop
//! accepting, hand over, shut down, status); [`run`] does the rest, the same for both.
//!
//! Data flow: the CLI's options -> [`Options`] + the daemon's config -> [`Plan`] -> [`run`]
//! -> signals and control commands -> the daemon's methods -> [`Drain`] at the end.
#![forbid(unsafe_code)]

pub mod control;
mod daemon;
pub mod drain;
pub mod handover;
mod options;
pub mod successor;
pub mod systemd;

pub use daemon::{run, Daemon, Handover, Plan, RunError};
pub use drain::Drain;
pub use handover::HandoverError;
pub use options::Options;

/// Operator diagnostics (start-up, reload, shutdown) go to stderr; `RUST_LOG` tunes them.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Resolves at SIGTERM or SIGINT (never, if the handlers cannot be installed: then the
/// default action ends the process anyway).
pub async fn stop_requested() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

//! `hasocks relay`: run (or, with -n, only check) a relayd.conf.

use std::path::PathBuf;
use std::time::Duration;

use relay::RelayHandle;
use tokio::signal::unix::{signal, SignalKind};

/// Options of `hasocks relay`.
#[derive(clap::Args)]
pub struct RelayArgs {
    /// The relayd.conf to run.
    #[arg(short = 'f', long = "config", default_value = "/etc/relayd.conf")]
    pub file: PathBuf,
    /// Only check the config and exit (0 = valid), like `relayd -n`.
    #[arg(short = 'n', long = "check-only")]
    pub check_only: bool,
    /// Define or override a macro, like `relayd -D name=value` (repeatable).
    #[arg(short = 'D', value_name = "NAME=VALUE")]
    pub defines: Vec<String>,
    /// Seconds to let sessions finish after SIGTERM/SIGINT before cutting them.
    #[arg(long, default_value_t = 10)]
    pub grace: u64,
}

/// Parses `-D name=value` arguments.
pub fn parse_defines(defines: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    defines
        .iter()
        .map(|d| match d.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => anyhow::bail!("-D {d}: expected name=value"),
        })
        .collect()
}

/// Loads a relayd.conf and prints its warnings.
pub fn load(
    file: &std::path::Path,
    defines: &[(String, String)],
) -> anyhow::Result<conf::relayd::RelaydConfig> {
    let cfg = conf::relayd::load(file, defines).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &cfg.warnings {
        eprintln!("hasocks: warning: {w}");
    }
    Ok(cfg)
}

/// Runs the relay until SIGTERM/SIGINT.
pub async fn run(args: RelayArgs) -> anyhow::Result<i32> {
    let defines = parse_defines(&args.defines)?;
    let cfg = load(&args.file, &defines)?;
    if args.check_only {
        println!("{}: configuration OK", args.file.display());
        return Ok(0);
    }
    let _ = net::sock::raise_nofile_limit();
    let handle = RelayHandle::start(cfg)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    for (name, addr) in handle.listen_addrs() {
        tracing::info!("relay {name} listening on {addr}");
    }
    wait_for_stop().await?;
    tracing::info!(
        "stopping: no new sessions; waiting up to {} s for open ones",
        args.grace
    );
    handle.shutdown(Duration::from_secs(args.grace)).await;
    Ok(0)
}

/// Waits for SIGTERM or SIGINT.
pub async fn wait_for_stop() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

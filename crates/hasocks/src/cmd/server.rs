//! `hasocks server`: run (or, with -V, only check) a sockd.conf.

use std::path::PathBuf;
use std::time::Duration;

use server::{Level, ServerHandle};
use tokio::signal::unix::{signal, SignalKind};

/// Options of `hasocks server`.
#[derive(clap::Args)]
pub struct ServerArgs {
    /// The sockd.conf to run.
    #[arg(short = 'f', long = "config", default_value = "/etc/sockd.conf")]
    pub file: PathBuf,
    /// Only check the config and exit (0 = valid), like `sockd -V`.
    #[arg(short = 'V', long = "verify")]
    pub verify: bool,
    /// Seconds to let sessions finish after SIGTERM/SIGINT before cutting them.
    #[arg(long, default_value_t = 10)]
    pub grace: u64,
}

fn load(file: &std::path::Path) -> anyhow::Result<conf::sockd::SockdConfig> {
    let cfg = conf::sockd::load(file).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &cfg.warnings {
        eprintln!("hasocks: warning: {w}");
    }
    Ok(cfg)
}

/// Runs the server until SIGTERM/SIGINT; SIGHUP reloads the config and reopens logs.
pub async fn run(args: ServerArgs) -> anyhow::Result<i32> {
    let cfg = load(&args.file)?;
    if args.verify {
        println!("{}: configuration OK", args.file.display());
        return Ok(0);
    }
    let _ = net::sock::raise_nofile_limit();
    let unprivileged = cfg.user_unprivileged.clone();
    server::privs::start_auth_helper(unprivileged.as_deref()).map_err(anyhow::Error::msg)?;
    let handle = ServerHandle::start(cfg)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    if let Some(user) = unprivileged {
        match server::privs::drop_to(&user) {
            Ok(true) => tracing::info!("dropped privileges to {user}"),
            Ok(false) => {}
            Err(e) => anyhow::bail!("{e}"),
        }
    }
    for a in handle.local_addrs() {
        tracing::info!("listening on {a}");
    }
    handle.log(
        Level::Info,
        &format!(
            "hasocks server started, listening on {:?}",
            handle.local_addrs()
        ),
    );

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => reload(&handle, &args.file).await,
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!(
        "stopping: no new sessions; {} open, waiting up to {} s",
        handle.active_sessions(),
        args.grace
    );
    handle.log(Level::Info, "shutting down");
    let cut = handle.shutdown(Duration::from_secs(args.grace)).await;
    if cut > 0 {
        tracing::warn!("{cut} sessions were still open at the deadline and were closed");
    }
    Ok(0)
}

async fn reload(handle: &ServerHandle, file: &std::path::Path) {
    for p in handle.reopen_logs() {
        tracing::warn!("{p}");
    }
    match conf::sockd::load(file) {
        Err(e) => {
            tracing::error!("reload refused, keeping the running config: {e}");
            handle.log(
                Level::Error,
                &format!("reload refused, keeping the running config: {e}"),
            );
        }
        Ok(cfg) => match handle.reload(cfg).await {
            Ok(notes) => {
                for n in notes {
                    tracing::warn!("{n}");
                }
                tracing::info!("reloaded {}", file.display());
                handle.log(Level::Info, &format!("reloaded {}", file.display()));
            }
            Err(e) => {
                tracing::error!("reload refused, keeping the running config: {e}");
                handle.log(
                    Level::Error,
                    &format!("reload refused, keeping the running config: {e}"),
                );
            }
        },
    }
}

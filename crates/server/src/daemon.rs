//! `hasocks server` as a daemon: start from a file, drop privileges, reload on SIGHUP (logs
//! reopened, config re-read; a broken file is refused and the running config stays), stop on
//! SIGTERM/SIGINT after letting sessions finish.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use crate::logger::Level;
use crate::server::{ServerHandle, StartError};

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonOpts {
    /// The sockd.conf.
    pub file: PathBuf,
    /// How long open sessions may take to finish at a stop.
    pub grace: Duration,
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The config was refused or the server could not start.
    #[error("{}", start_message(.file, .source))]
    Start {
        /// The config file.
        file: PathBuf,
        /// Why.
        source: StartError,
    },
    /// Privileges could not be dropped.
    #[error("{0}")]
    Privileges(String),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signal(io::Error),
    /// The admin listener could not be started.
    #[error(transparent)]
    Admin(#[from] admin::AdminError),
}

/// A config error names its own file, line and column; other start errors get the file.
fn start_message(file: &Path, e: &StartError) -> String {
    match e {
        StartError::Config(c) => c.to_string(),
        _ => format!("{}: {e}", file.display()),
    }
}

/// Reads and parses a sockd.conf, logging its warnings.
pub fn load(file: &Path) -> Result<conf::sockd::SockdConfig, StartError> {
    let cfg = conf::sockd::load(file)?;
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    Ok(cfg)
}

/// Runs the server until SIGTERM or SIGINT.
pub async fn run(opts: DaemonOpts) -> Result<(), DaemonError> {
    let start_err = |source| DaemonError::Start {
        file: opts.file.clone(),
        source,
    };
    let cfg = load(&opts.file).map_err(start_err)?;
    if let Err(e) = net::sock::raise_nofile_limit() {
        tracing::warn!("cannot raise the open-file limit: {e}");
    }
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
    let unprivileged = cfg.user_unprivileged.clone();
    let admin_at = match &cfg.admin {
        Some(a) => Some(
            crate::runtime::resolve_host(&a.host)
                .ok()
                .and_then(|ips| ips.first().copied())
                .map(|ip| std::net::SocketAddr::new(ip, a.port))
                .ok_or_else(|| {
                    start_err(StartError::Setup(format!(
                        "hasocks.admin: {} does not resolve",
                        a.host
                    )))
                })?,
        ),
        None => None,
    };
    // Before the listeners and before the drop: the root helper that checks passwords.
    crate::privs::start_auth_helper(unprivileged.as_deref()).map_err(DaemonError::Privileges)?;
    let handle = Arc::new(ServerHandle::start(cfg).await.map_err(start_err)?);
    // Bound as root (before the drop), like the listeners.
    let _admin = match admin_at {
        Some(addr) => {
            let source = Arc::new(crate::admin_source::ServerAdmin::new(handle.clone()));
            let a = admin::start(addr, source, admin::Limits::default())?;
            tracing::info!("admin listener on http://{}/", a.local_addr());
            Some(a)
        }
        None => None,
    };
    if let Some(user) = unprivileged {
        match crate::privs::drop_to(&user) {
            Ok(true) => tracing::info!("dropped privileges to {user}"),
            Ok(false) => {}
            Err(e) => return Err(DaemonError::Privileges(e)),
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
    loop {
        tokio::select! {
            _ = hup.recv() => reload(&handle, &opts.file).await,
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!(
        "stopping: no new sessions; {} open, waiting up to {} s",
        handle.active_sessions(),
        opts.grace.as_secs()
    );
    handle.log(Level::Info, "shutting down");
    let cut = handle.shutdown(opts.grace).await;
    if cut > 0 {
        tracing::warn!("{cut} sessions were still open at the deadline and were closed");
    }
    Ok(())
}

/// SIGHUP: reopen the log files, then re-read the config; a broken file (or a new address
/// that cannot be bound) is refused and the running config stays.
pub async fn reload(handle: &ServerHandle, file: &Path) {
    for p in handle.reopen_logs() {
        tracing::warn!("{p}");
    }
    let path = file.to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || load(&path))
        .await
        .unwrap_or_else(|e| Err(StartError::Setup(format!("reading the config: {e}"))));
    let result = match loaded {
        Ok(cfg) => handle.reload(cfg).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(r) => {
            let msg = format!(
                "reloaded {}: listeners {} kept, {} opened {:?}, {} closed {:?}",
                file.display(),
                r.kept,
                r.opened.len(),
                r.opened,
                r.closed.len(),
                r.closed
            );
            tracing::info!("{msg}");
            handle.log(Level::Info, &msg);
        }
        Err(e) => {
            let msg = format!("reload refused, keeping the running config: {e}");
            tracing::error!("{msg}");
            handle.log(Level::Error, &msg);
        }
    }
}

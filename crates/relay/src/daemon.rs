//! `hasocks relay` as a daemon: start from a file, open the control socket, reload on SIGHUP,
//! stop on SIGTERM/SIGINT after letting sessions finish.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

use crate::ctl::{self, BindError, Controller, DEFAULT_SOCKET};
use crate::error::RelayError;
use crate::handle::RelayHandle;

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonOpts {
    /// The relayd.conf.
    pub file: PathBuf,
    /// `-D name=value` macro overrides.
    pub defines: Vec<(String, String)>,
    /// How long open sessions may take to finish at a stop.
    pub grace: Duration,
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The config was refused or the relay could not start.
    #[error(transparent)]
    Start(#[from] RelayError),
    /// The configured control socket could not be opened.
    #[error(transparent)]
    Socket(#[from] BindError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signal(io::Error),
    /// The admin listener could not be started.
    #[error(transparent)]
    Admin(#[from] admin::AdminError),
}

/// Runs the relay until SIGTERM or SIGINT.
pub async fn run(opts: DaemonOpts) -> Result<(), DaemonError> {
    let cfg = conf::relayd::load(&opts.file, &opts.defines).map_err(RelayError::Config)?;
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let socket = cfg.socket.clone();
    let admin_at = match &cfg.admin {
        Some(l) => Some(crate::generation::resolve(&l.addr, l.port).await?),
        None => None,
    };
    if let Err(e) = net::sock::raise_nofile_limit() {
        tracing::warn!("cannot raise the open-file limit: {e}");
    }
    // Handlers first: a signal that comes during start-up then waits instead of killing.
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;

    let handle = Arc::new(RelayHandle::start(cfg).await?);
    for (name, addr) in handle.listen_addrs() {
        tracing::info!("relay {name} listening on {addr}");
    }
    let ctl = Arc::new(Controller::new(
        handle.clone(),
        opts.file.clone(),
        opts.defines.clone(),
    ));
    let stop = CancellationToken::new();
    let socket = open_socket(socket, &ctl, &stop)?;
    let _admin = match admin_at {
        Some(addr) => {
            let source = Arc::new(crate::admin_source::RelayAdmin::new(handle.clone()));
            let a = admin::start(addr, source, admin::Limits::default())?;
            tracing::info!("admin listener on http://{}/", a.local_addr());
            Some(a)
        }
        None => None,
    };

    loop {
        tokio::select! {
            _ = hup.recv() => {
                // Logged by the controller, success or refusal.
                let _ = ctl.reload(None).await;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!(
        "stopping: no new sessions; waiting up to {} s for {} open ones",
        opts.grace.as_secs(),
        handle.open_sessions()
    );
    stop.cancel();
    handle.shutdown(opts.grace).await;
    if let Some(p) = socket {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

/// Opens the control socket: the configured one must work; the default one is skipped with
/// a warning when it cannot be made (an unprivileged relay cannot create /run/hasocks).
fn open_socket(
    configured: Option<PathBuf>,
    ctl: &Arc<Controller>,
    stop: &CancellationToken,
) -> Result<Option<PathBuf>, DaemonError> {
    let (path, listener) = match configured {
        Some(p) => {
            let l = ctl::bind(&p)?;
            (p, l)
        }
        None => {
            let p = PathBuf::from(DEFAULT_SOCKET);
            match ctl::bind(&p) {
                Ok(l) => (p, l),
                Err(e) => {
                    tracing::warn!(
                        "{e}; running without a control socket (set one with socket \"PATH\")"
                    );
                    return Ok(None);
                }
            }
        }
    };
    tracing::info!("control socket {}", path.display());
    tokio::spawn(ctl::serve(listener, ctl.clone(), stop.clone()));
    Ok(Some(path))
}

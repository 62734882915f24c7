//! `hasocks server` as a daemon: start from a file (or take the listening sockets over from a
//! running server, or from socket activation), drop privileges, reload on SIGHUP (logs
//! reopened, config re-read; a broken file is refused and the running config stays), hand
//! over to a new binary on SIGUSR2, stop on SIGTERM/SIGINT after letting sessions finish;
//! and tell systemd about each step.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use net::systemd;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

use crate::logger::Level;
use crate::server::{ServerHandle, StartError};
use crate::upgrade::{self, Control, DEFAULT_SOCKET};

/// How the daemon runs.
#[derive(Debug)]
pub struct DaemonOpts {
    /// The sockd.conf.
    pub file: PathBuf,
    /// Grace periods, upgrade, socket activation.
    pub life: net::handover::Lifecycle,
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
    /// The configured control socket could not be opened.
    #[error(transparent)]
    Socket(#[from] net::ctlsock::BindError),
    /// The running server could not be taken over (it goes on serving).
    #[error("cannot take over from the server at {}: {reason}", .socket.display())]
    Upgrade {
        /// Its control socket.
        socket: PathBuf,
        /// Why.
        reason: String,
    },
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
    crate::session::auth::check_libraries(&cfg)?;
    Ok(cfg)
}

/// One line for `systemctl status`.
fn status_line(h: &ServerHandle) -> String {
    format!(
        "listening on {}, {} sessions open",
        h.local_addrs()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        h.active_sessions()
    )
}

/// Runs the server until SIGTERM or SIGINT (or until a successor took over).
pub async fn run(mut opts: DaemonOpts) -> Result<(), DaemonError> {
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
    let mut usr2 = signal(SignalKind::user_defined2()).map_err(DaemonError::Signal)?;
    let unprivileged = cfg.user_unprivileged.clone();
    let configured_socket = cfg.socket.clone();
    let ctl_path = configured_socket
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    let admin_at = match &cfg.admin {
        Some(a) => Some(
            crate::runtime::resolve_host(&a.host)
                .ok()
                .and_then(|ips| ips.first().copied())
                .map(|ip| SocketAddr::new(ip, a.port))
                .ok_or_else(|| {
                    start_err(StartError::Setup(format!(
                        "hasocks.admin: {} does not resolve",
                        a.host
                    )))
                })?,
        ),
        None => None,
    };
    let upgrade_err = |reason: String| DaemonError::Upgrade {
        socket: ctl_path.clone(),
        reason,
    };
    let (mut inherited, taken) = if opts.life.upgrade {
        let (l, t) = upgrade::take_over(ctl_path.clone())
            .await
            .map_err(|e| upgrade_err(e.to_string()))?;
        tracing::info!(
            "took over {} listening sockets of the running server",
            l.len()
        );
        (l, Some(t))
    } else {
        (Vec::new(), None)
    };
    for l in std::mem::take(&mut opts.life.activated) {
        match l.local_addr() {
            Ok(a) => inherited.push((a, l)),
            Err(e) => tracing::warn!("socket activation: a socket without an address: {e}"),
        }
    }
    // Before the listeners and before the drop: the root helper that checks passwords.
    crate::privs::start_auth_helper(unprivileged.as_deref()).map_err(DaemonError::Privileges)?;
    let handle = Arc::new(
        ServerHandle::start_with(cfg, inherited)
            .await
            .map_err(start_err)?,
    );
    let upgraded = taken.is_some();
    if let Some(t) = taken {
        // The old server stops accepting and closes its admin port before it answers.
        t.confirmed()
            .await
            .map_err(|e| upgrade_err(format!("confirming: {e}")))?;
        systemd::main_pid();
    }
    // Bound as root (before the drop), like the listeners.
    let admin = Arc::new(Mutex::new(match admin_at {
        Some(addr) => {
            let source = Arc::new(crate::admin_source::ServerAdmin::new(handle.clone()));
            let a = admin::start(addr, source, admin::Limits::default())?;
            tracing::info!("admin listener on http://{}/", a.local_addr());
            Some(a)
        }
        None => None,
    }));
    let stop = CancellationToken::new();
    let handed_over = CancellationToken::new();
    let release: net::handover::Release = {
        let (h, stop, admin, done) = (
            handle.clone(),
            stop.clone(),
            admin.clone(),
            handed_over.clone(),
        );
        Box::new(move || {
            h.stop_accepting();
            stop.cancel();
            if let Some(a) = admin.lock().ok().and_then(|mut a| a.take()) {
                a.close();
            }
            done.cancel();
        })
    };
    let existing = if upgraded {
        net::ctlsock::Existing::Replace
    } else {
        net::ctlsock::Existing::IfStale
    };
    let socket = open_socket(
        configured_socket,
        existing,
        Control::new(handle.clone(), release),
        &stop,
    )?;
    let mut dropped = false;
    if let Some(user) = unprivileged {
        match crate::privs::drop_to(&user) {
            Ok(true) => {
                dropped = true;
                tracing::info!("dropped privileges to {user}");
            }
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
    systemd::ready(&status_line(&handle));
    let watchdog = systemd::spawn_watchdog();
    loop {
        tokio::select! {
            _ = hup.recv() => {
                systemd::reloading();
                reload(&handle, &opts.file).await;
                systemd::ready(&status_line(&handle));
            }
            _ = usr2.recv() => {
                if dropped {
                    // The successor would run unprivileged: no root helper for system
                    // passwords, no binding of new privileged ports.
                    tracing::error!(
                        "SIGUSR2: this server dropped its privileges; upgrade it by running \
                         hasocks server -f {} --upgrade as root",
                        opts.file.display()
                    );
                } else {
                    net::handover::start_successor("server");
                }
            }
            _ = handed_over.cancelled() => break,
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    let end = net::handover::Ending::new(
        handed_over.is_cancelled(),
        &opts.life,
        watchdog,
        handle.active_sessions(),
    );
    let by_successor = end.by_successor;
    handle.log(
        Level::Info,
        if by_successor {
            "handed over to a new process; draining"
        } else {
            "shutting down"
        },
    );
    stop.cancel();
    // UDP associations run to their end too (or the upgrade grace).
    let cut = end
        .drain(|wait| handle.shutdown(wait), &mut term, &mut int)
        .await;
    if cut > 0 {
        tracing::warn!("{cut} sessions were still open at the deadline and were closed");
    }
    if let Some(a) = admin.lock().ok().and_then(|mut a| a.take()) {
        drop(a);
    }
    // After a hand-over the socket path is the successor's.
    if let (Some(p), false) = (socket, by_successor) {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

/// Opens the control socket (net::ctlsock::bind_configured_or_default) and serves it.
fn open_socket(
    configured: Option<PathBuf>,
    existing: net::ctlsock::Existing,
    ctl: Arc<Control>,
    stop: &CancellationToken,
) -> Result<Option<PathBuf>, DaemonError> {
    let Some((path, listener)) = net::ctlsock::bind_configured_or_default(
        configured,
        Path::new(DEFAULT_SOCKET),
        existing,
        ", so without binary upgrades (set one with hasocks.socket: PATH)",
    )?
    else {
        return Ok(None);
    };
    tracing::info!("control socket {}", path.display());
    tokio::spawn(upgrade::serve(listener, ctl, stop.clone()));
    Ok(Some(path))
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

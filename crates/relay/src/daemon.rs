//! `hasocks relay` as a daemon: start from a file (or take over from a running relay, or
//! with sockets from socket activation), open the control socket and the admin listener,
//! reload on SIGHUP, hand over to a new binary on SIGUSR2, stop on SIGTERM/SIGINT after
//! letting sessions finish; and tell systemd about each step (`READY=1`, `RELOADING=1`,
//! `STOPPING=1`, `STATUS=`, the watchdog).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use net::systemd;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

use crate::ctl::{self, BindError, Controller, DEFAULT_SOCKET};
use crate::error::RelayError;
use crate::handle::RelayHandle;
use crate::upgrade::Inherit;

/// How the daemon runs.
#[derive(Debug)]
pub struct DaemonOpts {
    /// The relayd.conf.
    pub file: PathBuf,
    /// `-D name=value` macro overrides.
    pub defines: Vec<(String, String)>,
    /// Grace periods, upgrade, socket activation.
    pub life: net::handover::Lifecycle,
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
    /// The running relay could not be taken over (it goes on serving).
    #[error("cannot take over from the relay at {}: {reason}", .socket.display())]
    Upgrade {
        /// Its control socket.
        socket: PathBuf,
        /// Why.
        reason: String,
    },
}

/// One line for `systemctl status`.
fn status_line(h: &RelayHandle) -> String {
    let s = h.snapshot();
    let hosts: usize = s.tables.iter().map(|t| t.hosts.len()).sum();
    let up: usize = s.tables.iter().map(|t| t.hosts_up()).sum();
    format!(
        "{} relays, {up} of {hosts} hosts up, {} sessions open, generation {}",
        s.relays.len(),
        h.open_sessions(),
        s.generation
    )
}

/// Takes the listening sockets and host states from the relay answering on `socket`.
async fn take_over(
    socket: &std::path::Path,
) -> Result<(Inherit, net::handover::Taken), DaemonError> {
    let err = |reason: String| DaemonError::Upgrade {
        socket: socket.to_path_buf(),
        reason,
    };
    let (meta, fds, taken) = net::handover::take_over(
        socket.to_path_buf(),
        net::handover::TAKEOVER_REQUEST,
        Inherit::count_fds,
    )
    .await
    .map_err(|e| err(e.to_string()))?;
    let inherit = Inherit::from_handover(&meta, fds).map_err(err)?;
    Ok((inherit, taken))
}

/// Runs the relay until SIGTERM or SIGINT (or until a successor took over).
pub async fn run(mut opts: DaemonOpts) -> Result<(), DaemonError> {
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
    let mut usr2 = signal(SignalKind::user_defined2()).map_err(DaemonError::Signal)?;

    let ctl_path = socket
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    let (inherit, taken) = if opts.life.upgrade {
        let (i, t) = take_over(&ctl_path).await?;
        tracing::info!("took over the listening sockets of the running relay");
        (i, Some(t))
    } else {
        (Inherit::default(), None)
    };
    let inherit = inherit.activated(std::mem::take(&mut opts.life.activated));
    let handle = Arc::new(RelayHandle::start_with(cfg, inherit).await?);
    let upgraded = taken.is_some();
    if let Some(t) = taken {
        // The old relay stops accepting and closes its admin port before it answers.
        t.confirmed().await.map_err(|e| DaemonError::Upgrade {
            socket: ctl_path.clone(),
            reason: format!("confirming: {e}"),
        })?;
        systemd::main_pid();
    }
    for (name, addr) in handle.listen_addrs() {
        tracing::info!("relay {name} listening on {addr}");
    }
    let ctl = Arc::new(Controller::new(
        handle.clone(),
        opts.file.clone(),
        opts.defines.clone(),
    ));
    let stop = CancellationToken::new();
    let existing = if upgraded {
        net::ctlsock::Existing::Replace
    } else {
        net::ctlsock::Existing::IfStale
    };
    let socket = open_socket(socket, existing, &ctl, &stop)?;
    let admin = Arc::new(Mutex::new(start_admin(admin_at, &handle)?));

    // A successor may take over: it then serves on the same sockets, and this one lets go.
    let handed_over = CancellationToken::new();
    {
        let (h, stop, admin, done) = (
            handle.clone(),
            stop.clone(),
            admin.clone(),
            handed_over.clone(),
        );
        // The socket path stays: the successor binds it anew.
        ctl.allow_takeover(Box::new(move || {
            h.stop_accepting();
            stop.cancel();
            if let Some(a) = admin.lock().ok().and_then(|mut a| a.take()) {
                a.close();
            }
            done.cancel();
        }));
    }
    systemd::ready(&status_line(&handle));
    let watchdog = systemd::spawn_watchdog();

    loop {
        tokio::select! {
            _ = hup.recv() => {
                systemd::reloading();
                // Logged by the controller, success or refusal.
                let _ = ctl.reload(None).await;
                systemd::ready(&status_line(&handle));
            }
            _ = usr2.recv() => net::handover::start_successor("relay"),
            _ = handed_over.cancelled() => break,
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    let end = net::handover::Ending::new(
        handed_over.is_cancelled(),
        &opts.life,
        watchdog,
        handle.open_sessions(),
    );
    stop.cancel();
    end.drain(|wait| handle.shutdown(wait), &mut term, &mut int)
        .await;
    let by_successor = end.by_successor;
    if let Some(a) = admin.lock().ok().and_then(|mut a| a.take()) {
        drop(a);
    }
    // After a hand-over the socket path is the successor's.
    if let (Some(p), false) = (socket, by_successor) {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

fn start_admin(
    at: Option<SocketAddr>,
    handle: &Arc<RelayHandle>,
) -> Result<Option<admin::AdminHandle>, DaemonError> {
    let Some(addr) = at else { return Ok(None) };
    let source = Arc::new(crate::admin_source::RelayAdmin::new(handle.clone()));
    let a = admin::start(addr, source, admin::Limits::default())?;
    tracing::info!("admin listener on http://{}/", a.local_addr());
    Ok(Some(a))
}

/// Opens the control socket (net::ctlsock::bind_configured_or_default) and serves it.
fn open_socket(
    configured: Option<PathBuf>,
    existing: net::ctlsock::Existing,
    ctl: &Arc<Controller>,
    stop: &CancellationToken,
) -> Result<Option<PathBuf>, DaemonError> {
    let Some((path, listener)) = net::ctlsock::bind_configured_or_default(
        configured,
        Path::new(DEFAULT_SOCKET),
        existing,
        " (set one with socket \"PATH\")",
    )?
    else {
        return Ok(None);
    };
    tracing::info!("control socket {}", path.display());
    tokio::spawn(ctl::serve(listener, ctl.clone(), stop.clone()));
    Ok(Some(path))
}

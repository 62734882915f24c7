//! The one daemon skeleton: what both `hasocks server` and `hasocks relay` do around their
//! own work. A daemon implements [`Daemon`]; [`run`] does the rest:
//!
//! signals installed -> (upgrade: take the sockets over from the running process) -> the
//! daemon starts -> (upgrade: confirm; the old process lets go) -> admin listener -> control
//! socket -> the daemon drops what it must (privileges) -> `READY=1` -> loop { SIGHUP:
//! reload; SIGUSR2: start a successor; taken over, SIGTERM or SIGINT: leave } -> drain ->
//! control socket removed.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hasocks_ctl_proto::relay::Event;
use hasocks_ctl_proto::{Body, Command};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::control::bind::{bind_configured_or_default, BindError, Existing};
use crate::control::{self, Control};
use crate::handover::HandoverError;
use crate::options::{Ending, Options};
use crate::systemd;

/// What a daemon passes to its successor: a description and the descriptors it names.
#[derive(Debug)]
pub struct Handover {
    /// The description (JSON of the daemon's own shape).
    pub meta: Vec<u8>,
    /// The listening sockets, in the order the description names them.
    pub fds: Vec<OwnedFd>,
}

/// A daemon as the skeleton drives it: the few things that differ between the server and
/// the relay. Handles are shared (`&self`); every method is cheap or async.
pub trait Daemon: Send + Sync + 'static {
    /// "server" or "relay", for log lines.
    const KIND: &'static str;
    /// Sockets and state the daemon starts with besides its config (from a predecessor or
    /// socket activation).
    type Inherit: Default + Send;
    /// Why it could not start (or do what must follow the start).
    type Error: std::error::Error + Send + Sync + 'static;

    /// How many descriptors a predecessor's description says follow it.
    fn count_fds(meta: &[u8]) -> Result<usize, HandoverError>;
    /// What a predecessor handed over.
    fn inherit(meta: &[u8], fds: Vec<OwnedFd>) -> Result<Self::Inherit, HandoverError>;
    /// Adds the sockets of socket activation.
    fn activated(inherit: Self::Inherit, sockets: Vec<std::net::TcpListener>) -> Self::Inherit;
    /// What goes to a successor.
    fn handover(&self) -> Handover;

    /// The admin listener's view of the daemon.
    fn admin_source(self: &Arc<Self>) -> Arc<dyn hasocks_admin::Source>;
    /// Called once the privileged work is done (listeners, admin port and control socket
    /// bound): a daemon drops its privileges here.
    fn bound(&self) -> Result<(), Self::Error> {
        Ok(())
    }
    /// Why SIGUSR2 cannot start a successor now, if it cannot.
    fn upgrade_refused(&self) -> Option<String> {
        None
    }

    /// SIGHUP: re-reads the config and puts it into effect (a broken one is refused and the
    /// running one stays); logs the outcome.
    fn reload(&self) -> impl Future<Output = ()> + Send;
    /// Carries out a control command (not `monitor` or `takeover`).
    fn execute(&self, cmd: Command) -> impl Future<Output = Body> + Send;
    /// Events for `monitor`; None when the daemon has none.
    fn subscribe(&self) -> Option<broadcast::Receiver<Event>> {
        None
    }
    /// One line for `systemctl status`.
    fn status_line(&self) -> String;

    /// The daemon's sessions and the tokens that stop them.
    fn drain(&self) -> &crate::Drain;
    /// Stops accepting: a successor accepts on the same sockets now.
    fn stop_accepting(&self);

    /// Sessions open now.
    fn open_sessions(&self) -> usize {
        self.drain().open()
    }
    /// Stops accepting, lets sessions run up to `wait`, then cuts the rest; how many were cut.
    fn shutdown(&self, wait: Duration) -> impl Future<Output = usize> + Send {
        async move {
            self.stop_accepting();
            self.drain().drain(wait).await
        }
    }
}

/// Where the daemon's control socket and admin listener are, and its command line's options.
#[derive(Debug)]
pub struct Plan {
    /// The control socket the config names (it must work), or None for `default_control`
    /// (skipped with a warning when it cannot be made, as an unprivileged daemon cannot
    /// create /run/hasocks).
    pub control: Option<PathBuf>,
    /// The default control socket.
    pub default_control: &'static str,
    /// How the config names a control socket, for the warning when the default fails.
    pub control_keyword: &'static str,
    /// The admin listener, if configured.
    pub admin: Option<SocketAddr>,
    /// Grace periods, upgrade, socket activation.
    pub options: Options,
}

/// Why the skeleton could not run the daemon.
#[derive(Debug, thiserror::Error)]
pub enum RunError<E: std::error::Error + 'static> {
    /// The daemon could not start.
    #[error(transparent)]
    Start(E),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signal(io::Error),
    /// The admin listener could not be started.
    #[error(transparent)]
    Admin(#[from] hasocks_admin::AdminError),
    /// The configured control socket could not be opened.
    #[error(transparent)]
    Control(#[from] BindError),
    /// The running process could not be taken over (it goes on serving).
    #[error("cannot take over from the process at {}: {reason}", .socket.display())]
    Upgrade {
        /// Its control socket.
        socket: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The four signals a daemon answers.
struct Signals {
    hup: Signal,
    term: Signal,
    int: Signal,
    usr2: Signal,
}

impl Signals {
    fn install() -> io::Result<Signals> {
        Ok(Signals {
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            usr2: signal(SignalKind::user_defined2())?,
        })
    }
}

/// Takes the sockets (and state) over from the process answering on `socket`.
async fn take_over<D: Daemon>(
    socket: &Path,
) -> Result<(D::Inherit, crate::handover::Taken), RunError<D::Error>> {
    let err = |reason: String| RunError::Upgrade {
        socket: socket.to_path_buf(),
        reason,
    };
    let (meta, fds, taken) = crate::handover::take_over(socket.to_path_buf(), D::count_fds)
        .await
        .map_err(|e| err(e.to_string()))?;
    let inherit = D::inherit(&meta, fds).map_err(|e| err(e.to_string()))?;
    tracing::info!("took over the listening sockets of the running {}", D::KIND);
    Ok((inherit, taken))
}

/// Runs a daemon until SIGTERM or SIGINT (or until a successor took over): `start` builds
/// it from what was inherited.
pub async fn run<D, F, Fut>(mut plan: Plan, start: F) -> Result<(), RunError<D::Error>>
where
    D: Daemon,
    F: FnOnce(D::Inherit) -> Fut,
    Fut: Future<Output = Result<Arc<D>, D::Error>>,
{
    if let Err(e) = hasocks_net::sock::raise_nofile_limit() {
        tracing::warn!("cannot raise the open-file limit: {e}");
    }
    // Handlers first: a signal that comes during start-up then waits instead of killing.
    let mut sig = Signals::install().map_err(RunError::Signal)?;
    let socket_path = plan
        .control
        .clone()
        .unwrap_or_else(|| PathBuf::from(plan.default_control));
    let (inherit, taken) = if plan.options.upgrade {
        let (i, t) = take_over::<D>(&socket_path).await?;
        (i, Some(t))
    } else {
        (D::Inherit::default(), None)
    };
    let inherit = D::activated(inherit, std::mem::take(&mut plan.options.activated));
    let daemon = start(inherit).await.map_err(RunError::Start)?;
    let upgraded = taken.is_some();
    if let Some(t) = taken {
        // The old process stops accepting and closes its admin port before it answers.
        t.confirmed().await.map_err(|e| RunError::Upgrade {
            socket: socket_path.clone(),
            reason: format!("confirming: {e}"),
        })?;
        systemd::main_pid();
    }
    let admin = Arc::new(Mutex::new(match plan.admin {
        Some(addr) => {
            let a = hasocks_admin::start(
                addr,
                daemon.admin_source(),
                hasocks_admin::Limits::default(),
            )?;
            tracing::info!("admin listener on http://{}/", a.local_addr());
            Some(a)
        }
        None => None,
    }));
    let stop = CancellationToken::new();
    let handed_over = CancellationToken::new();
    let ctl = Control::new(daemon.clone());
    {
        let (d, stop, admin, done) = (
            daemon.clone(),
            stop.clone(),
            admin.clone(),
            handed_over.clone(),
        );
        // The socket path stays: the successor binds it anew.
        ctl.allow_takeover(Box::new(move || {
            d.stop_accepting();
            stop.cancel();
            if let Some(a) = admin.lock().ok().and_then(|mut a| a.take()) {
                a.close();
            }
            done.cancel();
        }));
    }
    let existing = if upgraded {
        Existing::Replace
    } else {
        Existing::IfStale
    };
    let socket = match bind_configured_or_default(
        plan.control.clone(),
        Path::new(plan.default_control),
        existing,
        plan.control_keyword,
    )? {
        Some((path, listener)) => {
            tracing::info!("control socket {}", path.display());
            tokio::spawn(control::serve(listener, ctl, stop.clone()));
            Some(path)
        }
        None => None,
    };
    daemon.bound().map_err(RunError::Start)?;
    systemd::ready(&daemon.status_line());
    let watchdog = systemd::spawn_watchdog();
    loop {
        tokio::select! {
            _ = sig.hup.recv() => {
                systemd::reloading();
                daemon.reload().await;
                systemd::ready(&daemon.status_line());
            }
            _ = sig.usr2.recv() => match daemon.upgrade_refused() {
                Some(why) => tracing::error!("SIGUSR2: {why}"),
                None => crate::successor::start(D::KIND),
            },
            _ = handed_over.cancelled() => break,
            _ = sig.term.recv() => break,
            _ = sig.int.recv() => break,
        }
    }
    // A successor pings now; a stopping process has nothing left to prove.
    if let Some(w) = watchdog {
        w.abort();
    }
    let end = Ending::new(
        handed_over.is_cancelled(),
        &plan.options,
        daemon.open_sessions(),
    );
    stop.cancel();
    let cut = if end.by_successor {
        // The wait may be long: SIGTERM or SIGINT cut it to the grace.
        tokio::select! {
            n = daemon.shutdown(end.wait) => n,
            _ = sig.term.recv() => daemon.shutdown(end.grace).await,
            _ = sig.int.recv() => daemon.shutdown(end.grace).await,
        }
    } else {
        daemon.shutdown(end.wait).await
    };
    if cut > 0 {
        tracing::warn!("{cut} sessions were still open at the deadline and were closed");
    }
    if let Some(a) = admin.lock().ok().and_then(|mut a| a.take()) {
        drop(a);
    }
    // After a hand-over the socket path is the successor's.
    if let (Some(p), false) = (socket, end.by_successor) {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

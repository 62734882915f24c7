//! `hasocks server` as a daemon: the server's side of the shared skeleton
//! (hasocks-lifecycle). It starts from a file (or takes the listening sockets over from a
//! running server, or from socket activation), starts the root password helper before it
//! binds and drops privileges once everything privileged is bound, reloads on SIGHUP (logs
//! reopened, config re-read; a broken file is refused and the running config stays), and
//! answers `show summary`, `reload` and `takeover` on its control socket.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hasocks_ctl_proto::{Body, Command, Show, SERVER_SOCKET};
use hasocks_lifecycle::{Daemon, Handover, HandoverError, Options, Plan, RunError};

use crate::handle::{ReloadReport, ServerHandle, StartError};
use crate::logger::Level;
use crate::privs::PrivError;

/// How the daemon runs.
#[derive(Debug)]
pub struct DaemonOpts {
    /// The sockd.conf.
    pub file: PathBuf,
    /// Grace periods, upgrade, socket activation.
    pub options: Options,
}

/// Why the server could not run.
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
    /// Privileges could not be dropped, or the password helper not started.
    #[error(transparent)]
    Privileges(#[from] PrivError),
}

/// A config error names its own file, line and column; other start errors get the file.
fn start_message(file: &Path, e: &StartError) -> String {
    match e {
        StartError::Config(c) => c.to_string(),
        _ => format!("{}: {e}", file.display()),
    }
}

/// Reads and parses a sockd.conf, logging its warnings; a method whose library this machine
/// lacks is refused here.
pub fn load(file: &Path) -> Result<hasocks_conf::sockd::SockdConfig, StartError> {
    let cfg = hasocks_conf::sockd::load(file)?;
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    crate::session::auth::check_libraries(&cfg)?;
    Ok(cfg)
}

/// The running server as the skeleton drives it.
pub struct ServerDaemon {
    handle: Arc<ServerHandle>,
    file: PathBuf,
    unprivileged: Option<String>,
    /// Privileges were dropped: a successor could not bind privileged ports or run the
    /// root password helper.
    dropped: AtomicBool,
}

impl ServerDaemon {
    /// Re-reads the file and puts it into effect (logs reopened first); logs the outcome.
    async fn reload_file(&self) -> Result<ReloadReport, StartError> {
        for p in self.handle.reopen_logs() {
            tracing::warn!("{p}");
        }
        let path = self.file.clone();
        let loaded = tokio::task::spawn_blocking(move || load(&path))
            .await
            .map_err(|e| StartError::Internal(e.to_string()))
            .and_then(|r| r);
        let result = match loaded {
            Ok(cfg) => self.handle.reload(cfg).await,
            Err(e) => Err(e),
        };
        let (level, msg) = match &result {
            Ok(r) => (
                Level::Info,
                format!(
                    "reloaded {}: generation {}, listeners {} kept, {} opened {:?}, {} closed {:?}",
                    self.file.display(),
                    r.generation,
                    r.kept,
                    r.opened.len(),
                    r.opened,
                    r.closed.len(),
                    r.closed
                ),
            ),
            Err(e) => (
                Level::Error,
                format!("reload refused, keeping the running config: {e}"),
            ),
        };
        if level == Level::Error {
            tracing::error!("{msg}");
        } else {
            tracing::info!("{msg}");
        }
        self.handle.log(level, &msg);
        result
    }
}

impl Daemon for ServerDaemon {
    const KIND: &'static str = "server";
    type Inherit = Vec<(SocketAddr, std::net::TcpListener)>;
    type Error = DaemonError;

    fn count_fds(meta: &[u8]) -> Result<usize, HandoverError> {
        crate::handover::count_fds(meta)
    }

    fn inherit(meta: &[u8], fds: Vec<OwnedFd>) -> Result<Self::Inherit, HandoverError> {
        crate::handover::inherit(meta, fds)
    }

    fn activated(mut inherit: Self::Inherit, sockets: Vec<std::net::TcpListener>) -> Self::Inherit {
        for l in sockets {
            match l.local_addr() {
                Ok(a) => inherit.push((a, l)),
                Err(e) => tracing::warn!("socket activation: a socket without an address: {e}"),
            }
        }
        inherit
    }

    fn handover(&self) -> Handover {
        crate::handover::describe(self.handle.handover())
    }

    fn admin_source(self: &Arc<Self>) -> Arc<dyn hasocks_admin::Source> {
        Arc::new(crate::admin_source::ServerAdmin::new(self.handle.clone()))
    }

    fn bound(&self) -> Result<(), DaemonError> {
        if let Some(user) = &self.unprivileged {
            if crate::privs::drop_to(user)? {
                self.dropped.store(true, Ordering::Relaxed);
                tracing::info!("dropped privileges to {user}");
            }
        }
        for a in self.handle.local_addrs() {
            tracing::info!("listening on {a}");
        }
        self.handle.log(
            Level::Info,
            &format!(
                "hasocks server started, listening on {:?}",
                self.handle.local_addrs()
            ),
        );
        Ok(())
    }

    fn upgrade_refused(&self) -> Option<String> {
        // The successor would run unprivileged: no root helper for system passwords, no
        // binding of new privileged ports.
        self.dropped.load(Ordering::Relaxed).then(|| {
            format!(
                "this server dropped its privileges; upgrade it by running \
                 hasocks server -f {} --upgrade as root",
                self.file.display()
            )
        })
    }

    async fn reload(&self) {
        let _ = self.reload_file().await;
    }

    async fn execute(&self, cmd: Command) -> Body {
        match cmd {
            Command::Show {
                what: Show::Summary,
            } => Body::Server {
                status: self.handle.summary(),
            },
            Command::Reload => match self.reload_file().await {
                Ok(report) => Body::ServerReloaded {
                    file: self.file.clone(),
                    report,
                },
                Err(e) => Body::error(
                    "config",
                    format!("reload refused, the running config stays: {e}"),
                ),
            },
            other => Body::error(
                "unsupported",
                format!(
                    "a server's control socket takes show summary, reload and takeover, not {other:?}"
                ),
            ),
        }
    }

    fn status_line(&self) -> String {
        format!(
            "listening on {}, {} sessions open",
            self.handle
                .local_addrs()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            self.handle.active_sessions()
        )
    }

    fn drain(&self) -> &hasocks_lifecycle::Drain {
        self.handle.drain()
    }

    fn stop_accepting(&self) {
        self.handle.stop_accepting();
    }
}

/// The `hasocks.admin:` address of `cfg`, resolved.
fn admin_addr(cfg: &hasocks_conf::sockd::SockdConfig) -> Result<Option<SocketAddr>, StartError> {
    let Some(a) = &cfg.admin else { return Ok(None) };
    let ips = crate::generation::resolve_host(&a.host).map_err(|source| {
        crate::generation::GenerationError::Resolve {
            keyword: "hasocks.admin",
            source,
        }
    })?;
    Ok(ips.first().map(|ip| SocketAddr::new(*ip, a.port)))
}

/// Runs the server until SIGTERM or SIGINT (or until a successor took over).
pub async fn run(opts: DaemonOpts) -> Result<(), RunError<DaemonError>> {
    let file = opts.file.clone();
    let start_err = |source| {
        RunError::Start(DaemonError::Start {
            file: file.clone(),
            source,
        })
    };
    let cfg = load(&opts.file).map_err(start_err)?;
    let plan = Plan {
        control: cfg.socket.clone(),
        default_control: SERVER_SOCKET,
        control_keyword: ", so without binary upgrades (set one with hasocks.socket: PATH)",
        admin: admin_addr(&cfg).map_err(start_err)?,
        options: opts.options,
    };
    hasocks_lifecycle::run(plan, |inherited| async move {
        let unprivileged = cfg.user_unprivileged.clone();
        // Before the listeners and before the drop: the root helper that checks passwords.
        crate::privs::start_auth_helper(unprivileged.as_deref())?;
        let handle = ServerHandle::start_with(cfg, inherited)
            .await
            .map_err(|source| DaemonError::Start {
                file: opts.file.clone(),
                source,
            })?;
        Ok(Arc::new(ServerDaemon {
            handle: Arc::new(handle),
            file: opts.file,
            unprivileged,
            dropped: AtomicBool::new(false),
        }))
    })
    .await
}

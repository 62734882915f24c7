//! `hasocks relay` as a daemon: the relay's side of the shared skeleton (hasocks-lifecycle).
//! It starts from a file (or takes the listening sockets and host states over from a running
//! relay, or from socket activation), reloads on SIGHUP and on `reload`/`load`, and carries
//! out relayctl's commands on its control socket (`show`, `host`, `table`, `relay`, `poll`,
//! `log`, `monitor`).

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hasocks_ctl_proto::relay::{Event, ReloadReport};
use hasocks_ctl_proto::{render, Body, Command, Show, RELAY_SOCKET};
use hasocks_lifecycle::{Daemon, Handover, HandoverError, Options, Plan, RunError};
use tokio::sync::broadcast;

use crate::error::{CtlError, RelayError};
use crate::handle::RelayHandle;
use crate::handover::Inherit;

/// How the daemon runs.
#[derive(Debug)]
pub struct DaemonOpts {
    /// The relayd.conf.
    pub file: PathBuf,
    /// `-D name=value` macro overrides.
    pub defines: Vec<(String, String)>,
    /// Grace periods, upgrade, socket activation.
    pub options: Options,
}

/// A running relay with the file it reloads from: what the skeleton and the control socket
/// drive.
#[derive(Debug)]
pub struct RelayDaemon {
    handle: Arc<RelayHandle>,
    file: PathBuf,
    defines: Vec<(String, String)>,
}

impl RelayDaemon {
    /// `handle`, whose config comes from `file` with `-D` `defines`.
    pub fn new(handle: Arc<RelayHandle>, file: PathBuf, defines: Vec<(String, String)>) -> Self {
        RelayDaemon {
            handle,
            file,
            defines,
        }
    }

    /// The relay.
    pub fn handle(&self) -> &Arc<RelayHandle> {
        &self.handle
    }

    /// Re-reads the config file (or `other`, for this load only, as relayctl's `load`) and
    /// puts it into effect; a file that does not parse or cannot be put into effect is
    /// refused whole. Logs the outcome either way.
    pub async fn reload_from(
        &self,
        other: Option<&Path>,
    ) -> Result<(PathBuf, ReloadReport), RelayError> {
        let file = other.unwrap_or(&self.file).to_path_buf();
        let result = async {
            let (path, defines) = (file.clone(), self.defines.clone());
            let cfg =
                tokio::task::spawn_blocking(move || hasocks_conf::relayd::load(&path, &defines))
                    .await
                    .map_err(|e| RelayError::Worker(io::Error::other(e)))??;
            for w in &cfg.warnings {
                tracing::warn!("{w}");
            }
            self.handle.reload(cfg).await
        }
        .await;
        match &result {
            Ok(r) => tracing::info!("reloaded {}: {}", file.display(), render::reload(r)),
            Err(e) => tracing::error!(
                "reload of {} refused, the running config stays: {e}",
                file.display()
            ),
        }
        result.map(|r| (file, r))
    }
}

fn error_body(e: &CtlError) -> Body {
    let kind = match e {
        CtlError::NotFound { .. } => "not_found",
        CtlError::Reload(r) => r.kind(),
    };
    Body::error(kind, e.to_string())
}

impl Daemon for RelayDaemon {
    const KIND: &'static str = "relay";
    type Inherit = Inherit;
    type Error = RelayError;

    fn count_fds(meta: &[u8]) -> Result<usize, HandoverError> {
        Inherit::count_fds(meta)
    }

    fn inherit(meta: &[u8], fds: Vec<OwnedFd>) -> Result<Inherit, HandoverError> {
        Inherit::from_handover(meta, fds)
    }

    fn activated(inherit: Inherit, sockets: Vec<std::net::TcpListener>) -> Inherit {
        inherit.activated(sockets)
    }

    fn handover(&self) -> Handover {
        self.handle.handover().into_handover()
    }

    fn admin_source(self: &Arc<Self>) -> Arc<dyn hasocks_admin::Source> {
        Arc::new(crate::admin_source::RelayAdmin::new(self.handle.clone()))
    }

    fn bound(&self) -> Result<(), RelayError> {
        for (name, addr) in self.handle.listen_addrs() {
            tracing::info!("relay {name} listening on {addr}");
        }
        Ok(())
    }

    async fn reload(&self) {
        // Logged by reload_from, success or refusal.
        let _ = self.reload_from(None).await;
    }

    async fn execute(&self, cmd: Command) -> Body {
        let h = &self.handle;
        let done = |r: Result<usize, CtlError>| match r {
            Ok(matched) => Body::Done { matched },
            Err(e) => error_body(&e),
        };
        match cmd {
            Command::Show {
                what: Show::Sessions,
            } => Body::Sessions {
                pid: std::process::id(),
                sessions: h.sessions(),
            },
            Command::Show { .. } => Body::Status {
                status: h.snapshot(),
            },
            Command::Host { action, target } => done(h.host_action(&target, action)),
            Command::Table { enable, target } => done(h.table_action(&target, enable)),
            Command::Relay { enable, target } => done(h.relay_action(&target, enable)),
            Command::RelayDrain { drain } => {
                h.set_draining(drain);
                Body::Done { matched: 1 }
            }
            Command::Redirect { enable, target } => done(h.redirect_action(&target, enable)),
            Command::Poll => {
                h.poll();
                Body::Done { matched: 1 }
            }
            Command::Log { verbose } => {
                h.set_verbose(verbose);
                tracing::info!("log {}", if verbose { "verbose" } else { "brief" });
                Body::Done { matched: 1 }
            }
            Command::Reload | Command::Load { .. } => {
                let other = match &cmd {
                    Command::Load { file } => Some(file.as_path()),
                    _ => None,
                };
                match self.reload_from(other).await {
                    Ok((file, report)) => Body::Reloaded { file, report },
                    Err(e) => error_body(&CtlError::Reload(e)),
                }
            }
            Command::Monitor | Command::Takeover => {
                Body::error("request", "monitor and takeover are streams, not commands")
            }
        }
    }

    fn subscribe(&self) -> Option<broadcast::Receiver<Event>> {
        Some(self.handle.subscribe())
    }

    fn status_line(&self) -> String {
        let s = self.handle.snapshot();
        let hosts: usize = s.tables.iter().map(|t| t.hosts.len()).sum();
        let up: usize = s.tables.iter().map(|t| t.hosts_up()).sum();
        format!(
            "{} relays, {up} of {hosts} hosts up, {} sessions open, generation {}",
            s.relays.len(),
            self.handle.open_sessions(),
            s.generation
        )
    }

    fn drain(&self) -> &hasocks_lifecycle::Drain {
        self.handle.drain()
    }

    fn stop_accepting(&self) {
        self.handle.stop_accepting();
    }
}

/// Runs the relay until SIGTERM or SIGINT (or until a successor took over).
pub async fn run(opts: DaemonOpts) -> Result<(), RunError<RelayError>> {
    let cfg = hasocks_conf::relayd::load(&opts.file, &opts.defines)
        .map_err(|e| RunError::Start(RelayError::Config(e)))?;
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let admin = match &cfg.admin {
        Some(l) => Some(
            crate::generation::resolve(&l.addr, l.port)
                .await
                .map_err(RunError::Start)?,
        ),
        None => None,
    };
    let plan = Plan {
        control: cfg.socket.clone(),
        default_control: RELAY_SOCKET,
        control_keyword: " (set one with socket \"PATH\")",
        admin,
        options: opts.options,
    };
    let (file, defines) = (opts.file, opts.defines);
    hasocks_lifecycle::run(plan, |inherit| async move {
        let handle = Arc::new(RelayHandle::start_with(cfg, inherit).await?);
        Ok(Arc::new(RelayDaemon::new(handle, file, defines)))
    })
    .await
}

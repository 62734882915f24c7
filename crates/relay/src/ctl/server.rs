//! The control socket's server side: binding the socket (mode 0660, a stale one replaced, a
//! live one refused), and serving requests with a bounded number of connections.

use std::io;
use std::path::{Path, PathBuf};

pub use net::ctlsock::BindError;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, Semaphore};
use tokio_util::sync::CancellationToken;

use super::{Body, Command, Reply, Request, Show, MAX_LINE, PROTOCOL_VERSION};
use crate::error::{CtlError, RelayError};
use crate::handle::{RelayHandle, ReloadReport};

/// Control connections served at once; more wait in the socket's backlog.
const MAX_CONNECTIONS: usize = 64;
/// How long a connection may take to send its request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Binds the control socket at `path` (see [`net::ctlsock::bind`]); a socket a live relay
/// answers on is refused.
pub fn bind(path: &Path) -> Result<UnixListener, BindError> {
    net::ctlsock::bind(path, net::ctlsock::Existing::IfStale)
}

pub use net::handover::Release;

/// Carries out control commands on a relay; also what SIGHUP uses to reload.
pub struct Controller {
    handle: Arc<RelayHandle>,
    file: PathBuf,
    defines: Vec<(String, String)>,
    /// Set by a daemon that can be taken over (`hasocks up` cannot).
    release: std::sync::Mutex<Option<Release>>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("file", &self.file)
            .finish()
    }
}

impl Controller {
    /// A controller for `handle`, whose config comes from `file` with `-D` `defines`.
    pub fn new(handle: Arc<RelayHandle>, file: PathBuf, defines: Vec<(String, String)>) -> Self {
        Controller {
            handle,
            file,
            defines,
            release: std::sync::Mutex::new(None),
        }
    }

    /// Allows a takeover: `release` runs once the successor serves (stop accepting, free the
    /// control socket and the admin port, tell the daemon to drain and exit).
    pub fn allow_takeover(&self, release: Release) {
        if let Ok(mut r) = self.release.lock() {
            *r = Some(release);
        }
    }

    /// Hands the listeners and host states to the successor on `stream`.
    async fn takeover(&self, stream: UnixStream) {
        let release = self.release.lock().ok().and_then(|mut r| r.take());
        let Some(release) = release else {
            tracing::warn!("control socket: a takeover was asked, but this relay cannot be taken over (or already was)");
            return;
        };
        let offer = self.handle.handover();
        tracing::info!("handing the listening sockets to a new process");
        match net::handover::offer(stream, offer.meta(), offer.into_fds(), release).await {
            Ok(()) => tracing::info!("the new process serves; this one stops accepting and drains"),
            Err((e, Some(back))) => {
                // Not released: nothing changed here, and a later takeover may be tried.
                self.allow_takeover(back);
                tracing::error!("takeover failed, this relay goes on serving: {e}");
            }
            Err((e, None)) => tracing::error!("takeover failed after the release: {e}"),
        }
    }

    /// The relay.
    pub fn handle(&self) -> &Arc<RelayHandle> {
        &self.handle
    }

    /// Re-reads the config file (or `other`, for this load only, as relayctl's `load`) and
    /// puts it into effect; a file that does not parse or cannot be put into effect is
    /// refused whole. Logs the outcome either way.
    pub async fn reload(
        &self,
        other: Option<&Path>,
    ) -> Result<(PathBuf, ReloadReport), RelayError> {
        let file = other.unwrap_or(&self.file).to_path_buf();
        let result = async {
            let (path, defines) = (file.clone(), self.defines.clone());
            let cfg = tokio::task::spawn_blocking(move || conf::relayd::load(&path, &defines))
                .await
                .map_err(|e| RelayError::Worker(io::Error::other(e)))??;
            for w in &cfg.warnings {
                tracing::warn!("{w}");
            }
            self.handle.reload(cfg).await
        }
        .await;
        match &result {
            Ok(r) => tracing::info!("reloaded {}: {}", file.display(), super::render::reload(r)),
            Err(e) => tracing::error!(
                "reload of {} refused, the running config stays: {e}",
                file.display()
            ),
        }
        result.map(|r| (file, r))
    }

    /// Carries out one command (`monitor` is handled by the connection).
    pub async fn execute(&self, cmd: &Command) -> Body {
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
            Command::Host { action, target } => done(h.host_action(target, *action)),
            Command::Table { enable, target } => done(h.table_action(target, *enable)),
            Command::Relay { enable, target } => done(h.relay_action(target, *enable)),
            Command::Poll => {
                h.poll();
                Body::Done { matched: 1 }
            }
            Command::Log { verbose } => {
                h.set_verbose(*verbose);
                tracing::info!("log {}", if *verbose { "verbose" } else { "brief" });
                Body::Done { matched: 1 }
            }
            Command::Reload | Command::Load { .. } => {
                let other = match cmd {
                    Command::Load { file } => Some(file.as_path()),
                    _ => None,
                };
                match self.reload(other).await {
                    Ok((file, report)) => Body::Reloaded { file, report },
                    Err(e) => error_body(&CtlError::Reload(e)),
                }
            }
            Command::Monitor | Command::Takeover => Body::Error {
                kind: "request".into(),
                message: "monitor and takeover are streams, not commands".into(),
            },
        }
    }
}

fn error_body(e: &CtlError) -> Body {
    let kind = match e {
        CtlError::NotFound { .. } => "not_found".to_string(),
        CtlError::Reload(r) => r.kind().to_string(),
    };
    Body::Error {
        kind,
        message: e.to_string(),
    }
}

/// Serves the control socket until `stop`.
pub async fn serve(listener: UnixListener, ctl: Arc<Controller>, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let conn = tokio::select! {
            _ = stop.cancelled() => return,
            c = listener.accept() => c,
        };
        match conn {
            Ok((s, _)) => {
                let (ctl, stop) = (ctl.clone(), stop.clone());
                tokio::spawn(async move {
                    connection(s, &ctl, &stop).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // Out of descriptors, most likely: wait instead of spinning (relayd: 1 s).
                tracing::warn!("control socket: accept failed: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn connection(s: UnixStream, ctl: &Controller, stop: &CancellationToken) {
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    loop {
        let mut line = Vec::new();
        let mut bounded = (&mut r).take(MAX_LINE as u64 + 1);
        let read = bounded.read_until(b'\n', &mut line);
        match tokio::time::timeout(REQUEST_TIMEOUT, read).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {}
        }
        if line.len() > MAX_LINE {
            let _ = send(
                &mut w,
                request_error(format!("request longer than {MAX_LINE} bytes")),
            )
            .await;
            return;
        }
        let req: Request = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => {
                let _ = send(&mut w, request_error(format!("bad request: {e}"))).await;
                return;
            }
        };
        if req.v != PROTOCOL_VERSION {
            let body = Body::Error {
                kind: "version".into(),
                message: format!(
                    "protocol version {} is not spoken here (this relay speaks {PROTOCOL_VERSION})",
                    req.v
                ),
            };
            let _ = send(&mut w, body).await;
            return;
        }
        if req.command == Command::Monitor {
            monitor(r, w, ctl.handle().subscribe(), stop).await;
            return;
        }
        if req.command == Command::Takeover {
            match r.into_inner().reunite(w) {
                Ok(s) => ctl.takeover(s).await,
                Err(e) => tracing::error!("takeover: {e}"),
            }
            return;
        }
        let body = ctl.execute(&req.command).await;
        if send(&mut w, body).await.is_err() {
            return;
        }
    }
}

fn request_error(message: String) -> Body {
    Body::Error {
        kind: "request".into(),
        message,
    }
}

async fn send(w: &mut tokio::net::unix::OwnedWriteHalf, body: Body) -> io::Result<()> {
    let mut line = serde_json::to_vec(&Reply {
        v: PROTOCOL_VERSION,
        body,
    })
    .map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await
}

/// Streams events to a monitor until it closes its end or the relay stops.
async fn monitor(
    mut r: BufReader<tokio::net::unix::OwnedReadHalf>,
    mut w: tokio::net::unix::OwnedWriteHalf,
    mut events: broadcast::Receiver<crate::events::Event>,
    stop: &CancellationToken,
) {
    let mut sink = [0u8; 256];
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            // The client sends nothing more; EOF (or an error) means it went away.
            n = r.read(&mut sink) => if !matches!(n, Ok(n) if n > 0) { return },
            ev = events.recv() => match ev {
                Ok(event) => if send(&mut w, Body::Event { event }).await.is_err() { return },
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("control socket: a monitor fell behind and missed {n} events");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

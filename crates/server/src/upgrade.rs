//! Binary upgrade of the server: its control socket (`hasocks.socket`, default
//! [`DEFAULT_SOCKET`]) answers one request, `takeover`, sent by `hasocks server --upgrade`.
//! The listening sockets then pass to the new process (SCM_RIGHTS, `net::handover`), which
//! confirms once it serves; this process stops accepting and lets its sessions and UDP
//! associations run to their end. The request is one JSON line as on the relay's control
//! socket, `{"v":1,"cmd":"takeover"}`; anything else gets an error line.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use net::handover::Release;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use crate::server::ServerHandle;

/// Where the control socket is when `hasocks.socket` does not say.
pub const DEFAULT_SOCKET: &str = "/run/hasocks/server.sock";
/// Version of the hand-over description.
const VERSION: u32 = 1;
/// The longest request line.
const MAX_LINE: u64 = 4096;
/// How long a connection may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    v: u32,
    /// Configured `internal:` addresses (port 0 stays 0), one socket each, in order.
    listeners: Vec<SocketAddr>,
}

#[derive(Debug, Deserialize)]
struct Request {
    v: u32,
    cmd: String,
}

/// How many descriptors a description says follow it.
pub fn count_fds(meta: &[u8]) -> Result<usize, String> {
    let m: Meta =
        serde_json::from_slice(meta).map_err(|e| format!("hand-over description: {e}"))?;
    Ok(m.listeners.len())
}

/// The listening sockets a predecessor handed over, by configured address.
pub fn from_handover(
    meta: &[u8],
    fds: Vec<OwnedFd>,
) -> Result<Vec<(SocketAddr, std::net::TcpListener)>, String> {
    let m: Meta =
        serde_json::from_slice(meta).map_err(|e| format!("hand-over description: {e}"))?;
    if m.v != VERSION {
        return Err(format!(
            "hand-over version {} (this server reads {VERSION})",
            m.v
        ));
    }
    let groups = net::handover::split_listeners(&vec![1; m.listeners.len()], fds)?;
    Ok(m.listeners
        .into_iter()
        .zip(groups.into_iter().flatten())
        .collect())
}

/// Takes the listening sockets from the server answering on `socket`. The returned
/// [`net::handover::Taken`] is confirmed once this process serves.
pub async fn take_over(
    socket: PathBuf,
) -> std::io::Result<(
    Vec<(SocketAddr, std::net::TcpListener)>,
    net::handover::Taken,
)> {
    let (meta, fds, taken) =
        net::handover::take_over(socket, net::handover::TAKEOVER_REQUEST, count_fds).await?;
    let listeners = from_handover(&meta, fds).map_err(std::io::Error::other)?;
    Ok((listeners, taken))
}

/// The running server's side of its control socket.
pub struct Control {
    handle: Arc<ServerHandle>,
    release: Mutex<Option<Release>>,
}

impl Control {
    /// `release` runs once a successor serves (stop accepting, close the admin port, let the
    /// daemon drain and exit).
    pub fn new(handle: Arc<ServerHandle>, release: Release) -> Arc<Self> {
        Arc::new(Self {
            handle,
            release: Mutex::new(Some(release)),
        })
    }

    async fn takeover(&self, stream: UnixStream) {
        let release = self.release.lock().ok().and_then(|mut r| r.take());
        let Some(release) = release else {
            tracing::warn!(
                "control socket: a takeover was asked, but this server already handed over"
            );
            return;
        };
        let listeners = self.handle.handover();
        let meta = Meta {
            v: VERSION,
            listeners: listeners.iter().map(|(a, _)| *a).collect(),
        };
        let meta = serde_json::to_vec(&meta).unwrap_or_default();
        let fds = listeners
            .into_iter()
            .map(|(_, l)| OwnedFd::from(l))
            .collect();
        tracing::info!("handing the listening sockets to a new process");
        match net::handover::offer(stream, meta, fds, release).await {
            Ok(()) => tracing::info!(
                "the new process serves; this one stops accepting and lets its sessions finish"
            ),
            Err((e, Some(back))) => {
                if let Ok(mut r) = self.release.lock() {
                    *r = Some(back);
                }
                tracing::error!("takeover failed, this server goes on serving: {e}");
            }
            Err((e, None)) => tracing::error!("takeover failed after the release: {e}"),
        }
    }
}

/// Serves the control socket until `stop`.
pub async fn serve(listener: UnixListener, ctl: Arc<Control>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((s, _)) => {
                let ctl = ctl.clone();
                tokio::spawn(async move { connection(s, &ctl).await });
            }
            Err(e) => {
                tracing::warn!("control socket: accept failed: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn connection(s: UnixStream, ctl: &Control) {
    let mut r = BufReader::new(s);
    let mut line = Vec::new();
    let mut bounded = (&mut r).take(MAX_LINE);
    let read = bounded.read_until(b'\n', &mut line);
    if !matches!(tokio::time::timeout(REQUEST_TIMEOUT, read).await, Ok(Ok(n)) if n > 0) {
        return;
    }
    match serde_json::from_slice::<Request>(&line) {
        Ok(req) if req.v == 1 && req.cmd == "takeover" => ctl.takeover(r.into_inner()).await,
        _ => {
            let reply = "{\"v\":1,\"reply\":\"error\",\"kind\":\"request\",\"message\":\"the server's control socket takes only {\\\"v\\\":1,\\\"cmd\\\":\\\"takeover\\\"}\"}\n";
            let _ = r.get_mut().write_all(reply.as_bytes()).await;
        }
    }
}

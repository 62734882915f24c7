//! A daemon's control socket: a Unix stream socket (mode 0660) speaking the control protocol
//! (`hasocks-ctl-proto`) one line at a time, with a bounded number of connections. Every
//! command goes to the daemon ([`Daemon::execute`]); `monitor` streams its events; `takeover`
//! turns the connection into a hand-over of the listening sockets to a successor, allowed
//! once the daemon's run loop has said how to let go ([`Control::allow_takeover`]).

pub mod bind;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hasocks_ctl_proto::relay::Event;
use hasocks_ctl_proto::{decode_request, encode_reply, Body, Command};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::daemon::Daemon;
use crate::handover::Release;

/// Control connections served at once; more wait in the socket's backlog.
const MAX_CONNECTIONS: usize = 64;
/// How long a connection may take to send its request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A daemon's side of its control socket.
pub struct Control<D> {
    daemon: Arc<D>,
    /// Set once the daemon can be taken over (`hasocks up` never is).
    release: Mutex<Option<Release>>,
}

impl<D: Daemon> Control<D> {
    /// Control of `daemon`; takeovers are refused until [`allow_takeover`](Self::allow_takeover).
    pub fn new(daemon: Arc<D>) -> Arc<Self> {
        Arc::new(Control {
            daemon,
            release: Mutex::new(None),
        })
    }

    /// Allows a takeover: `release` runs once the successor serves (stop accepting, free the
    /// control socket and the admin port, tell the run loop to drain and exit).
    pub fn allow_takeover(&self, release: Release) {
        if let Ok(mut r) = self.release.lock() {
            *r = Some(release);
        }
    }

    /// Hands the listening sockets (and whatever else the daemon passes on) to the successor
    /// on `stream`.
    async fn takeover(&self, stream: UnixStream) {
        let release = self.release.lock().ok().and_then(|mut r| r.take());
        let Some(release) = release else {
            tracing::warn!(
                "control socket: a takeover was asked, but this {} cannot be taken over (or already was)",
                D::KIND
            );
            return;
        };
        let h = self.daemon.handover();
        tracing::info!("handing the listening sockets to a new process");
        match crate::handover::offer(stream, h.meta, h.fds, release).await {
            Ok(()) => tracing::info!("the new process serves; this one stops accepting and drains"),
            Err((e, Some(back))) => {
                // Not released: nothing changed here, and a later takeover may be tried.
                self.allow_takeover(back);
                tracing::error!("takeover failed, this {} goes on serving: {e}", D::KIND);
            }
            Err((e, None)) => tracing::error!("takeover failed after the release: {e}"),
        }
    }
}

/// Serves the control socket until `stop`.
pub async fn serve<D: Daemon>(
    listener: UnixListener,
    ctl: Arc<Control<D>>,
    stop: CancellationToken,
) {
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

async fn connection<D: Daemon>(s: UnixStream, ctl: &Control<D>, stop: &CancellationToken) {
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    loop {
        let mut line = Vec::new();
        let limit = hasocks_ctl_proto::MAX_LINE as u64 + 1;
        let mut bounded = (&mut r).take(limit);
        let read = bounded.read_until(b'\n', &mut line);
        match tokio::time::timeout(REQUEST_TIMEOUT, read).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {}
        }
        let req = match decode_request(&line) {
            Ok(r) => r,
            Err(e) => {
                let _ = w.write_all(&encode_reply(e.reply())).await;
                return;
            }
        };
        match req.command {
            Command::Monitor => {
                match ctl.daemon.subscribe() {
                    Some(events) => monitor(r, w, events, stop).await,
                    None => {
                        let body = Body::error(
                            "unsupported",
                            format!("the {} has no events to monitor", D::KIND),
                        );
                        let _ = w.write_all(&encode_reply(body)).await;
                    }
                }
                return;
            }
            Command::Takeover => {
                match r.into_inner().reunite(w) {
                    Ok(s) => ctl.takeover(s).await,
                    Err(e) => tracing::error!("takeover: {e}"),
                }
                return;
            }
            cmd => {
                let body = ctl.daemon.execute(cmd).await;
                if w.write_all(&encode_reply(body)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Streams events to a monitor until it closes its end or the daemon stops.
async fn monitor(
    mut r: BufReader<tokio::net::unix::OwnedReadHalf>,
    mut w: OwnedWriteHalf,
    mut events: broadcast::Receiver<Event>,
    stop: &CancellationToken,
) {
    let mut sink = [0u8; 256];
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            // The client sends nothing more; EOF (or an error) means it went away.
            n = r.read(&mut sink) => if !matches!(n, Ok(n) if n > 0) { return },
            ev = events.recv() => match ev {
                Ok(event) => {
                    if w.write_all(&encode_reply(Body::Event { event })).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("control socket: a monitor fell behind and missed {n} events");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

//! One relayed TCP session: the connect step (the pools' candidates in order, each host
//! `1 + retry` times, all before any byte is forwarded; see `pool::connect`), optional PROXY
//! v2 header, then copy both ways until done. The stream itself is never read or changed.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hasocks_conf::relayd::LogConnections;
use hasocks_net::copy::{pump_live, CopyOpts, EndReason, LiveBytes};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::admission::Admitted;
use crate::generation::RelayGen;
use crate::pool::connect::{connect, ConnectError};
use crate::sessions::{SessionEntry, Sessions};

/// What a worker thread hands each of its sessions.
#[derive(Debug)]
pub(crate) struct WorkerCtx {
    pub worker: u32,
    /// Session ids of this worker (only this thread counts them).
    pub next_id: AtomicU64,
    pub sessions: Arc<Sessions>,
    /// `log verbose` from the control socket: log every connection.
    pub verbose: Arc<AtomicBool>,
    /// Ends the copy of every session (hard stop after the shutdown grace).
    pub kill: CancellationToken,
}

/// Decrements a counter when dropped.
struct Counted<'a>(&'a AtomicU64);

impl<'a> Counted<'a> {
    fn new(c: &'a AtomicU64) -> Self {
        c.fetch_add(1, Ordering::Relaxed);
        Counted(c)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one accepted client. `listen` is the configured listen address (the hash input,
/// identical on every relay sharing the config).
pub(crate) async fn serve(
    relay: Arc<RelayGen>,
    mut client: TcpStream,
    peer: SocketAddr,
    listen: SocketAddr,
    ctx: Arc<WorkerCtx>,
    _admitted: Admitted,
) {
    let rec = &relay.record;
    let c = &rec.counters;
    c.accepted.fetch_add(1, Ordering::Relaxed);
    let _open = Counted::new(&c.open);
    if relay.is_disabled() {
        return;
    }
    let mut first = Vec::new();
    if let Some(limit) = relay.first_byte {
        // SOCKS clients speak first: no host is contacted for a client that says nothing.
        match first_byte(&mut client, limit).await {
            FirstByte::Data(bytes) => first = bytes,
            FirstByte::Closed => {
                c.silent_closed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            FirstByte::Timeout => {
                c.first_byte_timeouts.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
    let id = ctx.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let log = if ctx.verbose.load(Ordering::Relaxed) {
        LogConnections::All
    } else {
        relay.log
    };
    let start = Instant::now();
    // Boxed: the connect's state (retries, timeouts) is large and over once the copy starts,
    // and a session's future is held for the session's whole life.
    let found = {
        let tuning = relay.tuning();
        let connect_step = || connect(&relay.forwards, c, &rec.name, peer, listen, &tuning);
        let mut found = Box::pin(connect_step()).await;
        if matches!(found, Err(ConnectError::NoneActive)) && first_round_pending(&relay).await {
            // Started a moment ago (socket activation hands over the connection that woke
            // us): the first checks have their verdicts now.
            found = Box::pin(connect_step()).await;
        }
        found
    };
    let (backend, host) = match found {
        Ok(found) => found,
        Err(why) => {
            c.failed.fetch_add(1, Ordering::Relaxed);
            if why == ConnectError::NoneActive {
                c.no_host.fetch_add(1, Ordering::Relaxed);
            }
            if log != LogConnections::Off {
                tracing::info!("relay {}, session {id} {peer}: {why}", rec.name);
            }
            return;
        }
    };
    let hrec = host.record.clone();
    hrec.sessions.fetch_add(1, Ordering::Relaxed);
    let _on_host = Counted::new(&hrec.open);
    let mut backend = backend;
    // The PROXY header and the client's first bytes leave in one write.
    let first_len = first.len() as u64;
    let ahead = if relay.send_proxy_v2 {
        let dst = client.local_addr().unwrap_or(listen);
        let mut header = hasocks_net::proxy::encode_v2(peer, dst);
        header.extend_from_slice(&first);
        header
    } else {
        first
    };
    if !ahead.is_empty() {
        if let Err(e) = backend.write_all(&ahead).await {
            c.failed.fetch_add(1, Ordering::Relaxed);
            if log != LogConnections::Off {
                tracing::info!(
                    "relay {}, session {id} {peer} -> {}: sending the first bytes failed: {e}",
                    rec.name,
                    hrec.key.name
                );
            }
            return;
        }
    }
    let opts = CopyOpts {
        idle_timeout: relay.idle_timeout,
        cancel: Some(ctx.kill.clone()),
        no_splice: !relay.tcp.splice,
    };
    let reg = ctx.sessions.register(Arc::new(SessionEntry {
        id,
        worker: ctx.worker,
        client: peer,
        backend: host.addr,
        relay: rec.clone(),
        host: hrec.clone(),
        started: start,
        live: LiveBytes::with_ahead(first_len),
    }));
    let mut report = pump_live(client, backend, opts, Some(&reg.entry().live)).await;
    report.a_to_b += first_len;
    reg.finish(report.a_to_b, report.b_to_a);
    c.durations.observe(start.elapsed());
    let is_error = matches!(report.end, EndReason::ErrorA | EndReason::ErrorB);
    if log == LogConnections::All || (log == LogConnections::Errors && is_error) {
        tracing::info!(
            "relay {}, session {id} {peer} -> {} ({}), {} bytes out, {} bytes in, {:.3}s, {}",
            rec.name,
            hrec.key.name,
            host.addr,
            report.a_to_b,
            report.b_to_a,
            start.elapsed().as_secs_f64(),
            end_word(report.end)
        );
    }
}

/// The longest a session waits for a first check round (a check timeout may be a minute).
const FIRST_ROUND_WAIT: Duration = Duration::from_secs(5);

/// Waits (at most a check timeout, and [`FIRST_ROUND_WAIT`]) for the first check round of
/// tables that have none yet; whether there was one to wait for.
async fn first_round_pending(relay: &RelayGen) -> bool {
    let mut waited = false;
    for fwd in &relay.forwards {
        let t = &fwd.pool;
        if *t.ready.borrow() || t.is_disabled() {
            continue;
        }
        waited = true;
        let mut rx = t.ready.subscribe();
        let limit = (t.timeout + Duration::from_millis(100)).min(FIRST_ROUND_WAIT);
        let _ = tokio::time::timeout(limit, rx.wait_for(|r| *r)).await;
    }
    waited
}

/// How many of the client's first bytes are read before a host is chosen (a SOCKS greeting
/// is 3 or 4; the rest of a larger first packet is read by the copy).
const FIRST_READ: usize = 256;

/// What a client did before its first byte.
enum FirstByte {
    /// It sent these bytes.
    Data(Vec<u8>),
    /// It closed (or its connection failed) without sending any.
    Closed,
    /// It sent nothing within the first-byte timeout.
    Timeout,
}

/// Waits for the client's first bytes and reads them (read, not peeked: they go to the host
/// ahead of the copy, so that the copy does not read them a second time; and through
/// `AsyncRead`, which knows a short read drained the socket, so the copy's first read waits
/// instead of trying). The read buffer lives on the stack of one poll, not in the session's
/// future, which every held session keeps for its whole life.
async fn first_byte(client: &mut TcpStream, limit: Duration) -> FirstByte {
    let read = std::future::poll_fn(|cx| {
        let mut buf = [0u8; FIRST_READ];
        let mut rb = ReadBuf::new(&mut buf);
        Pin::new(&mut *client)
            .poll_read(cx, &mut rb)
            .map_ok(|()| rb.filled().to_vec())
    });
    match tokio::time::timeout(limit, read).await {
        Ok(Ok(bytes)) if !bytes.is_empty() => FirstByte::Data(bytes),
        Ok(_) => FirstByte::Closed,
        Err(_) => FirstByte::Timeout,
    }
}

fn end_word(end: EndReason) -> &'static str {
    match end {
        EndReason::Closed => "closed",
        EndReason::IdleTimeout => "session timeout",
        EndReason::Cancelled => "shutdown",
        EndReason::ErrorA => "client error",
        EndReason::ErrorB => "host error",
    }
}

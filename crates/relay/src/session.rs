//! One relayed TCP session: pick candidates, connect (retrying the same host `retry` times, then
//! the next host in the same order, all before any byte is forwarded), optional PROXY v2
//! header, then copy both ways until done. The stream itself is never read or changed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conf::relayd::LogConnections;
use net::copy::{pump, CopyOpts, EndReason};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::select::Selector;
use crate::table::{OpenGuard, TableRt};

/// Lower bound of the outgoing connect timeout. The connect timeout is the table's check
/// timeout, but at least this: relayd's 200 ms check default is far too short for a connect
/// that may need one SYN retransmission.
pub(crate) const MIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A `forward to <table>` line at run time.
#[derive(Debug)]
pub(crate) struct ForwardRt {
    pub table: Arc<TableRt>,
    pub selector: Selector,
    pub connect_timeout: Duration,
}

/// Counters of one relay.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub open: AtomicU64,
    pub total: AtomicU64,
    pub failed: AtomicU64,
    pub retries: AtomicU64,
}

/// A relay block at run time, shared by its accept loops and sessions.
#[derive(Debug)]
pub(crate) struct RelayRt {
    pub name: String,
    pub disabled: bool,
    pub forwards: Vec<ForwardRt>,
    pub idle_timeout: Option<Duration>,
    pub send_proxy_v2: bool,
    pub log: LogConnections,
    pub counters: Counters,
}

/// Keeps `open` counted while the session lives.
struct OpenCount<'a>(&'a AtomicU64);

impl Drop for OpenCount<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one accepted client. `listen` is the configured listen address (the hash input,
/// identical on every relay sharing the config); `cancel` ends the copy (hard stop).
pub(crate) async fn serve(
    relay: Arc<RelayRt>,
    client: TcpStream,
    peer: SocketAddr,
    listen: SocketAddr,
    cancel: CancellationToken,
) {
    let c = &relay.counters;
    let id = c.total.fetch_add(1, Ordering::Relaxed) + 1;
    c.open.fetch_add(1, Ordering::Relaxed);
    let _open = OpenCount(&c.open);
    if relay.disabled {
        return;
    }
    let start = Instant::now();
    let (backend, table, host) = match connect_some(&relay, peer, listen).await {
        Ok(found) => found,
        Err(why) => {
            c.failed.fetch_add(1, Ordering::Relaxed);
            if relay.log != LogConnections::Off {
                tracing::info!("relay {}, session {id} {peer}: {why}", relay.name);
            }
            return;
        }
    };
    let host_name = table
        .hosts
        .get(host)
        .map_or("?", |h| h.name.as_str())
        .to_string();
    let _on_host = OpenGuard::new(table, host);
    let mut backend = backend;
    if relay.send_proxy_v2 {
        let dst = client.local_addr().unwrap_or(listen);
        if let Err(e) = backend.write_all(&net::proxy::encode_v2(peer, dst)).await {
            c.failed.fetch_add(1, Ordering::Relaxed);
            if relay.log != LogConnections::Off {
                tracing::info!(
                    "relay {}, session {id} {peer} -> {host_name}: proxy header failed: {e}",
                    relay.name
                );
            }
            return;
        }
    }
    let opts = CopyOpts {
        idle_timeout: relay.idle_timeout,
        cancel: Some(cancel),
    };
    // Only a log line needs the host's address: no getpeername(2) per session otherwise.
    let host_addr = if relay.log == LogConnections::Off {
        None
    } else {
        backend.peer_addr().ok()
    };
    let report = pump(client, backend, opts).await;
    let is_error = matches!(report.end, EndReason::ErrorA | EndReason::ErrorB);
    if relay.log == LogConnections::All || (relay.log == LogConnections::Errors && is_error) {
        tracing::info!(
            "relay {}, session {id} {peer} -> {host_name} ({}), {} bytes out, {} bytes in, {:.3}s, {}",
            relay.name,
            host_addr.map_or_else(|| "?".to_string(), |a| a.to_string()),
            report.a_to_b,
            report.b_to_a,
            start.elapsed().as_secs_f64(),
            end_word(report.end)
        );
    }
}

/// Tries the candidates of the first table with an up host, then those of later (backup)
/// tables; each host `1 + retry` times. Returns the stream, its table and host index, or why
/// there is none.
async fn connect_some(
    relay: &RelayRt,
    peer: SocketAddr,
    listen: SocketAddr,
) -> Result<(TcpStream, Arc<TableRt>, usize), &'static str> {
    let mut attempts = 0u64;
    for fwd in &relay.forwards {
        let table = &fwd.table;
        if table.disabled {
            continue;
        }
        let order = fwd
            .selector
            .order(&table.keys, &table.view(), peer.ip(), listen);
        for idx in order {
            let Some(host) = table.hosts.get(idx) else {
                continue;
            };
            for _ in 0..=host.retry {
                if attempts > 0 {
                    relay.counters.retries.fetch_add(1, Ordering::Relaxed);
                }
                attempts += 1;
                match net::sock::connect_tcp(host.addr, None, fwd.connect_timeout).await {
                    Ok(s) => return Ok((s, table.clone(), idx)),
                    Err(e) => tracing::debug!(
                        "relay {}: connect to {} ({}) failed: {e}",
                        relay.name,
                        host.name,
                        host.addr
                    ),
                }
            }
        }
    }
    Err(if attempts == 0 {
        "no active hosts"
    } else {
        "connect to every active host failed"
    })
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

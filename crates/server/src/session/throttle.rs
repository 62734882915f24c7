//! `bandwidth:`: moving a TCP session's bytes through the shared buckets of the rules it
//! matched. Used only for sessions under such a rule; the others keep `hasocks_net::copy::pump`
//! (splice) untouched. A read is at most [`Bucket::chunk`] bytes and is paid for before it
//! is written, so all sessions of a rule together move at most the rate (plus one burst).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hasocks_net::copy::{CopyOpts, CopyReport, EndReason};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::limits::{Bucket, RuleState};

/// Pays for `n` bytes in every bucket.
pub(crate) async fn pay(states: &[Arc<RuleState>], n: usize) {
    for b in states.iter().filter_map(|s| s.bucket()) {
        b.take(n).await;
    }
}

/// The smallest chunk of the buckets.
fn chunk(states: &[Arc<RuleState>]) -> usize {
    states
        .iter()
        .filter_map(|s| s.bucket())
        .map(Bucket::chunk)
        .min()
        .unwrap_or(16 * 1024)
}

/// Which end of a direction broke.
enum Broke {
    Read,
    Write,
}

/// One direction: read, pay, write, until EOF (then shut the writer down).
async fn direction(
    mut r: impl AsyncRead + Unpin,
    mut w: impl AsyncWrite + Unpin,
    states: &[Arc<RuleState>],
    moved: &AtomicU64,
    last: &AtomicU64,
    epoch: Instant,
) -> Result<(), Broke> {
    let mut buf = vec![0u8; chunk(states)];
    loop {
        let n = r.read(&mut buf).await.map_err(|_| Broke::Read)?;
        if n == 0 {
            return w.shutdown().await.map_err(|_| Broke::Write);
        }
        pay(states, n).await;
        w.write_all(buf.get(..n).unwrap_or_default())
            .await
            .map_err(|_| Broke::Write)?;
        moved.fetch_add(n as u64, Ordering::Relaxed);
        last.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// Relays `a` (client) and `b` (far side) both ways under the buckets of `states`, with
/// the same ends and report as `hasocks_net::copy::pump`.
pub(crate) async fn pump(
    a: TcpStream,
    b: TcpStream,
    states: &[Arc<RuleState>],
    opts: CopyOpts,
) -> CopyReport {
    let (ar, aw) = a.into_split();
    let (br, bw) = b.into_split();
    let (ab, ba, last) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let epoch = Instant::now();
    let both = async {
        let (x, y) = tokio::join!(
            direction(ar, bw, states, &ab, &last, epoch),
            direction(br, aw, states, &ba, &last, epoch)
        );
        match (x, y) {
            (Err(Broke::Read), _) | (_, Err(Broke::Write)) => EndReason::ErrorA,
            (Err(Broke::Write), _) | (_, Err(Broke::Read)) => EndReason::ErrorB,
            _ => EndReason::Closed,
        }
    };
    let idle = async {
        let Some(limit) = opts.idle_timeout else {
            return std::future::pending().await;
        };
        loop {
            let since = Duration::from_millis(last.load(Ordering::Relaxed));
            let due = epoch + since + limit;
            if Instant::now() >= due {
                return EndReason::IdleTimeout;
            }
            tokio::time::sleep_until(due.into()).await;
        }
    };
    let cancel = async {
        match &opts.cancel {
            Some(t) => {
                t.cancelled().await;
                EndReason::Cancelled
            }
            None => std::future::pending().await,
        }
    };
    let end = tokio::select! {
        e = both => e,
        e = idle => e,
        e = cancel => e,
    };
    CopyReport {
        a_to_b: ab.load(Ordering::Relaxed),
        b_to_a: ba.load(Ordering::Relaxed),
        end,
    }
}

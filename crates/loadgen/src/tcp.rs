//! The TCP loads: bulk upload on a few streams, whole sessions in a loop, and sessions opened
//! and held. Buffers are allocated once per worker; a failure is counted, never fatal.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout_at, Instant};

use crate::report::{Errors, Idle, Sessions, Throughput};
use crate::zerocopy::Source;
use crate::{Route, SessionError};

/// Uploads on `streams` streams for `duration`. With `sink` (our own target's counter) the
/// bytes are counted where they arrive, else where they were written. `copy` sends through
/// user space instead of sendfile(2).
pub async fn throughput(
    route: &Route,
    streams: usize,
    duration: Duration,
    copy: bool,
    sink: Option<Arc<AtomicU64>>,
) -> Throughput {
    let mut open = Vec::with_capacity(streams);
    let mut errors = Errors::default();
    for _ in 0..streams.max(1) {
        match route.open().await {
            Ok(s) => open.push(s),
            Err(e) => errors.add(e),
        }
    }
    let n = open.len();
    let before = sink.as_ref().map_or(0, |c| c.load(Ordering::Relaxed));
    let start = Instant::now();
    let end = start + duration;
    let source = if copy {
        None
    } else {
        Source::new().ok().map(Arc::new)
    };
    let mut tasks = JoinSet::new();
    for s in open {
        tasks.spawn(upload(s, source.clone(), end));
    }
    let mut written = 0u64;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(k)) => written += k,
            Ok(Err((e, k))) => {
                written += k;
                errors.add(e);
            }
            Err(e) => errors.add(e.into()),
        }
    }
    // Bytes that reached the target, when the target is ours; else bytes we wrote.
    let (bytes, counted) = match &sink {
        Some(c) => (
            c.load(Ordering::Relaxed).saturating_sub(before),
            "received by target",
        ),
        None => (written, "written by client"),
    };
    Throughput {
        via: route.label(),
        streams: n,
        seconds: start.elapsed().as_secs_f64(),
        bytes,
        counted,
        errors,
    }
}

/// One stream's upload until `end`: sendfile(2) from `source`, else write(2) from a buffer.
async fn upload(
    mut s: TcpStream,
    source: Option<Arc<Source>>,
    end: Instant,
) -> Result<u64, (SessionError, u64)> {
    if let Some(src) = source {
        return src.send_until(&s, end).await;
    }
    let buf = vec![0x5au8; 128 * 1024];
    let mut sent = 0u64;
    loop {
        tokio::select! {
            _ = sleep_until(end) => return Ok(sent),
            r = s.write(&buf) => match r {
                Ok(0) => return Err((SessionError::Closed, sent)),
                Ok(k) => sent += k as u64,
                Err(e) => return Err((SessionError::Io("write", e), sent)),
            },
        }
    }
}

/// Sends `out` and expects it back within the route's timeout.
async fn echo(
    route: &Route,
    s: &mut TcpStream,
    out: &[u8],
    back: &mut [u8],
) -> Result<(), SessionError> {
    timeout_at(Instant::now() + route.timeout, async {
        s.write_all(out)
            .await
            .map_err(|e| SessionError::Io("write", e))?;
        s.read_exact(back)
            .await
            .map_err(|e| SessionError::Io("read", e))?;
        Ok(())
    })
    .await
    .map_err(|_| SessionError::Timeout("echo"))?
}

/// One connect + handshake + CONNECT + echo + close.
pub async fn one_session(route: &Route, out: &[u8], back: &mut [u8]) -> Result<(), SessionError> {
    let mut s = route.open().await?;
    echo(route, &mut s, out, back).await?;
    if back != out {
        return Err(SessionError::EchoMismatch);
    }
    Ok(())
}

fn new_hist() -> Histogram<u64> {
    // Constant bounds (1 us .. 1 h in microseconds, 3 digits): no input can make this fail.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant histogram bounds are valid")
}

/// `concurrency` workers running [`one_session`] in a loop for `duration`, each with its own
/// `payload`-byte message.
pub async fn sessions(
    route: &Arc<Route>,
    concurrency: usize,
    payload: usize,
    duration: Duration,
) -> Sessions {
    let (concurrency, payload) = (concurrency.max(1), payload.max(1));
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = JoinSet::new();
    for w in 0..concurrency {
        let route = route.clone();
        let mut out = vec![0u8; payload];
        hasocks_probe::fill_random(&mut out);
        if let Some(b) = out.first_mut() {
            *b = w as u8; // distinct payloads per worker
        }
        tasks.spawn(async move {
            let mut back = vec![0u8; out.len()];
            let (mut hist, mut errors) = (new_hist(), Errors::default());
            while Instant::now() < end {
                let t0 = Instant::now();
                match one_session(&route, &out, &mut back).await {
                    Ok(()) => hist.saturating_record(t0.elapsed().as_micros() as u64),
                    Err(e) => errors.add(e),
                }
            }
            (hist, errors)
        });
    }
    let (mut hist, mut errors) = (new_hist(), Errors::default());
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok((h, e)) => {
                let _ = hist.add(&h);
                errors.merge(e);
            }
            Err(e) => errors.add(e.into()),
        }
    }
    Sessions {
        via: route.label(),
        concurrency,
        payload,
        seconds: start.elapsed().as_secs_f64(),
        sessions: hist.len(),
        latency_us: [
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.99),
            hist.max(),
        ],
        errors,
    }
}

/// Opens `want` sessions, `concurrency` at a time, each echoing `payload` bytes once, and
/// returns them open (to hold while someone reads the server's memory) with the report.
pub async fn idle(
    route: &Arc<Route>,
    want: usize,
    concurrency: usize,
    payload: usize,
) -> (Vec<TcpStream>, Idle) {
    let nofile_limit = raise_nofile();
    let mut held = Vec::with_capacity(want);
    let mut errors = Errors::default();
    let mut tasks = JoinSet::new();
    let out = vec![0x42u8; payload.max(1)];
    let mut launched = 0usize;
    let start = Instant::now();
    while launched < want || !tasks.is_empty() {
        while launched < want && tasks.len() < concurrency.max(1) {
            let (route, out) = (route.clone(), out.clone());
            tasks.spawn(async move {
                let mut s = route.open().await?;
                let mut back = vec![0u8; out.len()];
                echo(&route, &mut s, &out, &mut back).await?;
                Ok::<_, SessionError>(s)
            });
            launched += 1;
        }
        match tasks.join_next().await {
            Some(Ok(Ok(s))) => held.push(s),
            Some(Ok(Err(e))) => errors.add(e),
            Some(Err(e)) => errors.add(e.into()),
            None => break,
        }
    }
    let report = Idle {
        via: route.label(),
        requested: want,
        open: held.len(),
        open_seconds: start.elapsed().as_secs_f64(),
        nofile_limit,
        errors,
    };
    (held, report)
}

/// Raises RLIMIT_NOFILE as far as allowed (to 65536 if we may raise the hard limit, else to
/// the hard limit); returns the soft limit in force.
pub fn raise_nofile() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    let want = hard.max(65_536);
    if setrlimit(Resource::RLIMIT_NOFILE, want, want).is_ok() {
        return want;
    }
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn one_session_detects_a_non_echoing_target() {
        // A target that answers with different bytes.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut b = [0u8; 4];
                if s.read_exact(&mut b).await.is_ok() {
                    let _ = s.write_all(b"nope").await;
                }
            }
        });
        let route = Route::direct(addr, Duration::from_secs(5));
        let mut back = [0u8; 4];
        let r = one_session(&route, b"ping", &mut back).await;
        assert!(matches!(r, Err(SessionError::EchoMismatch)), "{r:?}");
    }

    #[tokio::test]
    async fn idle_sessions_stay_open_until_dropped() {
        let target = crate::target::start(crate::target::Target::Echo, Default::default(), None)
            .await
            .unwrap();
        let route = Arc::new(Route::direct(target, Duration::from_secs(5)));
        let (mut held, report) = idle(&route, 3, 2, 8).await;
        assert_eq!((held.len(), report.open, report.errors.count), (3, 3, 0));
        let mut back = [0u8; 4];
        for s in &mut held {
            echo(&route, s, b"more", &mut back).await.unwrap();
            assert_eq!(&back, b"more");
        }
    }
}

//! The admin HTTP server: hyper over a listener of its own, on a thread and runtime of its
//! own, with a cap on connections and timeouts on every request; beside it on that runtime,
//! the sampler that fills the page's history.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::history::{History, SAMPLE_INTERVAL};
use crate::{Readiness, Source};

/// The history shared by the sampler and the page.
type Shared = Arc<Mutex<History>>;

fn lock(h: &Mutex<History>) -> MutexGuard<'_, History> {
    h.lock().unwrap_or_else(|p| p.into_inner())
}

/// How much an admin client may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; more wait in the listen backlog. High, so that idle
    /// clients (closed at `header_timeout`) do not make a health check wait behind them.
    pub max_connections: usize,
    /// Time to send a request's head (slow or idle clients are closed after it).
    pub header_timeout: Duration,
    /// Time a connection may live, whatever it does.
    pub connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(2),
            connection_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the admin listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The address could not be bound.
    #[error("admin listener on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// Its thread or runtime could not be started.
    #[error("admin listener: cannot start its thread: {0}")]
    Thread(io::Error),
}

/// A running admin listener; it stops when dropped.
#[derive(Debug)]
pub struct AdminHandle {
    addr: SocketAddr,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AdminHandle {
    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops and waits until the listening socket is closed (so that another process can
    /// bind the address at once). Blocking.
    pub fn close(mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for AdminHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Binds `addr` and serves `source` there from a thread of its own, sampling it once a
/// second for the page's charts.
pub fn start(
    addr: SocketAddr,
    source: Arc<dyn Source>,
    limits: Limits,
) -> Result<AdminHandle, AdminError> {
    start_sampling_every(addr, source, limits, SAMPLE_INTERVAL)
}

/// [`start`], sampling every `every` instead of once a second (tests, so as not to wait
/// seconds for a chart; the window shown is then 900 times `every`).
pub fn start_sampling_every(
    addr: SocketAddr,
    source: Arc<dyn Source>,
    limits: Limits,
    every: Duration,
) -> Result<AdminHandle, AdminError> {
    // A zero period would make the interval timer panic.
    let every = every.max(Duration::from_millis(1));
    let std = hasocks_net::sock::listen_tcp_std(addr)
        .map_err(|source| AdminError::Bind { addr, source })?;
    let bound = std.local_addr().unwrap_or(addr);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AdminError::Thread)?;
    let stop = CancellationToken::new();
    let token = stop.clone();
    let thread = std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || {
            rt.block_on(async move {
                let history: Shared = Arc::new(Mutex::new(History::new(every)));
                tokio::spawn(sample(source.clone(), history.clone(), token.clone()));
                match tokio::net::TcpListener::from_std(std) {
                    Ok(l) => serve(l, source, history, limits, token).await,
                    Err(e) => tracing::error!("admin listener lost: {e}"),
                }
            })
        })
        .map_err(AdminError::Thread)?;
    Ok(AdminHandle {
        addr: bound,
        stop,
        thread: Some(thread),
    })
}

/// Samples `source` into `history` every interval until `stop`. A late tick is taken late,
/// not twice (the rates use the real time between samples).
async fn sample(source: Arc<dyn Source>, history: Shared, stop: CancellationToken) {
    let every = lock(&history).interval();
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let s = source.sample();
        lock(&history).push(start.elapsed(), s);
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    source: Arc<dyn Source>,
    history: Shared,
    limits: Limits,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut warned = false;
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((s, _)) => {
                warned = false;
                s
            }
            Err(e) => {
                if !warned {
                    tracing::warn!("admin listener: accept failed: {e}; retrying");
                    warned = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (source, history) = (source.clone(), history.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let (source, history) = (source.clone(), history.clone());
                async move { Ok::<_, Infallible>(respond(&req, &*source, &history)) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(limits.connection_timeout, conn).await;
            drop(permit);
        });
    }
}

/// The answer to one request.
fn respond(
    req: &Request<Incoming>,
    source: &dyn Source,
    history: &Mutex<History>,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match req.uri().path() {
        "/" => body(
            StatusCode::OK,
            "text/html; charset=utf-8",
            source.status_html(&lock(history)),
        ),
        "/metrics" => match crate::metrics::encode(source) {
            Ok(m) => body(StatusCode::OK, crate::metrics::CONTENT_TYPE, m),
            Err(_) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "metrics could not be encoded\n",
            ),
        },
        "/status.json" => body(StatusCode::OK, "application/json", source.status_json()),
        "/live" => text(StatusCode::OK, "live\n"),
        "/ready" => match source.ready() {
            Readiness::Ready => text(StatusCode::OK, "ready\n"),
            Readiness::NotReady(why) => body(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                format!("not ready: {why}\n"),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /, /metrics, /status.json, /live, /ready\n",
        ),
    }
}

fn text(status: StatusCode, s: &'static str) -> Response<Full<Bytes>> {
    body(status, "text/plain; charset=utf-8", s.to_string())
}

fn body(status: StatusCode, ctype: &'static str, b: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(b)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    use super::*;
    use crate::history::{HostSample, HostState, Sample};

    /// A daemon whose session counter grows by 5 at every sample and whose host goes down
    /// after the third.
    #[derive(Default)]
    struct Counting(AtomicU64);

    impl Source for Counting {
        fn collector(&self) -> Box<dyn prometheus_client::collector::Collector> {
            Box::new(crate::process::ProcessCollector)
        }
        fn status_html(&self, history: &History) -> String {
            crate::html::page("test", "", &history.section_html())
        }
        fn status_json(&self) -> String {
            "{}".into()
        }
        fn ready(&self) -> Readiness {
            Readiness::Ready
        }
        fn sample(&self) -> Sample {
            let n = self.0.fetch_add(1, Ordering::Relaxed);
            let state = if n < 3 {
                HostState::Up
            } else {
                HostState::Down
            };
            Sample {
                sessions: n * 5,
                hosts: vec![HostSample {
                    name: "pool:1 a&b".into(),
                    state,
                }],
                ..Sample::default()
            }
        }
    }

    fn get(addr: SocketAddr) -> String {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("send");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn the_sampler_fills_the_history_that_the_page_draws() {
        let every = Duration::from_millis(10);
        let a = start_sampling_every(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(Counting::default()),
            Limits::default(),
            every,
        )
        .expect("start");
        let end = Instant::now() + Duration::from_secs(10);
        let page = loop {
            let p = get(a.local_addr());
            if p.contains("class=\"state-down\"") || Instant::now() > end {
                break p;
            }
            std::thread::sleep(every);
        };
        assert!(page.contains("<h2>last 9 seconds</h2>"), "{page}");
        assert!(page.contains("<polyline class=\"series\" data-series=\"sessions\""));
        assert!(
            !page.contains("data-series=\"sessions\" data-peak=\"0\""),
            "{page}"
        );
        let strip = page
            .lines()
            .find(|l| l.contains("data-host=\"pool:1 a&amp;b\""))
            .unwrap_or_else(|| panic!("no strip: {page}"));
        assert!(
            strip.contains("state-up") && strip.contains("state-down"),
            "{strip}"
        );
        a.close();
    }
}

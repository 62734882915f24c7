//! `hasocks bench`: a load generator for any SOCKS5 server or relay.
//!
//! Three modes: `throughput` (bulk upload on N streams), `sessions` (C
//! workers doing connect + handshake + CONNECT + echo + close in a loop) and
//! `idle` (open N sessions and hold them, so a script can read the server's
//! memory). `--direct` skips SOCKS for the reference line. One runtime,
//! buffers allocated once per worker; errors are counted, never fatal.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use probe::{socks5_over, Auth};
use socks_wire::TargetAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout_at, Instant};

use super::check::{resolve, split_host_port};

/// What to measure.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Bulk upload on `--streams` streams for `--duration` seconds.
    Throughput,
    /// Full sessions per second with `--concurrency` workers.
    Sessions,
    /// Open `--sessions` sessions and hold them open.
    Idle,
}

/// Options of `hasocks bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// SOCKS5 server or relay as HOST:PORT (not needed with --direct).
    #[arg(short = 's', long = "server", value_name = "HOST:PORT")]
    pub server: Option<String>,
    /// No SOCKS: connect straight to the target (the reference line).
    #[arg(long)]
    pub direct: bool,
    /// What to measure.
    #[arg(long, value_enum, default_value = "sessions")]
    pub mode: Mode,
    /// Streams for throughput mode.
    #[arg(long, default_value_t = 8)]
    pub streams: usize,
    /// Concurrent workers (sessions mode) or sessions opened at once (idle mode).
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// Seconds to run (throughput and sessions modes).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Sessions to open and hold (idle mode).
    #[arg(long, default_value_t = 10_000)]
    pub sessions: usize,
    /// Echo payload bytes per session (sessions and idle modes).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Target HOST:PORT (an echo server for sessions/idle, anything that
    /// reads for throughput); default: one started in-process on 127.0.0.1:0.
    #[arg(long, value_name = "HOST:PORT")]
    pub target: Option<String>,
    /// Idle mode: seconds to hold the sessions (default: until Ctrl-C or SIGTERM).
    #[arg(long)]
    pub hold: Option<f64>,
    /// RFC 1929 credentials USER:PASS.
    #[arg(short = 'U', value_name = "USER:PASS")]
    pub credentials: Option<String>,
    /// Per-session timeout in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// Source address of the connections bench opens (to the SOCKS server, or to the target
    /// with --direct); default: the kernel's choice. Lets one machine play many clients for a
    /// source-hash relay, or keep two loads' TIME_WAIT sockets apart.
    #[arg(long, value_name = "IP")]
    pub source: Option<IpAddr>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Throughput mode: move the payload through user space (write/read) instead of
    /// sendfile/splice; the generator then needs far more CPU.
    #[arg(long)]
    pub copy: bool,
}

/// Where sessions go and how.
struct Route {
    proxy: Option<SocketAddr>,
    target: TargetAddr,
    target_addr: Option<SocketAddr>,
    auth: Option<Auth>,
    timeout: Duration,
    source: Option<IpAddr>,
}

impl Route {
    /// A connected stream to the target, through the proxy unless direct.
    async fn open(&self) -> Result<TcpStream, String> {
        let deadline = Instant::now() + self.timeout;
        let to = match (self.proxy, self.target_addr) {
            (Some(p), _) => p,
            (None, Some(t)) => t,
            (None, None) => return Err("no target address".into()),
        };
        let s = match self.source {
            None => timeout_at(deadline, TcpStream::connect(to))
                .await
                .map_err(|_| "timeout during connect".to_owned())?,
            Some(ip) => {
                net::sock::connect_tcp(to, Some(ip), deadline.duration_since(Instant::now())).await
            }
        }
        .map_err(|e| format!("connect failed: {e}"))?;
        if self.proxy.is_none() {
            let _ = s.set_nodelay(true);
            return Ok(s);
        }
        socks5_over(s, &self.target, self.auth.as_ref(), deadline, None)
            .await
            .map(|(s, _)| s)
            .map_err(|e| e.short())
    }

    fn label(&self) -> String {
        match self.proxy {
            Some(p) => format!("socks5 {p}"),
            None => "direct".into(),
        }
    }
}

/// Runs the benchmark; exit 0 when it ran (errors are reported, not fatal),
/// 1 when it could not start or no session at all succeeded.
pub async fn run(args: BenchArgs) -> anyhow::Result<i32> {
    let sink_bytes = Arc::new(AtomicU64::new(0));
    let (target, target_addr) = match &args.target {
        Some(t) => {
            let (host, port) = split_host_port(t, None)?;
            let addr = resolve(&host, port).await.ok();
            let ta = match host.parse() {
                Ok(ip) => TargetAddr::Ip(SocketAddr::new(ip, port)),
                Err(_) => TargetAddr::domain(host, port).map_err(|e| anyhow::anyhow!("{e}"))?,
            };
            (ta, addr)
        }
        None => {
            let a = start_target(args.mode, args.copy, sink_bytes.clone()).await?;
            (TargetAddr::Ip(a), Some(a))
        }
    };
    let proxy = match (&args.server, args.direct) {
        (_, true) => None,
        (Some(s), false) => {
            let (h, p) = split_host_port(s, Some(1080))?;
            Some(resolve(&h, p).await?)
        }
        (None, false) => anyhow::bail!("give the SOCKS server with -s HOST:PORT, or --direct"),
    };
    let auth = match &args.credentials {
        None => None,
        Some(c) => {
            let (u, p) = c
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("-U wants USER:PASS"))?;
            Some(Auth {
                user: u.into(),
                pass: p.into(),
            })
        }
    };
    if let (Some(ip), Some(to)) = (args.source, proxy.or(target_addr)) {
        if ip.is_ipv4() != to.is_ipv4() {
            anyhow::bail!("--source {ip} and {to} are of different address families");
        }
    }
    let route = Arc::new(Route {
        proxy,
        target,
        target_addr,
        auth,
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
        source: args.source,
    });
    let duration = Duration::from_secs_f64(args.duration.clamp(0.1, 86_400.0));
    let counted_at_target = args.target.is_none();
    match args.mode {
        Mode::Throughput => {
            throughput(
                &args,
                &route,
                duration,
                counted_at_target.then_some(sink_bytes),
            )
            .await
        }
        Mode::Sessions => sessions(&args, &route, duration).await,
        Mode::Idle => idle(&args, &route).await,
    }
}

/// In-process target: a sink for throughput (counting what arrives), an echo server otherwise.
async fn start_target(
    mode: Mode,
    copy: bool,
    sink_bytes: Arc<AtomicU64>,
) -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                // Out of descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let counter = sink_bytes.clone();
            tokio::spawn(async move {
                if mode == Mode::Throughput && !copy {
                    // Zero-copy discard; a socket splice cannot take falls back to reading.
                    if super::zerocopy::sink(&s, &counter).await.is_ok() {
                        return;
                    }
                }
                if mode == Mode::Throughput {
                    let mut buf = vec![0u8; 256 * 1024];
                    while let Ok(n @ 1..) = s.read(&mut buf).await {
                        counter.fetch_add(n as u64, Ordering::Relaxed);
                    }
                } else {
                    let _ = s.set_nodelay(true);
                    let mut buf = [0u8; 2048];
                    while let Ok(n @ 1..) = s.read(&mut buf).await {
                        let Some(chunk) = buf.get(..n) else { break };
                        if s.write_all(chunk).await.is_err() {
                            break;
                        }
                    }
                }
            });
        }
    });
    Ok(addr)
}

async fn throughput(
    args: &BenchArgs,
    route: &Arc<Route>,
    duration: Duration,
    sink: Option<Arc<AtomicU64>>,
) -> anyhow::Result<i32> {
    let mut streams = Vec::with_capacity(args.streams);
    let mut errors = 0u64;
    let mut first_error = None;
    for _ in 0..args.streams.max(1) {
        match route.open().await {
            Ok(s) => streams.push(s),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let n = streams.len();
    let before = sink.as_ref().map_or(0, |c| c.load(Ordering::Relaxed));
    let start = Instant::now();
    let end = start + duration;
    let source = if args.copy {
        None
    } else {
        super::zerocopy::Source::new().ok().map(Arc::new)
    };
    let mut tasks = JoinSet::new();
    for mut s in streams {
        let source = source.clone();
        tasks.spawn(async move {
            if let Some(src) = source {
                return src.send_until(&s, end).await;
            }
            let buf = vec![0x5au8; 128 * 1024];
            let mut sent = 0u64;
            loop {
                tokio::select! {
                    _ = sleep_until(end) => return Ok(sent),
                    r = s.write(&buf) => match r {
                        Ok(0) => return Err(("stream closed".to_owned(), sent)),
                        Ok(k) => sent += k as u64,
                        Err(e) => return Err((format!("write: {e}"), sent)),
                    },
                }
            }
        });
    }
    let mut written = 0u64;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(k)) => written += k,
            Ok(Err((e, k))) => {
                written += k;
                errors += 1;
                first_error.get_or_insert(e);
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    // Bytes that reached the target, when the target is ours; else bytes we wrote.
    let (bytes, counted) = match &sink {
        Some(c) => (
            c.load(Ordering::Relaxed).saturating_sub(before),
            "received by target",
        ),
        None => (written, "written by client"),
    };
    let mbs = bytes as f64 / secs / 1e6;
    if args.json {
        println!(
            "{{\"mode\":\"throughput\",\"via\":\"{}\",\"direction\":\"upload\",\"streams\":{n},\"seconds\":{secs:.3},\"bytes\":{bytes},\"counted\":\"{counted}\",\"mb_per_s\":{mbs:.2},\"mbit_per_s\":{:.2},\"errors\":{errors}}}",
            route.label(),
            mbs * 8.0
        );
    } else {
        println!(
            "throughput via {}: {n} streams, {secs:.1} s, upload (client -> target, {counted}): {mbs:.1} MB/s ({:.0} Mbit/s), errors {errors}",
            route.label(),
            mbs * 8.0
        );
    }
    report_first_error(first_error);
    Ok(if n == 0 { 1 } else { 0 })
}

/// One connect + handshake + CONNECT + echo + close.
async fn one_session(route: &Route, out: &[u8], back: &mut [u8]) -> Result<(), String> {
    let mut s = route.open().await?;
    let deadline = Instant::now() + route.timeout;
    timeout_at(deadline, async {
        s.write_all(out).await.map_err(|e| format!("write: {e}"))?;
        s.read_exact(back).await.map_err(|e| format!("read: {e}"))?;
        Ok::<_, String>(())
    })
    .await
    .map_err(|_| "timeout during echo".to_owned())??;
    if back != out {
        return Err("echo mismatch".into());
    }
    Ok(())
}

struct WorkerResult {
    hist: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

fn new_hist() -> Histogram<u64> {
    // Constant bounds (1 us .. 1 h in microseconds, 3 digits): no input can make this fail.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant histogram bounds are valid")
}

async fn sessions(args: &BenchArgs, route: &Arc<Route>, duration: Duration) -> anyhow::Result<i32> {
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = JoinSet::new();
    for w in 0..args.concurrency.max(1) {
        let route = route.clone();
        let mut out = vec![0u8; args.payload.max(1)];
        probe::fill_random(&mut out);
        if let Some(b) = out.first_mut() {
            *b = w as u8; // distinct payloads per worker
        }
        tasks.spawn(async move {
            let mut back = vec![0u8; out.len()];
            let mut r = WorkerResult {
                hist: new_hist(),
                errors: 0,
                first_error: None,
            };
            while Instant::now() < end {
                let t0 = Instant::now();
                match one_session(&route, &out, &mut back).await {
                    Ok(()) => r.hist.saturating_record(t0.elapsed().as_micros() as u64),
                    Err(e) => {
                        r.errors += 1;
                        r.first_error.get_or_insert(e);
                    }
                }
            }
            r
        });
    }
    let mut hist = new_hist();
    let (mut errors, mut first_error) = (0u64, None);
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(w) => {
                let _ = hist.add(&w.hist);
                errors += w.errors;
                if let Some(e) = w.first_error {
                    first_error.get_or_insert(e);
                }
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let ok = hist.len();
    let rate = ok as f64 / secs;
    let (p50, p99, max) = (
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.max(),
    );
    if args.json {
        println!(
            "{{\"mode\":\"sessions\",\"via\":\"{}\",\"concurrency\":{},\"payload\":{},\"seconds\":{secs:.3},\"sessions\":{ok},\"sessions_per_s\":{rate:.1},\"errors\":{errors},\"p50_us\":{p50},\"p99_us\":{p99},\"max_us\":{max}}}",
            route.label(),
            args.concurrency.max(1),
            args.payload.max(1)
        );
    } else {
        println!(
            "sessions via {}: {} workers, {secs:.1} s: {ok} sessions ({rate:.0}/s), errors {errors}, latency p50 {:.3} ms p99 {:.3} ms max {:.3} ms",
            route.label(),
            args.concurrency.max(1),
            p50 as f64 / 1000.0,
            p99 as f64 / 1000.0,
            max as f64 / 1000.0
        );
    }
    report_first_error(first_error);
    Ok(if ok == 0 { 1 } else { 0 })
}

async fn idle(args: &BenchArgs, route: &Arc<Route>) -> anyhow::Result<i32> {
    let limit = raise_nofile();
    let want = args.sessions;
    let mut held = Vec::with_capacity(want);
    let (mut errors, mut first_error) = (0u64, None);
    let mut tasks = JoinSet::new();
    let payload = vec![0x42u8; args.payload.max(1)];
    let mut launched = 0usize;
    let start = Instant::now();
    while launched < want || !tasks.is_empty() {
        while launched < want && tasks.len() < args.concurrency.max(1) {
            let route = route.clone();
            let out = payload.clone();
            tasks.spawn(async move {
                let mut s = route.open().await?;
                let mut back = vec![0u8; out.len()];
                let deadline = Instant::now() + route.timeout;
                timeout_at(deadline, async {
                    s.write_all(&out).await.map_err(|e| format!("write: {e}"))?;
                    s.read_exact(&mut back)
                        .await
                        .map_err(|e| format!("read: {e}"))
                })
                .await
                .map_err(|_| "timeout during echo".to_owned())??;
                Ok::<_, String>(s)
            });
            launched += 1;
        }
        match tasks.join_next().await {
            Some(Ok(Ok(s))) => held.push(s),
            Some(Ok(Err(e))) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
            Some(Err(e)) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
            }
            None => break,
        }
    }
    let open_secs = start.elapsed().as_secs_f64();
    use std::io::Write as _;
    println!("ready {}", held.len());
    if args.json {
        println!(
            "{{\"mode\":\"idle\",\"via\":\"{}\",\"requested\":{want},\"open\":{},\"errors\":{errors},\"open_seconds\":{open_secs:.3},\"nofile_limit\":{limit}}}",
            route.label(),
            held.len()
        );
    } else {
        println!(
            "idle via {}: {} of {want} sessions open in {open_secs:.1} s, errors {errors} (RLIMIT_NOFILE {limit})",
            route.label(),
            held.len()
        );
    }
    report_first_error(first_error);
    let _ = std::io::stdout().flush();
    wait_for_release(args.hold).await;
    let n = held.len();
    drop(held);
    Ok(if n == 0 { 1 } else { 0 })
}

/// Waits for `hold` seconds, or for Ctrl-C / SIGTERM when `hold` is None.
async fn wait_for_release(hold: Option<f64>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let term_recv = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    let timer = async {
        match hold {
            Some(s) => tokio::time::sleep(Duration::from_secs_f64(s.clamp(0.0, 1e9))).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term_recv => {}
        _ = timer => {}
    }
}

/// Raises RLIMIT_NOFILE as far as allowed (to 65536 if we may raise the
/// hard limit, else to the hard limit); returns the soft limit in force.
fn raise_nofile() -> u64 {
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

fn report_first_error(e: Option<String>) {
    if let Some(e) = e {
        eprintln!("hasocks bench: first error: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(mode: Mode) -> BenchArgs {
        BenchArgs {
            server: None,
            direct: true,
            mode,
            streams: 2,
            concurrency: 2,
            duration: 0.2,
            sessions: 5,
            payload: 16,
            target: None,
            hold: Some(0.0),
            credentials: None,
            timeout_ms: 2000,
            source: None,
            json: true,
            copy: false,
        }
    }

    #[tokio::test]
    async fn direct_sessions_against_own_echo_target_succeed() {
        assert_eq!(run(args(Mode::Sessions)).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn direct_throughput_and_idle_run_to_completion() {
        assert_eq!(run(args(Mode::Throughput)).await.unwrap(), 0);
        assert_eq!(run(args(Mode::Idle)).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn dead_proxy_is_counted_as_errors_not_a_panic() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = l.local_addr().unwrap();
        drop(l);
        for mode in [Mode::Sessions, Mode::Throughput, Mode::Idle] {
            let mut a = args(mode);
            a.direct = false;
            a.server = Some(dead.to_string());
            assert_eq!(run(a).await.unwrap(), 1);
        }
    }

    #[tokio::test]
    async fn missing_server_without_direct_is_an_error() {
        let mut a = args(Mode::Sessions);
        a.direct = false;
        assert!(run(a).await.is_err());
    }

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
        let route = Route {
            proxy: None,
            target: TargetAddr::Ip(addr),
            target_addr: Some(addr),
            auth: None,
            timeout: Duration::from_secs(5),
            source: None,
        };
        let mut back = [0u8; 4];
        let r = one_session(&route, b"ping", &mut back).await;
        assert_eq!(r, Err("echo mismatch".to_owned()));
    }
}

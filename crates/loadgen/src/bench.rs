//! `hasocks bench`: one run of one load against a SOCKS5 server or relay (or, `--direct`,
//! straight to the target), its report printed as a line of text or one JSON object.

use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use hasocks_conf::HostPort;
use hasocks_probe::{resolve, resolve_parsed, target_of, Auth};
use hasocks_socks_wire::TargetAddr;

use crate::report::Report;
use crate::target::{self, Target};
use crate::{tcp, udp, Route, SetupError};

/// What to measure.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Bulk upload on `--streams` streams for `--duration` seconds.
    Throughput,
    /// Full sessions per second with `--concurrency` workers.
    Sessions,
    /// Open `--sessions` sessions and hold them open.
    Idle,
    /// UDP ASSOCIATE: `--concurrency` associations, each keeping `--window` datagrams of
    /// `--payload` bytes in flight to its own echo server, for `--duration` seconds.
    Udp,
}

/// One run, as `hasocks bench` takes it (addresses still as text: see [`run`]).
#[derive(Debug, Clone)]
pub struct Options {
    /// The SOCKS5 server or relay, `HOST:PORT` (port 1080 when omitted).
    pub server: Option<String>,
    /// No SOCKS: straight to the target.
    pub direct: bool,
    /// What to measure.
    pub mode: Mode,
    /// Streams (throughput).
    pub streams: usize,
    /// Workers (sessions), sessions opened at once (idle), associations (udp).
    pub concurrency: usize,
    /// Seconds to run (all but idle).
    pub duration: f64,
    /// Sessions to open and hold (idle).
    pub sessions: usize,
    /// Echo bytes per session, or payload bytes per datagram (udp).
    pub payload: usize,
    /// The target `HOST:PORT`; `None`: one started in-process.
    pub target: Option<String>,
    /// Idle: seconds to hold the sessions (`None`: until Ctrl-C or SIGTERM).
    pub hold: Option<f64>,
    /// RFC 1929 credentials `USER:PASS`.
    pub credentials: Option<String>,
    /// Per-session timeout in milliseconds.
    pub timeout_ms: u64,
    /// Source address of the connections.
    pub source: Option<IpAddr>,
    /// Where the in-process target listens (default 127.0.0.1).
    pub target_bind: Option<IpAddr>,
    /// Print JSON instead of text.
    pub json: bool,
    /// Throughput through user space instead of sendfile/splice.
    pub copy: bool,
    /// Udp: datagrams in flight per association.
    pub window: usize,
    /// Udp: most datagrams per receive or send call.
    pub batch: usize,
}

/// Runs one load and prints its report to `out` (the first failure goes to `err`); returns
/// whether anything succeeded. A failing session is counted, not an error: an error is a load
/// that could not start.
pub async fn run(
    o: &Options,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<bool, SetupError> {
    let report = match o.mode {
        Mode::Udp => Report::Udp(udp_load(o).await?.run().await),
        Mode::Throughput => {
            let (route, sink) = route(o).await?;
            Report::Throughput(tcp::throughput(&route, o.streams, duration(o), o.copy, sink).await)
        }
        Mode::Sessions => {
            let route = Arc::new(route(o).await?.0);
            Report::Sessions(tcp::sessions(&route, o.concurrency, o.payload, duration(o)).await)
        }
        Mode::Idle => {
            let route = Arc::new(route(o).await?.0);
            let (held, report) = tcp::idle(&route, o.sessions, o.concurrency, o.payload).await;
            // Scripts wait for "ready" before they read the server's memory.
            let _ = writeln!(out, "ready {}", held.len());
            let report = Report::Idle(report);
            print(o, &report, out, err);
            wait_for_release(o.hold).await;
            return Ok(report.succeeded());
        }
    };
    print(o, &report, out, err);
    Ok(report.succeeded())
}

fn print(o: &Options, report: &Report, out: &mut dyn Write, err: &mut dyn Write) {
    let _ = match o.json {
        true => writeln!(out, "{}", report.json()),
        false => writeln!(out, "{report}"),
    };
    let _ = out.flush();
    if let Some(e) = &report.errors().first {
        let _ = writeln!(err, "hasocks bench: first error: {e}");
    }
}

fn duration(o: &Options) -> Duration {
    Duration::from_secs_f64(o.duration.clamp(0.1, 86_400.0))
}

/// The UDP load the options ask for: it needs a SOCKS server, and brings its own targets.
async fn udp_load(o: &Options) -> Result<udp::UdpLoad, SetupError> {
    let not_used = |option| SetupError::NotUsed {
        option,
        mode: "udp",
    };
    if o.target.is_some() {
        return Err(not_used("--target"));
    }
    if o.credentials.is_some() {
        return Err(not_used("-U"));
    }
    if o.source.is_some() {
        return Err(not_used("--source"));
    }
    let proxy = match (&o.server, o.direct) {
        (Some(s), false) => resolve(s, Some(1080)).await?,
        _ => return Err(SetupError::NeedsServer("udp")),
    };
    Ok(udp::UdpLoad {
        proxy,
        associations: o.concurrency,
        duration: duration(o),
        size: o.payload,
        window: o.window,
        batch: o.batch,
    })
}

/// The route the options ask for; with our own target, the counter of what it received.
async fn route(o: &Options) -> Result<(Route, Option<Arc<AtomicU64>>), SetupError> {
    let sink = Arc::new(AtomicU64::new(0));
    let (target, target_addr) = match &o.target {
        Some(t) => {
            let hp = HostPort::parse(t, None).map_err(hasocks_probe::AddressError::from)?;
            (target_of(&hp)?, resolve_parsed(&hp).await.ok())
        }
        None => {
            let kind = match (o.mode, o.copy) {
                (Mode::Throughput, false) => Target::Sink,
                (Mode::Throughput, true) => Target::CopySink,
                _ => Target::Echo,
            };
            let a = target::start(kind, sink.clone(), o.target_bind)
                .await
                .map_err(|e| SetupError::Local("in-process target", e))?;
            (TargetAddr::Ip(a), Some(a))
        }
    };
    let proxy = match (&o.server, o.direct) {
        (_, true) => None,
        (Some(s), false) => Some(resolve(s, Some(1080)).await?),
        (None, false) => return Err(SetupError::NoServer),
    };
    let auth = match &o.credentials {
        None => None,
        Some(c) => Some(Auth::parse(c).ok_or(SetupError::Credentials)?),
    };
    if let (Some(ip), Some(to)) = (o.source, proxy.or(target_addr)) {
        if ip.is_ipv4() != to.is_ipv4() {
            return Err(SetupError::Family { ip, to });
        }
    }
    let route = Route {
        proxy,
        target,
        target_addr,
        auth,
        timeout: Duration::from_millis(o.timeout_ms.max(1)),
        source: o.source,
    };
    Ok((route, o.target.is_none().then_some(sink)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn options(mode: Mode) -> Options {
        Options {
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
            target_bind: None,
            json: true,
            copy: false,
            window: 4,
            batch: 4,
        }
    }

    /// Runs and returns (succeeded, stdout, stderr).
    async fn bench(o: &Options) -> Result<(bool, String, String), SetupError> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let ok = run(o, &mut out, &mut err).await?;
        let text = |v: Vec<u8>| String::from_utf8(v).unwrap();
        Ok((ok, text(out), text(err)))
    }

    #[tokio::test]
    async fn direct_sessions_against_own_echo_target_succeed() {
        let (ok, out, err) = bench(&options(Mode::Sessions)).await.unwrap();
        assert!(ok, "{err}");
        assert!(
            out.starts_with("{\"mode\":\"sessions\",\"via\":\"direct\""),
            "{out}"
        );
        assert!(!out.contains("\"sessions\":0,"), "{out}");
    }

    #[tokio::test]
    async fn direct_throughput_and_idle_run_to_completion() {
        let (ok, out, _) = bench(&options(Mode::Throughput)).await.unwrap();
        assert!(
            ok && out.contains("\"counted\":\"received by target\""),
            "{out}"
        );
        let mut copy = options(Mode::Throughput);
        copy.copy = true;
        assert!(bench(&copy).await.unwrap().0);
        let (ok, out, _) = bench(&options(Mode::Idle)).await.unwrap();
        assert!(ok && out.starts_with("ready 5\n"), "{out}");
    }

    #[tokio::test]
    async fn text_reports_name_the_route() {
        let mut o = options(Mode::Sessions);
        o.json = false;
        let (_, out, _) = bench(&o).await.unwrap();
        assert!(out.starts_with("sessions via direct: 2 workers"), "{out}");
    }

    #[tokio::test]
    async fn dead_proxy_is_counted_as_errors_not_a_panic() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = l.local_addr().unwrap();
        drop(l);
        for mode in [Mode::Sessions, Mode::Throughput, Mode::Idle, Mode::Udp] {
            let mut o = options(mode);
            o.direct = false;
            o.server = Some(dead.to_string());
            let (ok, _, err) = bench(&o).await.unwrap();
            assert!(!ok, "{mode:?}");
            assert!(
                err.starts_with("hasocks bench: first error: "),
                "{mode:?}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn missing_server_without_direct_is_an_error() {
        let mut o = options(Mode::Sessions);
        o.direct = false;
        assert!(matches!(bench(&o).await, Err(SetupError::NoServer)));
        o.mode = Mode::Udp;
        assert!(matches!(
            bench(&o).await,
            Err(SetupError::NeedsServer("udp"))
        ));
    }

    #[tokio::test]
    async fn a_source_of_the_other_family_is_refused_before_any_load() {
        let mut o = options(Mode::Sessions);
        (o.direct, o.server) = (false, Some("127.0.0.1:1".into()));
        o.source = Some("::1".parse().unwrap());
        assert!(matches!(bench(&o).await, Err(SetupError::Family { .. })));
    }

    #[tokio::test]
    async fn bad_credentials_and_addresses_are_setup_errors() {
        let mut o = options(Mode::Sessions);
        o.credentials = Some("nocolon".into());
        assert!(matches!(bench(&o).await, Err(SetupError::Credentials)));
        let mut o = options(Mode::Sessions);
        o.target = Some("127.0.0.1:nosuchservice".into());
        assert!(matches!(bench(&o).await, Err(SetupError::Address(_))));
    }
}

//! `hasocks bench`: the options of [`hasocks_loadgen::bench`], which does the work.

use std::net::IpAddr;

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
    pub mode: hasocks_loadgen::Mode,
    /// Streams for throughput mode.
    #[arg(long, default_value_t = 8)]
    pub streams: usize,
    /// Concurrent workers (sessions mode), sessions opened at once (idle mode) or UDP
    /// associations (udp mode).
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// Seconds to run (throughput, sessions and udp modes).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Sessions to open and hold (idle mode).
    #[arg(long, default_value_t = 10_000)]
    pub sessions: usize,
    /// Echo payload bytes per session (sessions and idle modes), or per datagram (udp mode).
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
    /// Address the in-process target listens on (default 127.0.0.1): one the SOCKS servers
    /// can reach when they are on other machines or in other network namespaces.
    #[arg(long, value_name = "IP")]
    pub target_bind: Option<IpAddr>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Throughput mode: move the payload through user space (write/read) instead of
    /// sendfile/splice; the generator then needs far more CPU.
    #[arg(long)]
    pub copy: bool,
    /// Udp mode: datagrams kept in flight per association.
    #[arg(long, default_value_t = 32)]
    pub window: usize,
    /// Udp mode: most datagrams per receive or send call (recvmmsg, UDP GSO); 1 = one each.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
}

/// Runs the benchmark; exit 0 when it ran (errors are reported, not fatal),
/// 1 when it could not start or no session at all succeeded.
pub async fn run(a: BenchArgs) -> anyhow::Result<i32> {
    let o = hasocks_loadgen::Options {
        server: a.server,
        direct: a.direct,
        mode: a.mode,
        streams: a.streams,
        concurrency: a.concurrency,
        duration: a.duration,
        sessions: a.sessions,
        payload: a.payload,
        target: a.target,
        hold: a.hold,
        credentials: a.credentials,
        timeout_ms: a.timeout_ms,
        source: a.source,
        target_bind: a.target_bind,
        json: a.json,
        copy: a.copy,
        window: a.window,
        batch: a.batch,
    };
    let ran = hasocks_loadgen::run(&o, &mut std::io::stdout(), &mut std::io::stderr()).await?;
    Ok(if ran { 0 } else { 1 })
}

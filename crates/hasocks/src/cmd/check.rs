//! `hasocks check`: probe one SOCKS5 server end to end, with maxconn.pl's
//! flags and an honest exit status (or relayd's inverted one with `--relayd`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use probe::{end_to_end_on, end_to_end_traced, Auth, Direction, EndToEnd, ProbeError};
use socks_wire::TargetAddr;
use tokio::net::TcpListener;

/// Options of `hasocks check` (flags as in maxconn.pl).
///
/// Values are taken as text and checked by `run`, so that with `--relayd` a
/// bad value still yields "down" (0) instead of a usage exit that relayd
/// would read as "up".
#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// SOCKS server as HOST:PORT; the port may be a service name ("socks" = 1080).
    #[arg(short = 's', value_name = "HOST:PORT")]
    pub server: String,
    /// Listen on BINDADDR (IP or IP:PORT) and have the server connect back to
    /// it (end-to-end mode, data is verified both ways). Default 127.0.0.1
    /// when neither -b nor -I is given.
    #[arg(short = 'b', value_name = "BINDADDR")]
    pub bind: Option<String>,
    /// CONNECT to this remote HOST:PORT instead and require reply 00 (a host
    /// name is sent to the server as a domain).
    #[arg(short = 'I', value_name = "HOST:PORT")]
    pub remote: Option<String>,
    /// Sessions that must succeed (maxconn.pl: 10, and it keeps
    /// them all open; we run them one after another and close each).
    #[arg(short = 'c', value_name = "N", default_value = "1")]
    pub count: String,
    /// Failed attempts tolerated (each retried) before giving up (maxconn.pl:
    /// 5, and it then still exits 0).
    #[arg(short = 'E', value_name = "N", default_value = "0")]
    pub max_errors: String,
    /// RFC 1929 credentials as USER:PASS (offers only method 02, like maxconn.pl).
    #[arg(short = 'U', value_name = "USER:PASS")]
    pub credentials: Option<String>,
    /// Print nothing on success (failures still go to stderr).
    #[arg(short = 'q')]
    pub quiet: bool,
    /// Hex dumps of every SOCKS message and probe payload on stderr.
    #[arg(short = 'v')]
    pub verbose: bool,
    /// relayd check-script convention: exit 1 when the server is up, 0 when down.
    #[arg(long)]
    pub relayd: bool,
    /// Per-session timeout in milliseconds (maxconn.pl: 5 s).
    #[arg(short = 't', value_name = "TIMEOUT_MS", default_value = "5000")]
    pub timeout_ms: String,
}

/// What a parsed command line asks for.
struct Plan {
    proxy: SocketAddr,
    mode: Mode,
    count: u32,
    max_errors: u32,
    auth: Option<Auth>,
    timeout: Duration,
}

enum Mode {
    /// Our own listener; the proxy connects back to it.
    Listen(TcpListener),
    /// A remote target; only the reply code is checked.
    Remote(TargetAddr),
}

/// Runs the check; returns the exit status (see [`CheckArgs::relayd`]).
pub async fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let (up, down) = if args.relayd { (1, 0) } else { (0, 1) };
    let plan = match plan(&args).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("hasocks check: {e:#}");
            return Ok(down);
        }
    };
    let ok = execute(&plan, &args).await;
    Ok(if ok { up } else { down })
}

/// Opens the requested sessions one by one; true when all of them worked.
async fn execute(plan: &Plan, args: &CheckArgs) -> bool {
    let tap = |d: Direction, b: &[u8]| eprintln!("{}", hex_line(d, b));
    let tap: Option<probe::Tap<'_>> = if args.verbose { Some(&tap) } else { None };
    let (mut ok, mut failed, mut attempt) = (0u32, 0u32, 0u32);
    let mut slowest = Duration::ZERO;
    while ok < plan.count {
        attempt += 1;
        let r = match &plan.mode {
            Mode::Listen(l) => {
                end_to_end_on(l, plan.proxy, plan.auth.as_ref(), plan.timeout, tap).await
            }
            Mode::Remote(t) => {
                let check = EndToEnd {
                    proxy: plan.proxy,
                    target: Some(t.clone()),
                    bind_ip: IpAddr::from([127, 0, 0, 1]),
                    auth: plan.auth.clone(),
                    timeout: plan.timeout,
                    preamble: Vec::new(),
                };
                end_to_end_traced(&check, tap).await
            }
        };
        match r {
            Ok(t) => {
                ok += 1;
                slowest = slowest.max(t);
                if args.verbose {
                    eprintln!("session {attempt}: ok in {:.1} ms", ms(t));
                }
            }
            Err(e) => {
                failed += 1;
                report(attempt, plan.proxy, &e);
                if failed > plan.max_errors {
                    if plan.count > 1 || plan.max_errors > 0 {
                        eprintln!(
                            "hasocks check: too many failures ({failed} > {}), giving up after {ok}/{} session(s)",
                            plan.max_errors, plan.count
                        );
                    }
                    return false;
                }
            }
        }
    }
    if !args.quiet {
        let what = match &plan.mode {
            Mode::Listen(_) => "data verified both ways",
            Mode::Remote(_) => "reply 00",
        };
        println!(
            "successfully opened {ok}/{} session(s) via {} ({what}; slowest {:.1} ms)",
            plan.count,
            plan.proxy,
            ms(slowest)
        );
    }
    true
}

fn report(attempt: u32, proxy: SocketAddr, e: &ProbeError) {
    eprintln!(
        "hasocks check: session {attempt} via {proxy}: {}",
        e.short()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn hex_line(d: Direction, b: &[u8]) -> String {
    let arrow = match d {
        Direction::Sent => '>',
        Direction::Received => '<',
    };
    let mut s = format!("{arrow} {:3} |", b.len());
    for byte in b {
        s.push_str(&format!(" {byte:02x}"));
    }
    s
}

async fn plan(args: &CheckArgs) -> anyhow::Result<Plan> {
    let count = parse_num(&args.count, "-c")?;
    if count == 0 {
        anyhow::bail!("-c must be at least 1");
    }
    let max_errors = parse_num(&args.max_errors, "-E")?;
    let timeout_ms = parse_num(&args.timeout_ms, "-t")?;
    if timeout_ms == 0 {
        anyhow::bail!("-t must be at least 1 ms");
    }
    let (host, port) = split_host_port(&args.server, Some(1080))?;
    let proxy = resolve(&host, port).await?;
    let auth = match &args.credentials {
        None => None,
        Some(c) => {
            let (user, pass) = c
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("-U wants USER:PASS"))?;
            Some(Auth {
                user: user.to_owned(),
                pass: pass.to_owned(),
            })
        }
    };
    let mode = match (&args.bind, &args.remote) {
        (Some(_), Some(_)) => anyhow::bail!("-b and -I are mutually exclusive"),
        (None, Some(r)) => {
            let (host, port) = split_host_port(r, None)?;
            Mode::Remote(match host.parse::<IpAddr>() {
                Ok(ip) => TargetAddr::Ip(SocketAddr::new(ip, port)),
                Err(_) => {
                    TargetAddr::domain(host, port).map_err(|e| anyhow::anyhow!("-I {r}: {e}"))?
                }
            })
        }
        (b, None) => {
            let b = b.as_deref().unwrap_or("127.0.0.1");
            let (host, port) = split_host_port(b, Some(0))?;
            let addr = resolve(&host, port).await?;
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (-b): {e}"))?;
            Mode::Listen(l)
        }
    };
    Ok(Plan {
        proxy,
        mode,
        count,
        max_errors,
        auth,
        timeout: Duration::from_millis(u64::from(timeout_ms)),
    })
}

fn parse_num(s: &str, flag: &str) -> anyhow::Result<u32> {
    s.trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{flag} wants a number, got {s:?}"))
}

/// Splits `host:port`, `[v6]:port`, or (with a default port) a bare host or
/// bare IPv6 address. The port may be a service name from /etc/services.
pub(crate) fn split_host_port(s: &str, default_port: Option<u16>) -> anyhow::Result<(String, u16)> {
    let bad = || anyhow::anyhow!("bad address {s:?}, want HOST:PORT");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(bad()),
        }
    } else if s.matches(':').count() > 1 {
        (s, None) // a bare IPv6 address
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        Some(p) => {
            service_port(p).ok_or_else(|| anyhow::anyhow!("unknown port or service {p:?}"))?
        }
        None => default_port.ok_or_else(bad)?,
    };
    Ok((host.to_owned(), port))
}

/// A numeric port, or a TCP service name looked up in /etc/services
/// (with "socks" = 1080 built in for systems without the file).
fn service_port(p: &str) -> Option<u16> {
    if let Ok(n) = p.parse() {
        return Some(n);
    }
    let services = std::fs::read_to_string("/etc/services").unwrap_or_default();
    lookup_service(&services, p).or_else(|| (p == "socks").then_some(1080))
}

fn lookup_service(services: &str, name: &str) -> Option<u16> {
    services.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let first = words.next()?;
        let (port, proto) = words.next()?.split_once('/')?;
        let named = first == name || words.any(|alias| alias == name);
        (named && proto == "tcp")
            .then(|| port.parse().ok())
            .flatten()
    })
}

pub(crate) async fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| anyhow::anyhow!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{host} has no address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::fake_socks::{fake_server, Fake};

    fn args(server: String) -> CheckArgs {
        CheckArgs {
            server,
            bind: None,
            remote: None,
            count: "1".into(),
            max_errors: "0".into(),
            credentials: None,
            quiet: true,
            verbose: false,
            relayd: false,
            timeout_ms: "5000".into(),
        }
    }

    /// A minimal SOCKS5 server: honest for `reply` 0, else answering with that REP.
    async fn fake(reply: u8) -> SocketAddr {
        fake_server(if reply == 0 {
            Fake::Good
        } else {
            Fake::Reject(reply)
        })
        .await
    }

    async fn refused_port() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    }

    #[tokio::test]
    async fn working_server_exits_0_and_1_under_relayd() {
        let proxy = fake(0).await;
        let mut a = args(proxy.to_string());
        a.count = "3".into();
        assert_eq!(run(a.clone()).await.unwrap(), 0);
        a.relayd = true;
        assert_eq!(run(a).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn refusing_server_exits_1_and_0_under_relayd() {
        let proxy = fake(2).await;
        let mut a = args(proxy.to_string());
        assert_eq!(run(a.clone()).await.unwrap(), 1);
        a.relayd = true;
        assert_eq!(run(a).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn dead_server_is_down_even_with_retries() {
        let mut a = args(refused_port().await.to_string());
        a.max_errors = "2".into();
        a.relayd = true;
        assert_eq!(run(a).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn bad_arguments_mean_down_under_relayd() {
        let mut a = args("127.0.0.1:1080".into());
        a.count = "many".into();
        a.relayd = true;
        assert_eq!(run(a.clone()).await.unwrap(), 0);
        a.relayd = false;
        assert_eq!(run(a).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn remote_mode_checks_the_reply_code() {
        let proxy = fake(0).await;
        let target = test_support::echo_server("127.0.0.1").await;
        // -I needs only the reply: no byte is sent through.
        let mut a = args(proxy.to_string());
        a.remote = Some(target.to_string());
        assert_eq!(run(a).await.unwrap(), 0);
    }

    #[test]
    fn host_port_forms_parse() {
        assert_eq!(
            split_host_port("10.0.1.2:1080", None).unwrap(),
            ("10.0.1.2".into(), 1080)
        );
        assert_eq!(split_host_port("[::1]:9", None).unwrap(), ("::1".into(), 9));
        assert_eq!(split_host_port("::1", Some(0)).unwrap(), ("::1".into(), 0));
        assert_eq!(
            split_host_port("host", Some(1080)).unwrap(),
            ("host".into(), 1080)
        );
        assert_eq!(
            split_host_port("h:socks", None).unwrap(),
            ("h".into(), 1080)
        );
        assert!(split_host_port("host", None).is_err());
        assert!(split_host_port(":80", None).is_err());
        assert!(split_host_port("h:nosuchservice", None).is_err());
    }

    #[test]
    fn service_names_come_from_services_text() {
        let text = "# c\nsocks\t\t1080/tcp\t\t# socks proxy\nhttp 80/tcp www\nx 9/udp\n";
        assert_eq!(lookup_service(text, "socks"), Some(1080));
        assert_eq!(lookup_service(text, "www"), Some(80));
        assert_eq!(lookup_service(text, "x"), None);
    }

    #[test]
    fn hex_line_shows_direction_length_and_bytes() {
        assert_eq!(hex_line(Direction::Sent, &[5, 1, 0]), ">   3 | 05 01 00");
    }
}

//! `hasocks check`: probe one SOCKS5 server end to end with maxconn.pl's flags, and give an
//! honest exit status (or relayd's inverted one). The command line's values arrive as text and
//! are checked here, so that under relayd's contract a bad value is a verdict ("down"), never
//! a usage exit that relayd would read as "up".

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hasocks_socks_wire::TargetAddr;
use tokio::net::TcpListener;

use crate::address::{resolve, target_of, AddressError};
use crate::client::{Auth, Direction, Tap};
use crate::e2e::{end_to_end_on, end_to_end_traced, EndToEnd};

/// What a `hasocks check` command line asks, its values still as text.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `-s HOST:PORT` (port 1080 when omitted).
    pub server: String,
    /// `-b BINDADDR`: our listener for the end-to-end mode (127.0.0.1 when neither -b nor -I).
    pub bind: Option<String>,
    /// `-I HOST:PORT`: CONNECT there instead and require reply 00.
    pub remote: Option<String>,
    /// `-c N`: sessions that must succeed.
    pub count: String,
    /// `-E N`: failed attempts tolerated (each retried).
    pub max_errors: String,
    /// `-U USER:PASS`.
    pub credentials: Option<String>,
    /// `-t MS`: the budget of each session.
    pub timeout_ms: String,
    /// `-q`: nothing on stdout on success.
    pub quiet: bool,
    /// `-v`: hex dumps of every SOCKS message and probe payload.
    pub verbose: bool,
    /// `--relayd`: exit 1 when the server is up, 0 when it is down.
    pub relayd: bool,
}

/// Where the lines of a check go: `out` for the success line, `err` for everything else.
#[derive(Clone, Copy)]
pub struct Output<'a> {
    /// The one success line (suppressed by `-q`).
    pub out: &'a (dyn Fn(&str) + Send + Sync),
    /// Failures, and with `-v` the hex dumps.
    pub err: &'a (dyn Fn(&str) + Send + Sync),
}

impl Output<'static> {
    /// Standard output and standard error, as the command prints.
    pub fn stdio() -> Self {
        fn out(line: &str) {
            println!("{line}");
        }
        fn err(line: &str) {
            eprintln!("{line}");
        }
        Output {
            out: &out,
            err: &err,
        }
    }
}

/// Why a check could not even start (a verdict of "down" all the same).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A numeric flag is not a number.
    #[error("{flag} wants a number, got {got:?}")]
    NotANumber {
        /// The flag.
        flag: &'static str,
        /// What it was given.
        got: String,
    },
    /// `-c 0` or `-t 0`.
    #[error("{0}")]
    Zero(&'static str),
    /// `-U` without a ':'.
    #[error("-U wants USER:PASS")]
    Credentials,
    /// Both `-b` and `-I`.
    #[error("-b and -I are mutually exclusive")]
    BindAndRemote,
    /// An address that does not parse or resolve.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// Our own listener (`-b`) could not be opened.
    #[error("cannot listen on {addr} (-b): {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A check ready to run: the command line parsed, our listener open.
struct Plan {
    proxy: SocketAddr,
    mode: Mode,
    count: u32,
    max_errors: u32,
    auth: Option<Auth>,
    timeout: Duration,
}

enum Mode {
    /// Our own listener; the proxy connects back to it and data is verified both ways.
    Listen(TcpListener),
    /// A remote target; only the reply code is checked.
    Remote(TargetAddr),
}

/// Runs the check; returns the exit status (see [`Request::relayd`]).
pub async fn run(req: &Request, output: Output<'_>) -> i32 {
    let (up, down) = if req.relayd { (1, 0) } else { (0, 1) };
    match plan(req).await {
        Ok(plan) if execute(&plan, req, output).await => up,
        Ok(_) => down,
        Err(e) => {
            (output.err)(&format!("hasocks check: {e}"));
            down
        }
    }
}

/// Opens the requested sessions one by one; true when all of them worked.
async fn execute(plan: &Plan, req: &Request, output: Output<'_>) -> bool {
    let tap = |d: Direction, b: &[u8]| (output.err)(&hex_line(d, b));
    let tap: Option<Tap<'_>> = if req.verbose { Some(&tap) } else { None };
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
                if req.verbose {
                    (output.err)(&format!("session {attempt}: ok in {:.1} ms", ms(t)));
                }
            }
            Err(e) => {
                failed += 1;
                (output.err)(&format!(
                    "hasocks check: session {attempt} via {}: {}",
                    plan.proxy,
                    e.short()
                ));
                if failed > plan.max_errors {
                    if plan.count > 1 || plan.max_errors > 0 {
                        (output.err)(&format!(
                            "hasocks check: too many failures ({failed} > {}), giving up after {ok}/{} session(s)",
                            plan.max_errors, plan.count
                        ));
                    }
                    return false;
                }
            }
        }
    }
    if !req.quiet {
        let what = match &plan.mode {
            Mode::Listen(_) => "data verified both ways",
            Mode::Remote(_) => "reply 00",
        };
        (output.out)(&format!(
            "successfully opened {ok}/{} session(s) via {} ({what}; slowest {:.1} ms)",
            plan.count,
            plan.proxy,
            ms(slowest)
        ));
    }
    true
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One tapped chunk as `-v` shows it: direction, length, hex bytes.
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

async fn plan(req: &Request) -> Result<Plan, PlanError> {
    let count = number(&req.count, "-c")?;
    if count == 0 {
        return Err(PlanError::Zero("-c must be at least 1"));
    }
    let max_errors = number(&req.max_errors, "-E")?;
    let timeout_ms = number(&req.timeout_ms, "-t")?;
    if timeout_ms == 0 {
        return Err(PlanError::Zero("-t must be at least 1 ms"));
    }
    let proxy = resolve(&req.server, Some(1080)).await?;
    let auth = match &req.credentials {
        None => None,
        Some(c) => Some(Auth::parse(c).ok_or(PlanError::Credentials)?),
    };
    let mode = match (&req.bind, &req.remote) {
        (Some(_), Some(_)) => return Err(PlanError::BindAndRemote),
        (None, Some(r)) => Mode::Remote(target_of(
            &hasocks_conf::HostPort::parse(r, None).map_err(AddressError::from)?,
        )?),
        (b, None) => {
            let addr = resolve(b.as_deref().unwrap_or("127.0.0.1"), Some(0)).await?;
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| PlanError::Listen { addr, source })?;
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

fn number(s: &str, flag: &'static str) -> Result<u32, PlanError> {
    s.trim().parse().map_err(|_| PlanError::NotANumber {
        flag,
        got: s.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hasocks_test_support::fake_socks::{fake_server, Fake};

    fn req(server: String) -> Request {
        Request {
            server,
            count: "1".into(),
            max_errors: "0".into(),
            timeout_ms: "5000".into(),
            quiet: true,
            ..Request::default()
        }
    }

    fn silent() -> Output<'static> {
        fn drop_line(_: &str) {}
        Output {
            out: &drop_line,
            err: &drop_line,
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
        let mut r = req(proxy.to_string());
        r.count = "3".into();
        assert_eq!(run(&r, silent()).await, 0);
        r.relayd = true;
        assert_eq!(run(&r, silent()).await, 1);
    }

    #[tokio::test]
    async fn refusing_server_exits_1_and_0_under_relayd() {
        let proxy = fake(2).await;
        let mut r = req(proxy.to_string());
        assert_eq!(run(&r, silent()).await, 1);
        r.relayd = true;
        assert_eq!(run(&r, silent()).await, 0);
    }

    #[tokio::test]
    async fn dead_server_is_down_even_with_retries() {
        let mut r = req(refused_port().await.to_string());
        r.max_errors = "2".into();
        r.relayd = true;
        assert_eq!(run(&r, silent()).await, 0);
    }

    #[tokio::test]
    async fn bad_arguments_mean_down_under_relayd() {
        let mut r = req("127.0.0.1:1080".into());
        r.count = "many".into();
        r.relayd = true;
        assert_eq!(run(&r, silent()).await, 0);
        r.relayd = false;
        assert_eq!(run(&r, silent()).await, 1);
        assert!(matches!(
            plan(&r).await,
            Err(PlanError::NotANumber { flag: "-c", .. })
        ));
    }

    #[tokio::test]
    async fn a_port_name_outside_the_fixed_table_is_a_plan_error() {
        let r = req("127.0.0.1:gopher".into());
        assert!(matches!(
            plan(&r).await,
            Err(PlanError::Address(AddressError::Syntax(_)))
        ));
    }

    #[tokio::test]
    async fn remote_mode_checks_the_reply_code() {
        let proxy = fake(0).await;
        let target = hasocks_test_support::echo_server("127.0.0.1").await;
        // -I needs only the reply: no byte is sent through.
        let mut r = req(proxy.to_string());
        r.remote = Some(target.to_string());
        assert_eq!(run(&r, silent()).await, 0);
    }

    #[test]
    fn hex_line_shows_direction_length_and_bytes() {
        assert_eq!(hex_line(Direction::Sent, &[5, 1, 0]), ">   3 | 05 01 00");
    }
}

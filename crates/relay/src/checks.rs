//! One health check of one host. Each returns Ok(message) when the host is up and
//! Err(message) when it is down; messages follow relayd's wording ("tcp connect failed").
//! Every check finishes within `timeout`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use conf::relayd::Check;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::glob;

/// How much a send/expect or binary check reads at most before giving up on a match.
const READ_LIMIT: usize = 4096;

/// Result of one check: Ok(message) = up, Err(message) = down.
pub(crate) type CheckResult = Result<String, String>;

/// Runs `check` against the host `name` at `addr`, bounded by `timeout`.
pub(crate) async fn run(
    check: &Check,
    name: &str,
    addr: SocketAddr,
    timeout: Duration,
) -> CheckResult {
    let deadline = Instant::now() + timeout;
    match check {
        Check::Tcp => connect(addr, deadline)
            .await
            .map(|_| "tcp connect ok".into()),
        Check::Send { send, expect } => send_expect(addr, send, deadline, |buf| {
            Matched::from(glob::matches(expect.as_bytes(), buf))
        })
        .await
        .map(|_| "send/expect ok".into()),
        Check::Binary { send, expect } => send_expect(addr, send, deadline, |buf| {
            let n = buf.len().min(expect.len());
            if buf.get(..n) != expect.get(..n) {
                Matched::Never
            } else {
                Matched::from(buf.len() >= expect.len())
            }
        })
        .await
        .map(|_| "send/expect ok".into()),
        Check::Script(path) => script(path, name, deadline).await,
        Check::Socks { target, auth } => socks(addr, target.as_ref(), auth.as_ref(), timeout).await,
    }
}

async fn connect(addr: SocketAddr, deadline: Instant) -> Result<TcpStream, String> {
    match timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(_)) => Err("tcp connect failed".into()),
        Err(_) => Err("tcp connect timeout".into()),
    }
}

/// Whether what was read so far satisfies the expectation.
enum Matched {
    Yes,
    NotYet,
    Never,
}

impl From<bool> for Matched {
    fn from(b: bool) -> Matched {
        if b {
            Matched::Yes
        } else {
            Matched::NotYet
        }
    }
}

/// Connects, sends `data` (if any), then reads until `judge` says yes or never, EOF, the read
/// limit or the deadline.
async fn send_expect(
    addr: SocketAddr,
    data: &[u8],
    deadline: Instant,
    judge: impl Fn(&[u8]) -> Matched,
) -> Result<(), String> {
    let mut s = connect(addr, deadline).await?;
    if !data.is_empty() {
        match timeout_at(deadline, s.write_all(data)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err("tcp write failed".into()),
            Err(_) => return Err("tcp write timeout".into()),
        }
    }
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        match timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) => return Err("send/expect failed".into()),
            Ok(Ok(n)) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Ok(Err(_)) => return Err("tcp read failed".into()),
            Err(_) => return Err("tcp read timeout".into()),
        }
        match judge(&buf) {
            Matched::Yes => return Ok(()),
            Matched::Never => return Err("send/expect failed".into()),
            Matched::NotYet if buf.len() >= READ_LIMIT => return Err("send/expect failed".into()),
            Matched::NotYet => {}
        }
    }
}

/// relayd's script contract: `path NAME`, exit status > 0 = up; 0, a signal, an exec failure
/// or still running at the timeout = down. The script runs in its own process group, and at the
/// timeout the whole group is killed, so helpers it started (a perl probe...) die with it.
async fn script(path: &Path, name: &str, deadline: Instant) -> CheckResult {
    let child = tokio::process::Command::new(path)
        .arg(name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/")
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(_) => return Err("script failed".into()),
    };
    let mut group = GroupKill(child.id().and_then(|id| i32::try_from(id).ok()));
    let res = timeout_at(deadline, child.wait()).await;
    if res.is_ok() {
        // Reaped: the id may be reused from now on, so never signal it.
        group.0 = None;
    }
    match res {
        Ok(Ok(st)) => match st.code() {
            Some(c) if c > 0 => Ok("script ok".into()),
            _ => Err("script failed".into()),
        },
        Ok(Err(_)) => Err("script failed".into()),
        Err(_) => {
            drop(group);
            // Reap the leader now rather than leave it to the background reaper.
            let _ = child.kill().await;
            Err("script timeout".into())
        }
    }
}

/// SIGKILLs a check script's process group when dropped (timeout, or the check abandoned),
/// unless disarmed after the script was reaped.
struct GroupKill(Option<i32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}

/// End-to-end SOCKS5 probe through the host, from the relay's own address towards it.
async fn socks(
    addr: SocketAddr,
    target: Option<&(String, u16)>,
    auth: Option<&(String, String)>,
    timeout: Duration,
) -> CheckResult {
    let target = match target {
        None => None,
        Some((host, port)) => Some(match host.parse::<IpAddr>() {
            Ok(ip) => socks_wire::TargetAddr::Ip(SocketAddr::new(ip, *port)),
            Err(_) => socks_wire::TargetAddr::domain(host.as_str(), *port)
                .map_err(|e| format!("socks target {host}: {e}"))?,
        }),
    };
    let probe = probe::EndToEnd {
        proxy: addr,
        target,
        bind_ip: local_ip_towards(addr),
        auth: auth.map(|(user, pass)| probe::Auth {
            user: user.clone(),
            pass: pass.clone(),
        }),
        timeout,
    };
    match probe::end_to_end(&probe).await {
        Ok(_) => Ok("socks ok".into()),
        Err(e) => Err(format!("socks {}", e.short())),
    }
}

/// The relay's own address towards `addr` (loopback for loopback hosts), where the SOCKS
/// probe listens for the proxy's connection.
fn local_ip_towards(addr: SocketAddr) -> IpAddr {
    net::sock::route_source(addr.ip()).unwrap_or(if addr.is_ipv4() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    })
}

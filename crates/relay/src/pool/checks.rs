//! One health check of one host. A check ends in a verdict on the host (up or down, with
//! relayd's wording: "tcp connect failed") or in a local error: a fault of this machine (out of
//! descriptors, memory or local ports; a check that could not start), which says nothing
//! about the host and must not change its state. Every check finishes within `timeout`.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use hasocks_conf::relayd::Check;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::glob;

/// How much a send/expect or binary check reads at most before giving up on a match.
const READ_LIMIT: usize = 4096;

/// What one check says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The host works (message for logs and ctl).
    Up(String),
    /// The host failed the check.
    Down(String),
    /// The check could not be judged because of this machine: no verdict on the host.
    Local(String),
}

/// A verdict and how long the check took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckOutcome {
    pub verdict: Verdict,
    pub took_us: u64,
}

/// Up/down so far; `?` on a `Fail` turns either kind of failure into a verdict.
type Step<T> = Result<T, Verdict>;

/// The listeners `check socks` meets its connections at: one per local address, kept for the
/// relay's life (not one per check).
#[derive(Debug, Default)]
pub(crate) struct Rendezvous {
    by_ip: tokio::sync::Mutex<HashMap<IpAddr, Arc<hasocks_probe::Rendezvous>>>,
}

impl Rendezvous {
    async fn at(&self, ip: IpAddr) -> io::Result<Arc<hasocks_probe::Rendezvous>> {
        let mut m = self.by_ip.lock().await;
        if let Some(r) = m.get(&ip) {
            return Ok(r.clone());
        }
        let r = Arc::new(hasocks_probe::Rendezvous::bind(ip).await?);
        m.insert(ip, r.clone());
        Ok(r)
    }
}

/// Runs `check` against the host `name` at `addr`, bounded by `timeout`. `preamble` is sent
/// first on every connection to the host (a PROXY v2 LOCAL header for hosts that expect one).
pub(crate) async fn run(
    check: &Check,
    name: &str,
    addr: SocketAddr,
    timeout: Duration,
    preamble: &[u8],
    rendezvous: &Rendezvous,
) -> Verdict {
    let deadline = Instant::now() + timeout;
    let step = match check {
        Check::Tcp => tcp(addr, preamble, deadline).await,
        Check::Send { send, expect } => send_expect(addr, preamble, send, deadline, |buf| {
            Matched::from(glob::matches(expect.as_bytes(), buf))
        })
        .await
        .map(|_| "send/expect ok".into()),
        Check::Binary { send, expect } => send_expect(addr, preamble, send, deadline, |buf| {
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
        Check::Socks { target, auth } => {
            socks(
                addr,
                target.as_ref(),
                auth.as_ref(),
                timeout,
                preamble,
                rendezvous,
            )
            .await
        }
        Check::SocksGssapi { gssapi } => {
            socks_gssapi(addr, gssapi, name, timeout, preamble, rendezvous).await
        }
    };
    match step {
        Ok(msg) => Verdict::Up(msg),
        Err(v) => v,
    }
}

/// A failed I/O step: local when this machine ran out of something, else `down`.
fn failed(e: &io::Error, down: &str) -> Verdict {
    if hasocks_net::sock::is_local_exhaustion(e) {
        Verdict::Local(format!("{down}: {e}"))
    } else {
        Verdict::Down(down.to_string())
    }
}

async fn connect(addr: SocketAddr, preamble: &[u8], deadline: Instant) -> Step<TcpStream> {
    let mut s = match timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(failed(&e, "tcp connect failed")),
        Err(_) => return Err(Verdict::Down("tcp connect timeout".into())),
    };
    if !preamble.is_empty() {
        write(&mut s, preamble, deadline).await?;
    }
    Ok(s)
}

async fn write(s: &mut TcpStream, data: &[u8], deadline: Instant) -> Step<()> {
    match timeout_at(deadline, s.write_all(data)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(failed(&e, "tcp write failed")),
        Err(_) => Err(Verdict::Down("tcp write timeout".into())),
    }
}

/// `check tcp`: a connection within the timeout. With a preamble the connection is then
/// closed cleanly, so that the host reads a LOCAL header and an end, not a reset.
async fn tcp(addr: SocketAddr, preamble: &[u8], deadline: Instant) -> Step<String> {
    let mut s = connect(addr, preamble, deadline).await?;
    if !preamble.is_empty() {
        let _ = timeout_at(deadline, s.shutdown()).await;
    }
    Ok("tcp connect ok".into())
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
    preamble: &[u8],
    data: &[u8],
    deadline: Instant,
    judge: impl Fn(&[u8]) -> Matched,
) -> Step<()> {
    let mut s = connect(addr, preamble, deadline).await?;
    if !data.is_empty() {
        write(&mut s, data, deadline).await?;
    }
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        match timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) => return Err(Verdict::Down("send/expect failed".into())),
            Ok(Ok(n)) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Ok(Err(e)) => return Err(failed(&e, "tcp read failed")),
            Err(_) => return Err(Verdict::Down("tcp read timeout".into())),
        }
        let mismatch = || Err(Verdict::Down("send/expect failed".into()));
        match judge(&buf) {
            Matched::Yes => return Ok(()),
            Matched::Never => return mismatch(),
            Matched::NotYet if buf.len() >= READ_LIMIT => return mismatch(),
            Matched::NotYet => {}
        }
    }
}

/// relayd's script contract: `path NAME`, exit status > 0 = up; 0, a signal, an exec failure
/// or still running at the timeout = down. A script that could not be started for lack of
/// processes, descriptors or memory is a local error (relayd: fork failure = unknown). The
/// script runs in its own process group, and at the timeout the whole group is killed, so
/// helpers it started (a perl probe...) die with it.
async fn script(path: &Path, name: &str, deadline: Instant) -> Step<String> {
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
        Err(e) => return Err(failed(&e, "script failed")),
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
            _ => Err(Verdict::Down("script failed".into())),
        },
        Ok(Err(e)) => Err(failed(&e, "script failed")),
        Err(_) => {
            drop(group);
            // Reap the leader now rather than leave it to the background reaper.
            let _ = child.kill().await;
            Err(Verdict::Down("script timeout".into()))
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

/// End-to-end SOCKS5 probe through the host: to the relay's own (shared) listener on its
/// address towards the host, or to the configured target.
async fn socks(
    addr: SocketAddr,
    target: Option<&(String, u16)>,
    auth: Option<&(String, String)>,
    timeout: Duration,
    preamble: &[u8],
    rendezvous: &Rendezvous,
) -> Step<String> {
    let auth = auth.map(|(user, pass)| hasocks_probe::Auth {
        user: user.clone(),
        pass: pass.clone(),
    });
    let Some(target) = target else {
        let rv = rendezvous
            .at(local_ip_towards(addr))
            .await
            .map_err(|e| failed(&e, "socks check listener failed"))?;
        let start = std::time::Instant::now();
        return match hasocks_probe::end_to_end_via(&rv, addr, auth.as_ref(), timeout, preamble)
            .await
        {
            Ok(_) => Ok("socks ok".into()),
            Err(hasocks_probe::ProbeError::NoInbound) if rv.troubled_since(start) => {
                Err(Verdict::Local(
                    "socks check listener could not accept (out of descriptors?)".into(),
                ))
            }
            Err(e) => Err(probe_verdict(&e)),
        };
    };
    let (host, port) = target;
    let target = match host.parse::<IpAddr>() {
        Ok(ip) => hasocks_socks_wire::TargetAddr::Ip(SocketAddr::new(ip, *port)),
        Err(_) => hasocks_socks_wire::TargetAddr::domain(host.as_str(), *port)
            .map_err(|e| Verdict::Down(format!("socks target {host}: {e}")))?,
    };
    let probe = hasocks_probe::EndToEnd {
        proxy: addr,
        target: Some(target),
        bind_ip: local_ip_towards(addr),
        auth,
        timeout,
        preamble: preamble.to_vec(),
    };
    match hasocks_probe::end_to_end(&probe).await {
        Ok(_) => Ok("socks ok".into()),
        Err(e) => Err(probe_verdict(&e)),
    }
}

/// The socks check authenticated with GSS-API, through the shared rendezvous.
async fn socks_gssapi(
    addr: SocketAddr,
    g: &hasocks_conf::relayd::GssapiCheck,
    name: &str,
    timeout: Duration,
    preamble: &[u8],
    rendezvous: &Rendezvous,
) -> Step<String> {
    let host = name.rsplit_once(':').map_or(name, |(h, _)| h);
    let auth = hasocks_probe::GssAuth {
        keytab: g.keytab.clone(),
        principal: g.principal.clone(),
        service: g.service.clone().unwrap_or_else(|| format!("rcmd@{host}")),
    };
    let rv = rendezvous
        .at(local_ip_towards(addr))
        .await
        .map_err(|e| failed(&e, "socks check listener failed"))?;
    match hasocks_probe::end_to_end_via_gss(&rv, addr, &auth, timeout, preamble).await {
        Ok(_) => Ok("socks gssapi ok".into()),
        Err(e) => Err(probe_verdict(&e)),
    }
}

/// A probe failure: local when our side ran out of resources (our connect to the host, or
/// our own listener), else a verdict on the host.
fn probe_verdict(e: &hasocks_probe::ProbeError) -> Verdict {
    let msg = format!("socks {}", e.short());
    match e {
        hasocks_probe::ProbeError::Connect(io) | hasocks_probe::ProbeError::Io(io)
            if hasocks_net::sock::is_local_exhaustion(io) =>
        {
            Verdict::Local(msg)
        }
        _ => Verdict::Down(msg),
    }
}

/// The relay's own address towards `addr` (loopback for loopback hosts), where the SOCKS
/// probe listens for the proxy's connection.
fn local_ip_towards(addr: SocketAddr) -> IpAddr {
    hasocks_net::sock::route_source(addr.ip()).unwrap_or(if addr.is_ipv4() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    })
}

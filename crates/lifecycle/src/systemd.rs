//! systemd integration without libsystemd: sd_notify(3) (one datagram to `$NOTIFY_SOCKET`,
//! abstract names included), the watchdog interval, and socket activation (descriptors from
//! `LISTEN_FDS`, only when `LISTEN_PID` is this process, named by `LISTEN_FDNAMES`).

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
use std::time::Duration;

/// Sends `state` (lines `KEY=VALUE`) to the service manager. Ok(false) when not started by
/// one (`NOTIFY_SOCKET` unset).
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let path = path.to_string_lossy().into_owned();
    let addr = match path.strip_prefix('@') {
        Some(name) => UnixAddr::from_abstract_name(name.as_bytes())?,
        None => UnixAddr::from_pathname(&path)?,
    };
    let s = UnixDatagram::unbound()?;
    s.send_to_addr(state.as_bytes(), &addr)?;
    Ok(true)
}

/// `notify`, logging (not failing) when the manager cannot be told.
pub fn tell(state: &str) {
    if let Err(e) = notify(state) {
        tracing::warn!(
            "sd_notify {:?}: {e}",
            state.lines().next().unwrap_or_default()
        );
    }
}

/// `READY=1` with a status line.
pub fn ready(status: &str) {
    tell(&format!("READY=1\nSTATUS={status}"));
}

/// `RELOADING=1` with `MONOTONIC_USEC` in the same datagram (systemd 253+ needs both).
pub fn reloading() {
    tell(&format!(
        "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading",
        monotonic_usec()
    ));
}

/// `STOPPING=1` with a status line.
pub fn stopping(status: &str) {
    tell(&format!("STOPPING=1\nSTATUS={status}"));
}

/// This process is the service's main process now (after a binary upgrade).
pub fn main_pid() {
    tell(&format!("MAINPID={}", std::process::id()));
}

/// CLOCK_MONOTONIC in microseconds.
pub fn monotonic_usec() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0) / 1000
}

/// The watchdog interval the manager asked for (`WATCHDOG_USEC`, for this process per
/// `WATCHDOG_PID` when set); ping at half of it.
pub fn watchdog_interval() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim() != std::process::id().to_string() {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Pings the watchdog at half the interval, for as long as the runtime runs this task
/// (a wedged runtime stops the pings, and the manager restarts the service).
pub async fn watchdog(every: Duration) {
    let mut tick = tokio::time::interval(every / 2);
    loop {
        tick.tick().await;
        tell("WATCHDOG=1");
    }
}

/// Starts [`watchdog`] when the manager asked for one.
pub fn spawn_watchdog() -> Option<tokio::task::JoinHandle<()>> {
    watchdog_interval().map(|every| tokio::spawn(watchdog(every)))
}

/// A listening socket handed in by socket activation, with its `FileDescriptorName=`.
#[derive(Debug)]
pub struct Activated {
    /// The name systemd gave it (`LISTEN_FDNAMES`), if any.
    pub name: Option<String>,
    /// The socket.
    pub listener: std::net::TcpListener,
}

/// Takes the TCP listening sockets of socket activation and clears the variables, so that
/// children do not see them. Empty when `LISTEN_PID` is not this process (the variables are
/// then meant for another one). Call it before any other thread starts: it changes the
/// environment.
pub fn take_listen_fds() -> io::Result<Vec<Activated>> {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .is_some_and(|p| p.trim() == std::process::id().to_string());
    if !ours {
        return Ok(Vec::new());
    }
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .unwrap_or_default()
        .split(':')
        .map(str::to_string)
        .collect();
    let mut fds = listenfd::ListenFd::from_env();
    let mut out = Vec::new();
    for i in 0..fds.len() {
        match fds.take_tcp_listener(i)? {
            Some(l) => {
                l.set_nonblocking(true)?;
                out.push(Activated {
                    name: names.get(i).filter(|n| !n.is_empty()).cloned(),
                    listener: l,
                });
            }
            None => tracing::warn!(
                "socket activation: descriptor {} is not a TCP listener; ignored",
                3 + i
            ),
        }
    }
    std::env::remove_var("LISTEN_FDNAMES");
    Ok(out)
}

/// The TCP listening sockets of socket activation ([`take_listen_fds`]), logged when there
/// are any.
pub fn activated_listeners() -> io::Result<Vec<std::net::TcpListener>> {
    let got = take_listen_fds()?;
    if !got.is_empty() {
        tracing::info!("socket activation: {} listening sockets", got.len());
    }
    Ok(got.into_iter().map(|a| a.listener).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monotonic_clock_moves_forward() {
        let a = monotonic_usec();
        let b = monotonic_usec();
        assert!(a > 0 && b >= a);
    }
}

//! Shared pieces of the relay tests: configs built in code, tiny backends, clients bound to a
//! chosen loopback source address, and waiting on a condition with a deadline.
#![allow(dead_code)]

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use conf::relayd::{
    Check, Forward, HostEntry, Listen, LogConnections, Mode, Relay, RelaydConfig, Table,
};
use relay::{HostState, RelayHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// How long any wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A table whose hosts are `127.0.0.1` with their own ports (one entry per port).
pub fn table(name: &str, ports: &[u16]) -> Table {
    Table {
        name: name.to_string(),
        disabled: false,
        hosts: ports
            .iter()
            .map(|p| HostEntry {
                name: "127.0.0.1".to_string(),
                port: Some(*p),
                retry: 0,
                line: 1,
            })
            .collect(),
        interval_s: 3600,
        timeout_ms: 1000,
        line: 1,
    }
}

/// A forward to `table` with `mode` and `check` (checks only at start and on `poll`).
pub fn forward(table: &str, mode: Mode, check: Option<Check>) -> Forward {
    Forward {
        table: table.to_string(),
        port: 1,
        mode,
        check,
        timeout_ms: None,
        interval_s: None,
        line: 1,
    }
}

/// A relay listening on 127.0.0.1:0.
pub fn relay(forwards: Vec<Forward>) -> Relay {
    Relay {
        name: "socks".to_string(),
        listens: vec![Listen {
            addr: "127.0.0.1".to_string(),
            port: 0,
        }],
        forwards,
        session_timeout_s: 600,
        disabled: false,
        send_proxy_v2: false,
        line: 1,
    }
}

/// A whole config.
pub fn config(tables: Vec<Table>, relays: Vec<Relay>) -> RelaydConfig {
    RelaydConfig {
        interval_s: 3600,
        timeout_ms: 1000,
        log_host_checks: false,
        log_connections: LogConnections::All,
        socket: None,
        prefork: None,
        tables,
        relays,
        warnings: Vec::new(),
    }
}

/// The relay's first listen address.
pub fn addr_of(h: &RelayHandle) -> SocketAddr {
    h.listen_addrs()
        .first()
        .map(|(_, a)| *a)
        .expect("relay listens")
}

/// Waits until `cond` holds, polling; panics with `what` after [`DEADLINE`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// State of host `i` of table instance `table` (`name:port`).
pub fn state(h: &RelayHandle, table: &str, i: usize) -> HostState {
    h.snapshot()
        .table(table)
        .and_then(|t| t.hosts.get(i).map(|h| h.state))
        .expect("table and host exist")
}

/// What a backend does with one connection.
pub type Serve = Arc<dyn Fn(TcpStream) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Wraps an async closure as a [`Serve`].
pub fn serve<Fut>(f: impl Fn(TcpStream) -> Fut + Send + Sync + 'static) -> Serve
where
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |s| Box::pin(f(s)))
}

/// A TCP server whose connections run `serve`; it can be stopped (listener and open
/// connections closed, so connects are refused) and restarted on the same port.
pub struct Backend {
    pub addr: SocketAddr,
    serve: Serve,
    task: Option<JoinHandle<()>>,
    /// While stopped: the port, bound but not listening (connects are refused), so that no
    /// other test's port-0 bind takes it in the meantime.
    held: Option<TcpSocket>,
}

impl Backend {
    /// Starts on 127.0.0.1:0.
    pub async fn start(serve: Serve) -> Self {
        Self::start_on(Ipv4Addr::LOCALHOST, serve).await
    }

    /// Starts on `ip`:0.
    pub async fn start_on(ip: Ipv4Addr, serve: Serve) -> Self {
        let l = TcpListener::bind((ip, 0)).await.expect("bind backend");
        let addr = l.local_addr().expect("addr");
        let mut b = Backend {
            addr,
            serve,
            task: None,
            held: None,
        };
        b.run(l);
        b
    }

    fn run(&mut self, l: TcpListener) {
        let serve = self.serve.clone();
        self.task = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            // Aborting this task drops the JoinSet, which aborts every connection.
            while let Ok((s, _)) = l.accept().await {
                conns.spawn(serve(s));
            }
        }));
    }

    /// Closes the listener and every open connection.
    pub async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
            // Our descriptor is closed now, but a child that another test forked (a check
            // script) keeps a copy until its exec(2), and the kernel keeps accepting for it.
            wait_until("the stopped backend's listener to close", || {
                !listening(self.addr)
            })
            .await;
            // Best effort: a connect elsewhere may already have taken the port as its source.
            self.held = TcpSocket::new_v4()
                .and_then(|held| {
                    held.set_reuseaddr(true)?;
                    held.bind(self.addr)?;
                    Ok(held)
                })
                .ok();
        }
    }

    /// Listens again on the same address.
    pub async fn restart(&mut self) {
        self.held = None;
        let l = TcpListener::bind(self.addr).await.expect("rebind backend");
        self.run(l);
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// A backend that sends one id byte, then echoes.
pub async fn id_backend(id: u8) -> Backend {
    id_backend_on(Ipv4Addr::LOCALHOST, id).await
}

/// An id-echo backend on `ip`.
pub async fn id_backend_on(ip: Ipv4Addr, id: u8) -> Backend {
    Backend::start_on(
        ip,
        serve(move |mut s: TcpStream| async move {
            if s.write_all(&[id]).await.is_err() {
                return;
            }
            let (mut r, mut w) = s.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        }),
    )
    .await
}

/// Connects to `dst` from `src` (port chosen by the kernel).
pub async fn connect_from(src: Ipv4Addr, dst: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(IpAddr::V4(src), 0))?;
    s.connect(dst).await
}

/// One session through the relay from `src`: the id byte of the backend that answered and an
/// echo round trip; None if the relay closed the session.
pub async fn session_from(src: Ipv4Addr, relay: SocketAddr) -> Option<u8> {
    let run = async {
        let mut s = connect_from(src, relay).await.ok()?;
        let mut id = [0u8; 1];
        s.read_exact(&mut id).await.ok()?;
        s.write_all(b"ping").await.ok()?;
        let mut back = [0u8; 4];
        s.read_exact(&mut back).await.ok()?;
        (&back == b"ping").then_some(id[0])
    };
    tokio::time::timeout(DEADLINE, run)
        .await
        .expect("session finished in time")
}

/// Client source address 127.0.0.`n`.
pub fn client(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

/// Writes an executable shell script into a fresh temp file.
pub fn script(tag: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::temp_dir().join(format!("relay-test-{}-{tag}.sh", std::process::id()));
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Whether some socket on this machine listens on `addr` (IPv4), from /proc/net/tcp.
pub fn listening(addr: SocketAddr) -> bool {
    let IpAddr::V4(ip) = addr.ip() else {
        return false;
    };
    // /proc/net/tcp writes the address as the hex of its in-memory (network order) u32.
    let want = format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(ip.octets()),
        addr.port()
    );
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&want.as_str()) && f.get(3) == Some(&"0A")
        })
}

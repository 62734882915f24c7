//! Things to connect to: echo and id servers, one-shot acceptors, stoppable backends, UDP
//! echo; and clients bound to a chosen loopback source.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use crate::ports::listening;
use crate::wait::{wait_until, DEADLINE};

/// A TCP echo server on `ip`:0 (it passes the client's half-close on); returns its address.
pub async fn echo_server(ip: &str) -> SocketAddr {
    let l = TcpListener::bind((ip, 0)).await.expect("bind echo");
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A server that accepts one connection and hands it (and the peer) back.
pub async fn one_shot_server(
    ip: &str,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Receiver<(TcpStream, SocketAddr)>,
) {
    let l = TcpListener::bind((ip, 0)).await.expect("bind");
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        if let Ok(pair) = l.accept().await {
            let _ = tx.send(pair);
        }
    });
    (addr, rx)
}

/// A UDP echo server on `ip`:0; returns its address and every payload it echoed, in order.
pub async fn udp_echo_server(ip: &str) -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let s = tokio::net::UdpSocket::bind((ip, 0))
        .await
        .expect("bind udp echo");
    let addr = s.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            // Recorded after the echo left, so "seen" also means "answered".
            let _ = s.send_to(&buf[..n], from).await;
            log.lock().unwrap().push(buf[..n].to_vec());
        }
    });
    (addr, seen)
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
    /// Where it listens.
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

/// One session through a relay from `src` to an id backend: the id byte of the backend that
/// answered and an echo round trip; None if the relay closed the session.
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
    let path = std::env::temp_dir().join(format!("hasocks-test-{}-{tag}.sh", std::process::id()));
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// A fresh, empty temp folder for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hasocks-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

//! Listeners, accept loops, live reload and graceful stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use conf::sockd::SockdConfig;
use net::listen::Acceptor;
use net::shutdown::Shutdown;
use tokio_util::sync::CancellationToken;

use crate::logger::{Level, Logger};
use crate::runtime::{resolve_host, Runtime, Shared};
use crate::session;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting could not be put into effect (unresolvable name, log file).
    #[error("{0}")]
    Setup(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr} (internal: line {line}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Config line of the `internal:`.
        line: u32,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A running SOCKS server.
pub struct ServerHandle {
    rt: Arc<ArcSwap<Runtime>>,
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    shutdown: Shutdown,
    hard_stop: CancellationToken,
    internals: Vec<conf::sockd::Internal>,
}

/// Builds the runtime (blocking name resolution) off the async threads.
async fn build_runtime(cfg: SockdConfig, shared: Arc<Shared>) -> Result<Runtime, String> {
    tokio::task::spawn_blocking(move || {
        let logger = Logger::new(&cfg.logoutput, &cfg.errorlog).map_err(|e| e.to_string())?;
        Runtime::build_with(&cfg, Arc::new(logger), &shared)
    })
    .await
    .map_err(|e| format!("internal error building the config: {e}"))?
}

impl ServerHandle {
    /// Binds every `internal:` address and starts serving.
    pub async fn start(cfg: SockdConfig) -> Result<Self, StartError> {
        let internals = cfg.internals.clone();
        let shared = Arc::new(Shared::default());
        let rt = build_runtime(cfg, shared.clone())
            .await
            .map_err(StartError::Setup)?;
        let rt = Arc::new(ArcSwap::from_pointee(rt));
        let shutdown = Shutdown::new();
        let hard_stop = CancellationToken::new();
        let mut listeners = Vec::new();
        for internal in &internals {
            let ips = resolve_host(&internal.host)
                .map_err(|m| StartError::Setup(format!("internal: {m}")))?;
            for ip in ips {
                let addr = SocketAddr::new(ip, internal.port);
                let l = net::sock::listen_tcp(addr).map_err(|source| StartError::Bind {
                    addr,
                    line: internal.line,
                    source,
                })?;
                listeners.push(l);
            }
        }
        let mut addrs = Vec::new();
        for l in listeners {
            let acceptor = Acceptor::new(l);
            if let Ok(a) = acceptor.local_addr() {
                addrs.push(a);
            }
            tokio::spawn(accept_loop(
                acceptor,
                rt.clone(),
                shutdown.clone(),
                hard_stop.clone(),
            ));
        }
        Ok(Self {
            rt,
            shared,
            addrs,
            shutdown,
            hard_stop,
            internals,
        })
    }

    /// The addresses actually listened on (port 0 in a config becomes the real port).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Sessions still open.
    pub fn active_sessions(&self) -> usize {
        self.shutdown.active()
    }

    /// Authentication successes and failures since start.
    pub fn auth_stats(&self) -> crate::session::auth::AuthCounts {
        self.shared.verifier.stats().snapshot()
    }

    /// Writes a line to the current log destinations.
    pub fn log(&self, level: Level, msg: &str) {
        self.rt.load().logger.log(level, msg);
    }

    /// Puts a new config into effect for new sessions; open sessions keep their old one.
    /// `internal:` changes need a restart (listeners stay as they are); that is reported.
    pub async fn reload(&self, cfg: SockdConfig) -> Result<Vec<String>, String> {
        let mut notes = Vec::new();
        if cfg
            .internals
            .iter()
            .map(|i| (&i.host, i.port))
            .ne(self.internals.iter().map(|i| (&i.host, i.port)))
        {
            notes.push("internal: changed; listeners stay as they are until a restart".to_string());
        }
        let rt = build_runtime(cfg, self.shared.clone()).await?;
        self.rt.store(Arc::new(rt));
        Ok(notes)
    }

    /// Reopens log files (logrotate).
    pub fn reopen_logs(&self) -> Vec<String> {
        self.rt.load().logger.reopen()
    }

    /// Stops accepting, waits up to `deadline` for sessions, then cuts the rest.
    /// Returns how many sessions had to be cut.
    pub async fn shutdown(self, deadline: Duration) -> usize {
        let left = self.shutdown.drain(deadline).await;
        self.hard_stop.cancel();
        if left > 0 {
            // Give cut sessions a moment to write their disconnect lines.
            let _ = self.shutdown.drain(Duration::from_millis(500)).await;
        }
        left
    }
}

async fn accept_loop(
    mut acceptor: Acceptor,
    rt: Arc<ArcSwap<Runtime>>,
    shutdown: Shutdown,
    hard_stop: CancellationToken,
) {
    let token = shutdown.token();
    while let Some((stream, peer)) = acceptor.accept(&token).await {
        let rt = rt.load_full();
        shutdown.spawn(session::serve(stream, peer, rt, hard_stop.clone()));
    }
}

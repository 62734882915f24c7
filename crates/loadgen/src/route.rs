//! Where a TCP load's sessions go and how: through a SOCKS5 proxy or straight to the target,
//! from a chosen source address or the kernel's, under one timeout per session.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hasocks_probe::{socks5_over, Auth};
use hasocks_socks_wire::TargetAddr;
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::SessionError;

/// The way to the target every session of a load takes.
#[derive(Debug, Clone)]
pub struct Route {
    /// The SOCKS5 server or relay; `None` connects straight to `target_addr`.
    pub proxy: Option<SocketAddr>,
    /// The target as the proxy is asked for it (a name stays a name).
    pub target: TargetAddr,
    /// The target's address here (needed without a proxy).
    pub target_addr: Option<SocketAddr>,
    /// RFC 1929 credentials for the proxy.
    pub auth: Option<Auth>,
    /// The budget of one session's connect and handshake (and of its echo).
    pub timeout: Duration,
    /// The source address of the connections; `None`: the kernel's choice.
    pub source: Option<IpAddr>,
}

impl Route {
    /// Straight to `target`, no SOCKS: the reference line of a benchmark.
    pub fn direct(target: SocketAddr, timeout: Duration) -> Route {
        Route {
            proxy: None,
            target: TargetAddr::Ip(target),
            target_addr: Some(target),
            auth: None,
            timeout,
            source: None,
        }
    }

    /// Through the SOCKS5 server `proxy` to `target`, no credentials.
    pub fn via(proxy: SocketAddr, target: SocketAddr, timeout: Duration) -> Route {
        Route {
            proxy: Some(proxy),
            ..Route::direct(target, timeout)
        }
    }

    /// A connected stream to the target, through the proxy unless direct.
    pub async fn open(&self) -> Result<TcpStream, SessionError> {
        let deadline = Instant::now() + self.timeout;
        let to = match (self.proxy, self.target_addr) {
            (Some(p), _) => p,
            (None, Some(t)) => t,
            (None, None) => return Err(SessionError::NoTargetAddress),
        };
        let s = match self.source {
            None => timeout_at(deadline, TcpStream::connect(to))
                .await
                .map_err(|_| SessionError::Timeout("connect"))?,
            Some(ip) => {
                hasocks_net::sock::connect_tcp(
                    to,
                    Some(ip),
                    deadline.duration_since(Instant::now()),
                )
                .await
            }
        }
        .map_err(SessionError::Connect)?;
        if self.proxy.is_none() {
            let _ = s.set_nodelay(true);
            return Ok(s);
        }
        let (s, _) = socks5_over(s, &self.target, self.auth.as_ref(), deadline, None).await?;
        Ok(s)
    }

    /// How reports name the route: `socks5 ADDR` or `direct`.
    pub fn label(&self) -> String {
        match self.proxy {
            Some(p) => format!("socks5 {p}"),
            None => "direct".into(),
        }
    }
}

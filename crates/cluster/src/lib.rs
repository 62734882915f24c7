//! A whole SOCKS cluster on loopback in one process (`hasocks up`), from built-in configs: a
//! relay on 127.0.0.1:1080 (`mode loadbalance`, `check socks`) in front of two SOCKS servers
//! on 127.0.0.2 and 127.0.0.3, its control socket and a status page. Everything binds
//! loopback only.
//!
//! Data flow: [`Options`] -> the configs written to a folder (as a user would write them) ->
//! parsed -> two `ServerHandle`s and a `RelayHandle` -> what to try printed -> until stopped.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hasocks_ctl_proto::{render, Show};
use hasocks_lifecycle::control::{self, Control};
use hasocks_relay::admin_source::RelayAdmin;
use hasocks_relay::daemon::RelayDaemon;
use hasocks_relay::RelayHandle;
use hasocks_server::ServerHandle;
use tokio_util::sync::CancellationToken;

/// Where the cluster listens and keeps its files.
#[derive(Debug, Clone)]
pub struct Options {
    /// Port of the relay on 127.0.0.1 (the address clients use).
    pub port: u16,
    /// Port of the status page on 127.0.0.1.
    pub status_port: u16,
    /// Port of the two SOCKS servers on 127.0.0.2 and 127.0.0.3.
    pub server_port: u16,
    /// Folder for the generated configs and logs (None: a new folder under the temp dir).
    pub dir: Option<PathBuf>,
}

const SERVERS: [(&str, &str); 2] = [("a", "127.0.0.2"), ("b", "127.0.0.3")];

fn server_conf(ip: &str, port: u16, log: &Path) -> String {
    format!(
        "# hasocks up: SOCKS server on {ip} (Dante sockd.conf syntax)\n\
         errorlog: stderr\n\
         logoutput: {log}\n\
         internal: {ip} port = {port}\n\
         external: {ip}\n\
         socksmethod: none\n\n\
         client pass {{\n        from: 127.0.0.0/8 to: 0/0\n        log: error\n}}\n\n\
         socks pass {{\n        from: 127.0.0.0/8 to: 0/0\n        log: error connect disconnect\n}}\n",
        log = log.display()
    )
}

fn relay_conf(port: u16, server_port: u16, socket: &Path) -> String {
    let hosts: Vec<String> = SERVERS
        .iter()
        .map(|(_, ip)| format!("{ip} port {server_port}"))
        .collect();
    format!(
        "# hasocks up: the relay (relayd.conf syntax)\n\
         interval 2\n\
         timeout 1000\n\
         log state changes\n\
         socket \"{socket}\"\n\n\
         table <socks> {{ {} }}\n\n\
         relay \"socks\" {{\n    listen on 127.0.0.1 port {port}\n    \
         # SOCKS control connections carry UDP associations: no idle cut-off.\n    \
         session timeout 0\n    \
         forward to <socks> port {server_port} mode loadbalance check socks\n}}\n",
        hosts.join(", "),
        socket = socket.display()
    )
}

/// Starts the cluster and runs until `stop` resolves (Ctrl-C, SIGTERM).
pub async fn run(
    args: Options,
    stop_signal: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("hasocks-up-{}", std::process::id())));
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let _ = hasocks_net::sock::raise_nofile_limit();

    let mut servers = Vec::new();
    for (name, ip) in SERVERS {
        let path = dir.join(format!("sockd-{name}.conf"));
        let text = server_conf(ip, args.server_port, &dir.join(format!("sockd-{name}.log")));
        std::fs::write(&path, &text)?;
        let cfg = hasocks_conf::sockd::parse(&text, &path)?;
        let h = ServerHandle::start(cfg)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        servers.push((path, h));
    }
    let relay_path = dir.join("relayd.conf");
    let socket = dir.join("relay.sock");
    let text = relay_conf(args.port, args.server_port, &socket);
    std::fs::write(&relay_path, &text)?;
    let cfg = hasocks_conf::relayd::parse(&text, &relay_path, &[])?;
    let relay = Arc::new(RelayHandle::start(cfg).await.map_err(|e| {
        anyhow::anyhow!(
            "{}: {e} (is something else on 127.0.0.1:{}? try --port)",
            relay_path.display(),
            args.port
        )
    })?);
    let stop = CancellationToken::new();
    let ctl = Control::new(Arc::new(RelayDaemon::new(
        relay.clone(),
        relay_path.clone(),
        Vec::new(),
    )));
    let listener = control::bind::bind(&socket, control::bind::Existing::IfStale)?;
    tokio::spawn(control::serve(listener, ctl, stop.clone()));
    let status_addr = SocketAddr::from(([127, 0, 0, 1], args.status_port));
    let _status = hasocks_admin::start(
        status_addr,
        Arc::new(RelayAdmin::new(relay.clone())),
        hasocks_admin::Limits::default(),
    )
    .map_err(|e| anyhow::anyhow!("status page: {e} (try --status-port)"))?;

    println!("hasocks up: a SOCKS cluster on loopback");
    for (path, h) in &servers {
        let addr = h.local_addrs().first().copied();
        println!(
            "  server   {:<22} config {}",
            addr.map_or_else(String::new, |a| a.to_string()),
            path.display()
        );
    }
    for (name, addr) in relay.listen_addrs() {
        println!(
            "  relay    {:<22} config {} (relay \"{name}\", mode loadbalance, check socks)",
            addr,
            relay_path.display()
        );
    }
    println!(
        "  control  hasocks ctl -s {} show summary",
        socket.display()
    );
    println!("  status   http://{status_addr}/ (also /metrics, /status.json, /live, /ready)");
    println!("  logs     {}", dir.display());
    println!();
    let ready = relay.wait_ready(Duration::from_secs(5)).await;
    println!("{}", render::status(&relay.snapshot(), Show::Summary));
    if !ready {
        println!("(first health checks not finished yet)");
    }
    println!("Try it (the status page, fetched through the relay and one of the servers):");
    println!(
        "  curl --socks5-hostname 127.0.0.1:{} http://127.0.0.1:{}/",
        args.port, args.status_port
    );
    println!("Ctrl-C stops everything.");

    stop_signal.await;
    println!("stopping...");
    stop.cancel();
    // The relay first: it stops accepting and lets its sessions finish while the servers
    // behind it still serve them.
    relay.shutdown(Duration::from_secs(5)).await;
    for (_, h) in &servers {
        h.shutdown(Duration::from_secs(5)).await;
    }
    let _ = std::fs::remove_file(&socket);
    Ok(())
}

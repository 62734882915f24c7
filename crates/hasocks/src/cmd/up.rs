//! `hasocks up`: a whole cluster on loopback (hasocks-cluster).

use std::path::PathBuf;

/// Options of `hasocks up`.
#[derive(clap::Args)]
pub struct UpArgs {
    /// Port of the relay on 127.0.0.1 (the address clients use).
    #[arg(long, default_value_t = 1080)]
    pub port: u16,
    /// Port of the status page on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    pub status_port: u16,
    /// Port of the two SOCKS servers on 127.0.0.2 and 127.0.0.3.
    #[arg(long, default_value_t = 1080)]
    pub server_port: u16,
    /// Folder for the generated configs and logs (default: a new folder under the temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Runs the cluster until Ctrl-C / SIGTERM.
pub async fn run(a: UpArgs) -> anyhow::Result<i32> {
    let options = hasocks_cluster::Options {
        port: a.port,
        status_port: a.status_port,
        server_port: a.server_port,
        dir: a.dir,
    };
    hasocks_cluster::run(options, hasocks_lifecycle::stop_requested()).await?;
    Ok(0)
}

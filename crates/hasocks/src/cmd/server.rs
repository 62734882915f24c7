//! `hasocks server`: run (or, with -V, only check) a sockd.conf.

use std::path::PathBuf;

use hasocks_server::daemon::{self, DaemonOpts};

/// Options of `hasocks server`.
#[derive(clap::Args)]
pub struct ServerArgs {
    /// The sockd.conf to run.
    #[arg(short = 'f', long = "config", default_value = "/etc/sockd.conf")]
    pub file: PathBuf,
    /// Only check the config and exit (0 = valid), like `sockd -V`.
    #[arg(short = 'V', long = "verify")]
    pub verify: bool,
    #[command(flatten)]
    pub life: super::LifeArgs,
}

/// Runs the server until SIGTERM/SIGINT; SIGHUP reloads the config and reopens logs.
pub async fn run(args: ServerArgs, activated: Vec<std::net::TcpListener>) -> anyhow::Result<i32> {
    if args.verify {
        let cfg = hasocks_conf::sockd::load(&args.file)?;
        for w in &cfg.warnings {
            eprintln!("hasocks: warning: {w}");
        }
        hasocks_server::session::auth::check_libraries(&cfg)?;
        for line in hasocks_server::route::describe(&cfg) {
            println!("{line}");
        }
        println!("{}: configuration OK", args.file.display());
        return Ok(0);
    }
    daemon::run(DaemonOpts {
        file: args.file,
        options: args.life.options(activated),
    })
    .await?;
    Ok(0)
}

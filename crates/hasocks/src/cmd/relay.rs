//! `hasocks relay`: run (or, with -n, only check) a relayd.conf.

use std::path::PathBuf;

use hasocks_relay::daemon::{self, DaemonOpts};

/// Options of `hasocks relay`.
#[derive(clap::Args)]
pub struct RelayArgs {
    /// The relayd.conf to run.
    #[arg(short = 'f', long = "config", default_value = "/etc/relayd.conf")]
    pub file: PathBuf,
    /// Only check the config and exit (0 = valid), like `relayd -n`.
    #[arg(short = 'n', long = "check-only")]
    pub check_only: bool,
    /// Define or override a macro, like `relayd -D name=value` (repeatable).
    #[arg(short = 'D', value_name = "NAME=VALUE")]
    pub defines: Vec<String>,
    #[command(flatten)]
    pub life: super::LifeArgs,
}

/// Runs the relay until SIGTERM/SIGINT (SIGHUP reloads).
pub async fn run(args: RelayArgs, activated: Vec<std::net::TcpListener>) -> anyhow::Result<i32> {
    let defines = hasocks_conf::relayd::parse_defines(&args.defines)?;
    if args.check_only {
        let cfg = hasocks_conf::relayd::load(&args.file, &defines)?;
        for w in &cfg.warnings {
            eprintln!("hasocks: warning: {w}");
        }
        println!("{}: configuration OK", args.file.display());
        return Ok(0);
    }
    daemon::run(DaemonOpts {
        file: args.file,
        defines,
        options: args.life.options(activated),
    })
    .await?;
    Ok(0)
}

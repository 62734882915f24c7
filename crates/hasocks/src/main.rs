//! `hasocks`: the one binary. CLI and wiring only; the work lives in the library crates.
#![forbid(unsafe_code)]

mod cmd;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// High-availability SOCKS: a Dante-compatible server and a relayd-compatible relay.
///
/// hasocks server is a SOCKS 4, 4a and 5 server that reads Dante's sockd.conf. hasocks relay
/// is a layer-4 relay that reads OpenBSD relayd's relayd.conf and spreads clients over a pool
/// of SOCKS servers by client address, with health checks that speak SOCKS. hasocks ctl
/// controls a running relay as relayctl does, hasocks check probes one SOCKS server end to
/// end, hasocks bench loads a SOCKS server or relay, and hasocks up runs a whole cluster on
/// loopback. Both daemons reload on SIGHUP, stop on SIGTERM or SIGINT after a grace time, and
/// hand their listening sockets to a new binary on SIGUSR2 or --upgrade.
#[derive(Parser)]
#[command(name = "hasocks", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A whole cluster on loopback: relay on 127.0.0.1:1080, two servers, checks, status page.
    Up(cmd::up::UpArgs),
    /// SOCKS 4/4a/5 server driven by a Dante sockd.conf.
    Server(cmd::server::ServerArgs),
    /// Layer-4 relay for a pool of SOCKS servers, driven by a relayd.conf.
    Relay(cmd::relay::RelayArgs),
    /// Control a running relay over its control socket, as relayctl does.
    Ctl(cmd::ctl::CtlArgs),
    /// Probe one SOCKS server end to end (exit 0 = it forwards).
    Check(cmd::check::CheckArgs),
    /// Load generator for any SOCKS5 server or relay.
    Bench(cmd::bench::BenchArgs),
    /// The server's privileged password-check helper (started by `hasocks server` itself).
    #[command(name = "auth-helper", hide = true)]
    AuthHelper,
    /// Man pages and shell completions from this CLI definition (for packaging).
    #[command(hide = true)]
    Generate(cmd::generate::GenerateArgs),
}

/// `-V`: the version and the commit it was built from.
fn short_version() -> String {
    format!(
        "{} (commit {})",
        env!("CARGO_PKG_VERSION"),
        env!("HASOCKS_COMMIT")
    )
}

/// `--version`: also which optional run-time libraries this machine has.
fn long_version() -> String {
    format!("{}\n{}", short_version(), hasocks_syslib::describe())
}

/// The process's exit status for a command's outcome (errors printed with their causes).
fn exit(result: anyhow::Result<i32>) -> std::process::ExitCode {
    match result {
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("hasocks: {}", cmd::error_text(&e));
            std::process::ExitCode::from(1)
        }
    }
}

fn main() -> std::process::ExitCode {
    let parsed = Cli::command()
        .version(short_version())
        .long_version(long_version())
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            // Under relayd's check-script contract any exit > 0 means "up": a usage error
            // must read as "down" (0), never as a healthy host.
            let relayd = std::env::args().any(|a| a == "--relayd");
            if relayd && e.use_stderr() {
                let _ = e.print();
                return std::process::ExitCode::from(0);
            }
            e.exit();
        }
    };
    if let Command::AuthHelper = cli.command {
        return std::process::ExitCode::from(
            u8::try_from(hasocks_server::privs::run_auth_helper()).unwrap_or(1),
        );
    }
    if let Command::Generate(a) = cli.command {
        return exit(cmd::generate::run(a, Cli::command()));
    }
    hasocks_lifecycle::init_logging();
    // Socket activation changes the environment: before any other thread exists.
    let activated = match hasocks_lifecycle::systemd::activated_listeners() {
        Ok(a) => a,
        Err(e) => return exit(Err(anyhow::anyhow!("socket activation: {e}"))),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let Ok(rt) = rt.map_err(|e| eprintln!("hasocks: cannot start the runtime: {e}")) else {
        return std::process::ExitCode::from(1);
    };
    exit(rt.block_on(async {
        match cli.command {
            Command::Up(a) => cmd::up::run(a).await,
            Command::Server(a) => cmd::server::run(a, activated).await,
            Command::Relay(a) => cmd::relay::run(a, activated).await,
            Command::Ctl(a) => cmd::ctl::run(a).await,
            Command::Check(a) => cmd::check::run(a).await,
            Command::Bench(a) => cmd::bench::run(a).await,
            Command::AuthHelper | Command::Generate(_) => Ok(0),
        }
    }))
}

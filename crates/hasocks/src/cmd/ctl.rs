//! `hasocks ctl`: relayctl for a running relay or server, over its control socket.

use std::io::Write;
use std::path::PathBuf;

use hasocks_ctl_proto::{self as ctl, render, words, Body, Command};

/// Options of `hasocks ctl`.
#[derive(clap::Args)]
#[command(after_help = concat!("Commands (keywords may be shortened, as in relayctl):\n", "  show summary|hosts|relays|sessions\n  host disable|enable|drain NAME|ID\n  table disable|enable NAME|ID\n  relay disable|enable NAME|ID\n  relay drain|undrain\n  poll\n  reload\n  load FILE\n  log brief|verbose\n  monitor\nA server's control socket (-s /run/hasocks/server.sock) takes show summary and reload."))]
pub struct CtlArgs {
    /// The control socket: a relay's (its `socket "path"`) or a server's (`hasocks.socket:`).
    #[arg(short = 's', long = "socket", default_value = ctl::RELAY_SOCKET)]
    pub socket: PathBuf,
    /// Print the answer as JSON (one line) instead of relayctl's text.
    #[arg(long)]
    pub json: bool,
    /// The command, as relayctl takes it.
    #[arg(required = true, num_args = 1.., value_name = "COMMAND")]
    pub words: Vec<String>,
}

/// Sends the command and prints the answer; exit 1 when the command failed, as relayctl.
pub async fn run(args: CtlArgs) -> anyhow::Result<i32> {
    let cmd = match words::parse(&args.words) {
        Ok(c) => c,
        Err(e) => {
            let usage = words::USAGE;
            eprintln!("hasocks ctl: {e}\nusage: hasocks ctl [-s SOCKET] [--json] COMMAND\n{usage}");
            return Ok(2);
        }
    };
    if cmd == Command::Monitor {
        return monitor(&args).await;
    }
    let body = ctl::request(&args.socket, cmd.clone()).await?;
    if args.json {
        println!("{}", serde_json::to_string(&body)?);
        return Ok(i32::from(matches!(body, Body::Error { .. })));
    }
    let p = render::reply(&cmd, body)?;
    print!("{}", p.out);
    if !p.err.is_empty() {
        eprintln!("hasocks ctl: {}", p.err);
    }
    Ok(p.code)
}

/// Prints every event until the daemon closes the stream or Ctrl-C.
async fn monitor(args: &CtlArgs) -> anyhow::Result<i32> {
    let json = args.json;
    let stream = ctl::monitor(&args.socket, |e| {
        let line = match json {
            true => serde_json::to_string(&e)
                .map(|s| s + "\n")
                .unwrap_or_default(),
            false => render::event(&e),
        };
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes())
            .and_then(|_| out.flush())
            .is_ok()
    });
    tokio::select! {
        r = stream => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use clap::Args as _;

    use super::*;

    #[test]
    fn the_help_lists_every_line_of_the_command_words() {
        let cmd = CtlArgs::augment_args(clap::Command::new("ctl"));
        let help = cmd
            .get_after_help()
            .map(ToString::to_string)
            .unwrap_or_default();
        for line in words::USAGE.lines() {
            assert!(help.contains(&format!("  {line}\n")), "{line} in {help}");
        }
    }
}

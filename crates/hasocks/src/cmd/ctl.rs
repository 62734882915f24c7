//! `hasocks ctl`: relayctl for a running relay or server, over its control socket.

use std::io::Write;
use std::path::PathBuf;

use hasocks_ctl_proto::{self as ctl, render, words, Body, Command, Show};

/// Options of `hasocks ctl`.
#[derive(clap::Args)]
#[command(after_help = concat!("Commands (keywords may be shortened, as in relayctl):\n", "  show summary|hosts|relays|sessions\n  host disable|enable|drain NAME|ID\n  table disable|enable NAME|ID\n  relay disable|enable NAME|ID\n  poll\n  reload\n  load FILE\n  log brief|verbose\n  monitor\nA server's control socket (-s /run/hasocks/server.sock) takes show summary and reload."))]
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
            eprintln!(
                "hasocks ctl: {e}\nusage: hasocks ctl [-s SOCKET] [--json] COMMAND\n{}",
                words::USAGE
            );
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
    let out = std::io::stdout();
    let mut out = out.lock();
    match (&cmd, body) {
        (Command::Show { what }, Body::Status { status }) => {
            write!(out, "{}", render::status(&status, *what))?
        }
        (_, Body::Server { status }) => write!(out, "{}", render::server(&status))?,
        (
            Command::Show {
                what: Show::Sessions,
            },
            Body::Sessions { pid, sessions },
        ) => write!(out, "{}", render::sessions(pid, &sessions))?,
        (Command::Log { .. }, Body::Done { .. }) => writeln!(out, "logging request sent.")?,
        (_, Body::Done { .. }) => writeln!(out, "command succeeded")?,
        (_, Body::Reloaded { file, report }) => {
            writeln!(out, "command succeeded")?;
            writeln!(
                out,
                "reloaded {}: {}",
                file.display(),
                render::reload(&report)
            )?;
        }
        (_, Body::ServerReloaded { file, report }) => {
            writeln!(out, "command succeeded")?;
            let r = render::server_reload(&report);
            writeln!(out, "reloaded {}: {r}", file.display())?;
        }
        (_, Body::Error { message, .. }) => {
            writeln!(out, "command failed")?;
            eprintln!("hasocks ctl: {message}");
            return Ok(1);
        }
        (_, other) => anyhow::bail!("unexpected answer: {other:?}"),
    }
    Ok(0)
}

/// Prints every event until the daemon closes the stream or Ctrl-C.
async fn monitor(args: &CtlArgs) -> anyhow::Result<i32> {
    let json = args.json;
    let stream = ctl::monitor(&args.socket, |e| {
        let line = if json {
            serde_json::to_string(&e).map(|mut s| {
                s.push('\n');
                s
            })
        } else {
            Ok(render::event(&e))
        };
        let mut out = std::io::stdout().lock();
        match line {
            Ok(l) => out
                .write_all(l.as_bytes())
                .and_then(|_| out.flush())
                .is_ok(),
            Err(_) => false,
        }
    });
    tokio::select! {
        r = stream => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(0)
}

//! One module per subcommand.

pub mod bench;
pub mod check;
pub mod ctl;
pub mod generate;
pub mod relay;
pub mod server;
pub mod up;

/// How a daemon stops and hands over (shared by `relay` and `server`).
#[derive(clap::Args)]
pub struct LifeArgs {
    /// Seconds to let sessions finish after SIGTERM/SIGINT before cutting them.
    #[arg(long, default_value_t = 10)]
    pub grace: u64,
    /// Binary upgrade: take the listening sockets over from the process running with this
    /// config (through its control socket) instead of binding; it then stops accepting and
    /// lets its sessions finish. SIGUSR2 to the running process does the same with the binary
    /// now installed.
    #[arg(long)]
    pub upgrade: bool,
    /// Seconds an old process lets its sessions run after a successor took over, before
    /// cutting them (default: until they end, as HAProxy's and nginx's old processes do).
    #[arg(long, value_name = "SECS")]
    pub upgrade_grace: Option<u64>,
}

impl LifeArgs {
    /// The grace at a stop.
    pub fn grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.grace)
    }

    /// The grace after a takeover.
    pub fn upgrade_grace(&self) -> std::time::Duration {
        self.upgrade_grace
            .map_or(hasocks_net::clock::FOREVER, std::time::Duration::from_secs)
    }

    /// What the daemon is told, with the sockets socket activation passed.
    pub fn options(&self, activated: Vec<std::net::TcpListener>) -> hasocks_lifecycle::Options {
        hasocks_lifecycle::Options {
            grace: self.grace(),
            upgrade: self.upgrade,
            activated,
            upgrade_grace: self.upgrade_grace(),
        }
    }
}

/// An error and its causes on one line, each cause once: many of our errors already name
/// their cause in their own message (`cannot listen on ADDR: Address already in use`).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

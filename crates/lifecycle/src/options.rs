//! How a daemon starts and stops, as its command line says, and how its main loop ended.

use std::time::Duration;

/// The command line's lifecycle options, the same for the relay and the server.
#[derive(Debug, Default)]
pub struct Options {
    /// How long open sessions may take to finish at a stop.
    pub grace: Duration,
    /// Take the listening sockets (and state) over from the process running with this
    /// config, through its control socket, instead of binding.
    pub upgrade: bool,
    /// Listening sockets from socket activation.
    pub activated: Vec<std::net::TcpListener>,
    /// How long sessions may take to finish once a successor took over.
    pub upgrade_grace: Duration,
}

/// How a daemon's main loop ended (stopped, or taken over by a successor), and how long its
/// drain then waits for the open sessions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ending {
    /// A successor took over: the sockets are its; this process only drains.
    pub by_successor: bool,
    /// How long open sessions may run: the upgrade grace after a takeover, else the grace.
    pub wait: Duration,
    /// The grace a signal during a long post-takeover drain cuts it to.
    pub grace: Duration,
}

impl Ending {
    /// Logs what happens to the `open` sessions and tells systemd `STOPPING=1` unless a
    /// successor took over.
    pub fn new(by_successor: bool, options: &Options, open: usize) -> Ending {
        let (what, wait) = if by_successor {
            ("a new process took over", options.upgrade_grace)
        } else {
            ("stopping", options.grace)
        };
        tracing::info!(
            "{what}: no new sessions; {open} open, waiting {}",
            hasocks_net::clock::shown_wait(wait)
        );
        if !by_successor {
            crate::systemd::stopping(&format!("stopping, {open} sessions open"));
        }
        Ending {
            by_successor,
            wait,
            grace: options.grace,
        }
    }
}

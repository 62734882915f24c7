//! The relay's control socket (relayd's `socket "path"`, relayctl's counterpart) and the
//! protocol `hasocks ctl` speaks on it.
//!
//! # Protocol, version 1
//!
//! A Unix stream socket (mode 0660). The client writes one request per line, a JSON object
//! with the protocol version and a command, and reads one JSON reply line per request:
//!
//! ```text
//! -> {"v":1,"cmd":"show","what":"hosts"}
//! <- {"v":1,"reply":"status","status":{...}}
//! -> {"v":1,"cmd":"host","action":"drain","target":"127.0.0.2"}
//! <- {"v":1,"reply":"done","matched":1}
//! -> {"v":1,"cmd":"reload"}
//! <- {"v":1,"reply":"reloaded","file":"/etc/relayd.conf","report":{...}}
//! <- {"v":1,"reply":"error","kind":"config","message":"/etc/relayd.conf:3:1: ..."}
//! ```
//!
//! Commands: `show` (`what`: summary, hosts, relays, sessions), `host` (`action`: disable,
//! enable, drain; `target`: name, `name:port` or id), `table` and `relay` (`enable`: bool,
//! `target`), `poll`, `reload`, `load` (`file`), `log` (`verbose`: bool), `monitor` (the
//! server then sends `{"v":1,"reply":"event","event":{...}}` lines until the client closes).
//! `takeover` (what `hasocks relay --upgrade` sends) turns the connection into a hand-over:
//! the listening sockets (SCM_RIGHTS) and host states go to the new process, which confirms
//! once it serves; the old one then stops accepting and drains.
//! A request with another `v` gets an error of kind `version`; requests are at most
//! [`MAX_LINE`] bytes. The types below are the protocol: the client and the server both use
//! them.

mod client;
pub mod render;
mod server;
pub mod words;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::events::Event;
use crate::handle::{HostAction, ReloadReport, Target};
use crate::status::{SessionStatus, Status};

pub use client::{monitor, request, ClientError};
pub use server::{bind, serve, BindError, Controller};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest request line the server reads.
pub const MAX_LINE: usize = 64 * 1024;

/// The control socket when the config has no `socket "path"` (relayd's is
/// /var/run/relayd.sock; this one cannot clash with it).
pub const DEFAULT_SOCKET: &str = "/run/hasocks/relay.sock";

/// What `show` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Show {
    /// Relays, tables and hosts.
    Summary,
    /// Tables and hosts with check totals.
    Hosts,
    /// Relays with session statistics.
    Relays,
    /// Open sessions.
    Sessions,
}

/// A command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// `show summary|hosts|relays|sessions`.
    Show {
        /// What to show.
        what: Show,
    },
    /// `host disable|enable|drain NAME|ID`.
    Host {
        /// What to do.
        action: HostAction,
        /// Which host(s).
        target: Target,
    },
    /// `table disable|enable NAME|ID`.
    Table {
        /// Enable (true) or disable.
        enable: bool,
        /// Which table(s).
        target: Target,
    },
    /// `relay disable|enable NAME|ID`.
    Relay {
        /// Enable (true) or disable.
        enable: bool,
        /// Which relay.
        target: Target,
    },
    /// `poll`: check every host now.
    Poll,
    /// `reload`: re-read the config file.
    Reload,
    /// `load FILE`: read another file (for this load only).
    Load {
        /// The file.
        file: PathBuf,
    },
    /// `log brief|verbose`.
    Log {
        /// Verbose (every check and connection) or brief (as configured).
        verbose: bool,
    },
    /// `monitor`: stream events until the client closes.
    Monitor,
    /// A successor process asks for the listening sockets and host states (`hasocks relay
    /// --upgrade`); the connection then carries `net::handover` frames and descriptors.
    Takeover,
}

/// A request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version.
    pub v: u32,
    /// The command.
    #[serde(flatten)]
    pub command: Command,
}

/// A reply line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// Protocol version.
    pub v: u32,
    /// What it says.
    #[serde(flatten)]
    pub body: Body,
}

/// The content of a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Body {
    /// `show summary|hosts|relays`.
    Status {
        /// The snapshot.
        status: Status,
    },
    /// `show sessions`.
    Sessions {
        /// The relay's process id.
        pid: u32,
        /// Open sessions.
        sessions: Vec<SessionStatus>,
    },
    /// `host`/`table`/`relay`/`poll`/`log`: done.
    Done {
        /// How many objects the command applied to.
        matched: usize,
    },
    /// `reload`/`load`: the new generation is in effect.
    Reloaded {
        /// The file read.
        file: PathBuf,
        /// What changed.
        report: ReloadReport,
    },
    /// `monitor`: one event.
    Event {
        /// The event.
        event: Event,
    },
    /// The command failed.
    Error {
        /// A stable word: `not_found`, `config`, `bind`, `resolve`, `version`, `request`...
        kind: String,
        /// What went wrong, for people.
        message: String,
    },
}

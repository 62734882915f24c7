//! The protocol, version 1: one JSON request per line, one JSON reply line per request.
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
//! A relay takes every command. A server takes `show summary` (replied with `server`),
//! `reload` (`server_reloaded`) and `takeover`; others get an error of kind `unsupported`.
//! `monitor` turns the connection into a stream of `event` replies until the client closes;
//! `takeover` (what `--upgrade` sends) into a hand-over of the listening sockets. A request
//! with another `v` gets an error of kind `version`; requests are at most [`MAX_LINE`] bytes.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::relay::{Event, HostAction, ReloadReport, SessionStatus, Status, Target};
use crate::server::{ServerReloadReport, ServerStatus};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest request line the server reads.
pub const MAX_LINE: usize = 64 * 1024;

/// The relay's control socket when its config has no `socket "path"` (relayd's is
/// /var/run/relayd.sock; this one cannot clash with it).
pub const RELAY_SOCKET: &str = "/run/hasocks/relay.sock";

/// The server's control socket when its config has no `hasocks.socket:`.
pub const SERVER_SOCKET: &str = "/run/hasocks/server.sock";

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
    /// Redirects, their tables and hosts.
    Redirects,
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
    /// `relay drain|undrain`: the whole process leaves (or rejoins) a tier of relays behind a
    /// router. While draining, `/ready` answers 503 so the route is withdrawn, and every
    /// session, new ones too, is still served (the router decides where traffic goes).
    RelayDrain {
        /// Drain (true) or undrain.
        drain: bool,
    },
    /// `redirect disable|enable NAME|ID`.
    Redirect {
        /// Enable (true) or disable.
        enable: bool,
        /// Which redirect.
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
    /// A successor process asks for the listening sockets (and a relay's host states):
    /// `--upgrade`; the connection then carries the hand-over's frames and descriptors.
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
    /// A server's `show summary`.
    Server {
        /// The snapshot.
        status: ServerStatus,
    },
    /// A server's `reload`: the new generation is in effect.
    ServerReloaded {
        /// The file read.
        file: PathBuf,
        /// What changed.
        report: ServerReloadReport,
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

impl Body {
    /// An error reply.
    pub fn error(kind: &str, message: impl Into<String>) -> Body {
        Body::Error {
            kind: kind.to_string(),
            message: message.into(),
        }
    }
}

/// Why a line is not a request or a reply of this protocol.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Longer than [`MAX_LINE`].
    #[error("request longer than {MAX_LINE} bytes")]
    TooLong,
    /// Not JSON of the protocol's shape.
    #[error("bad request: {0}")]
    Json(#[from] serde_json::Error),
    /// Another protocol version.
    #[error("protocol version {0} is not spoken here (this build speaks {PROTOCOL_VERSION})")]
    Version(u32),
}

impl DecodeError {
    /// The error reply to send for it.
    pub fn reply(&self) -> Body {
        let kind = match self {
            DecodeError::Version(_) => "version",
            _ => "request",
        };
        Body::error(kind, self.to_string())
    }
}

/// A request line (with its newline) for `command`.
pub fn encode_request(command: Command) -> Vec<u8> {
    line(&Request {
        v: PROTOCOL_VERSION,
        command,
    })
}

/// A reply line (with its newline) for `body`.
pub fn encode_reply(body: Body) -> Vec<u8> {
    line(&Reply {
        v: PROTOCOL_VERSION,
        body,
    })
}

fn line<T: Serialize>(msg: &T) -> Vec<u8> {
    // The protocol's types serialize to JSON without fail (no maps with non-string keys).
    let mut l = serde_json::to_vec(msg).unwrap_or_default();
    l.push(b'\n');
    l
}

/// Reads a request line (the newline may be there or not).
pub fn decode_request(line: &[u8]) -> Result<Request, DecodeError> {
    if line.len() > MAX_LINE {
        return Err(DecodeError::TooLong);
    }
    let req: Request = serde_json::from_slice(line)?;
    if req.v != PROTOCOL_VERSION {
        return Err(DecodeError::Version(req.v));
    }
    Ok(req)
}

/// Reads a reply line.
pub fn decode_reply(line: &[u8]) -> Result<Body, DecodeError> {
    let reply: Reply = serde_json::from_slice(line)?;
    if reply.v != PROTOCOL_VERSION {
        return Err(DecodeError::Version(reply.v));
    }
    Ok(reply.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_goes_through_the_codec_unchanged() {
        for c in [
            Command::Show { what: Show::Hosts },
            Command::Host {
                action: HostAction::Drain,
                target: Target::Name("127.0.0.2".into()),
            },
            Command::Takeover,
            Command::RelayDrain { drain: true },
            Command::Load {
                file: "/etc/relayd.conf".into(),
            },
        ] {
            let line = encode_request(c.clone());
            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(decode_request(&line).unwrap().command, c);
        }
    }

    #[test]
    fn the_takeover_request_is_the_line_successors_send() {
        assert_eq!(
            encode_request(Command::Takeover),
            b"{\"v\":1,\"cmd\":\"takeover\"}\n"
        );
    }

    #[test]
    fn relay_drain_is_one_json_word_with_its_direction() {
        assert_eq!(
            encode_request(Command::RelayDrain { drain: false }),
            b"{\"v\":1,\"cmd\":\"relay_drain\",\"drain\":false}\n"
        );
    }

    #[test]
    fn another_version_and_oversized_lines_are_refused_with_their_kind() {
        let e = decode_request(br#"{"v":2,"cmd":"poll"}"#).unwrap_err();
        assert!(matches!(e.reply(), Body::Error { kind, .. } if kind == "version"));
        let long = vec![b' '; MAX_LINE + 1];
        assert!(matches!(decode_request(&long), Err(DecodeError::TooLong)));
        let e = decode_request(b"{\"v\":1,\"cmd\":\"dance\"}").unwrap_err();
        assert!(matches!(e.reply(), Body::Error { kind, .. } if kind == "request"));
    }

    #[test]
    fn replies_round_trip() {
        let b = Body::error("not_found", "no host x");
        assert_eq!(decode_reply(&encode_reply(b.clone())).unwrap(), b);
    }
}

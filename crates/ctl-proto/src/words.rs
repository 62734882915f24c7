//! relayctl's command words (`show summary`, `host disable 3`, ...) into a [`Command`]. As in
//! relayctl, a keyword may be shortened to any prefix that names only one keyword
//! (`sh su` = `show summary`).

use std::path::PathBuf;

use crate::relay::{HostAction, Target};
use crate::{Command, Show};

/// Why words are not a command; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The command words' grammar, for `--help` texts.
pub const USAGE: &str = "\
show summary|hosts|relays|sessions
host disable|enable|drain NAME|ID
table disable|enable NAME|ID
relay disable|enable NAME|ID
relay drain|undrain
poll
reload
load FILE
log brief|verbose
monitor";

/// The one keyword of `choices` that `word` abbreviates.
fn pick<'a>(word: &str, choices: &[&'a str], after: &str) -> Result<&'a str, UsageError> {
    let hits: Vec<&str> = choices
        .iter()
        .copied()
        .filter(|c| !word.is_empty() && c.starts_with(word))
        .collect();
    // No keyword of a list is a prefix of another, so a whole keyword is never ambiguous.
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(UsageError(format!(
            "unknown word \"{word}\"{after}: expected {}",
            choices.join(", ")
        ))),
        many => Err(UsageError(format!(
            "\"{word}\"{after} is ambiguous: {}",
            many.join(", ")
        ))),
    }
}

fn next<'a>(words: &mut impl Iterator<Item = &'a str>, what: &str) -> Result<&'a str, UsageError> {
    words
        .next()
        .ok_or_else(|| UsageError(format!("missing {what}")))
}

/// Parses the words after `hasocks ctl [options]`.
pub fn parse<S: AsRef<str>>(words: &[S]) -> Result<Command, UsageError> {
    let mut w = words.iter().map(AsRef::as_ref);
    let first = next(&mut w, "command")?;
    let cmd = match pick(
        first,
        &[
            "show", "host", "table", "relay", "redirect", "poll", "reload", "load", "log",
            "monitor",
        ],
        "",
    )? {
        "show" => {
            let what = next(
                &mut w,
                "what to show (summary, hosts, relays, redirects, sessions)",
            )?;
            Command::Show {
                what: match pick(
                    what,
                    &["summary", "hosts", "relays", "redirects", "sessions"],
                    " after show",
                )? {
                    "hosts" => Show::Hosts,
                    "relays" => Show::Relays,
                    "redirects" => Show::Redirects,
                    "sessions" => Show::Sessions,
                    _ => Show::Summary,
                },
            }
        }
        "host" => {
            let action = next(&mut w, "disable, enable or drain after host")?;
            let action = match pick(action, &["disable", "enable", "drain"], " after host")? {
                "disable" => HostAction::Disable,
                "drain" => HostAction::Drain,
                _ => HostAction::Enable,
            };
            let target = Target::parse(next(&mut w, "a host name or id")?);
            Command::Host { action, target }
        }
        "relay" => {
            let action = next(&mut w, "disable, enable, drain or undrain after relay")?;
            match pick(
                action,
                &["disable", "enable", "drain", "undrain"],
                " after relay",
            )? {
                // The whole process: no target.
                "drain" => Command::RelayDrain { drain: true },
                "undrain" => Command::RelayDrain { drain: false },
                enable => Command::Relay {
                    enable: enable == "enable",
                    target: Target::parse(next(&mut w, "a relay name or id")?),
                },
            }
        }
        "redirect" => {
            let action = next(&mut w, "disable or enable after redirect")?;
            let enable = pick(action, &["disable", "enable"], " after redirect")? == "enable";
            let target = Target::parse(next(&mut w, "a redirect name or id")?);
            Command::Redirect { enable, target }
        }
        "table" => {
            let action = next(&mut w, "disable or enable after table")?;
            let enable = pick(action, &["disable", "enable"], " after table")? == "enable";
            let target = Target::parse(next(&mut w, "a table name or id")?);
            Command::Table { enable, target }
        }
        "poll" => Command::Poll,
        "reload" => Command::Reload,
        "load" => Command::Load {
            file: PathBuf::from(next(&mut w, "a file after load")?),
        },
        "log" => {
            let level = next(&mut w, "brief or verbose after log")?;
            Command::Log {
                verbose: pick(level, &["brief", "verbose"], " after log")? == "verbose",
            }
        }
        _ => Command::Monitor,
    };
    if let Some(extra) = w.next() {
        return Err(UsageError(format!(
            "unexpected \"{extra}\" after the command"
        )));
    }
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayctl_commands_parse_and_keywords_may_be_shortened() {
        assert_eq!(
            parse(&["sh", "su"]).unwrap(),
            Command::Show {
                what: Show::Summary
            }
        );
        assert_eq!(
            parse(&["host", "dis", "3"]).unwrap(),
            Command::Host {
                action: HostAction::Disable,
                target: Target::Id(3)
            }
        );
        assert_eq!(
            parse(&["host", "drain", "10.0.0.2"]).unwrap(),
            Command::Host {
                action: HostAction::Drain,
                target: Target::Name("10.0.0.2".into())
            }
        );
        assert_eq!(
            parse(&["table", "enable", "socks:1080"]).unwrap(),
            Command::Table {
                enable: true,
                target: Target::Name("socks:1080".into())
            }
        );
        assert_eq!(
            parse(&["log", "verbose"]).unwrap(),
            Command::Log { verbose: true }
        );
        assert_eq!(parse(&["mon"]).unwrap(), Command::Monitor);
        assert_eq!(
            parse(&["load", "/etc/other.conf"]).unwrap(),
            Command::Load {
                file: "/etc/other.conf".into()
            }
        );
    }

    #[test]
    fn relay_drain_and_undrain_take_no_target_and_disable_still_does() {
        assert_eq!(
            parse(&["relay", "drain"]).unwrap(),
            Command::RelayDrain { drain: true }
        );
        assert_eq!(
            parse(&["rela", "un"]).unwrap(),
            Command::RelayDrain { drain: false }
        );
        assert!(parse(&["relay", "drain", "socks"])
            .unwrap_err()
            .0
            .contains("unexpected \"socks\""));
        assert!(parse(&["relay", "d"]).unwrap_err().0.contains("ambiguous"));
        assert_eq!(
            parse(&["relay", "dis", "1"]).unwrap(),
            Command::Relay {
                enable: false,
                target: Target::Id(1)
            }
        );
    }

    #[test]
    fn ambiguous_unknown_missing_and_extra_words_are_refused() {
        let e = parse(&["re"]).unwrap_err();
        assert!(e.0.contains("ambiguous") && e.0.contains("reload"), "{e}");
        assert!(parse(&["frobnicate"])
            .unwrap_err()
            .0
            .contains("unknown word"));
        assert!(parse(&["host", "disable"])
            .unwrap_err()
            .0
            .contains("missing"));
        assert!(parse(&["poll", "now"])
            .unwrap_err()
            .0
            .contains("unexpected \"now\""));
        assert!(parse::<&str>(&[])
            .unwrap_err()
            .0
            .contains("missing command"));
        assert_eq!(
            parse(&["relay", "enable", "socks"]).unwrap(),
            Command::Relay {
                enable: true,
                target: Target::Name("socks".into())
            }
        );
    }
}

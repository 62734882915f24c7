//! The operator's log: Dante's `logoutput:` / `errorlog:` destinations (stderr, stdout,
//! syslog, files). Files are opened for append and reopened on SIGHUP, so logrotate works.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use hasocks_conf::sockd::LogTarget;

/// Severity of a line, mapped to syslog priorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Session events (connect/disconnect).
    Info,
    /// Something failed for one session or the config.
    Warn,
    /// A serious, global problem (also sent to `errorlog:`).
    Error,
}

enum Sink {
    Stderr,
    Stdout,
    Syslog {
        facility: u8,
        sock: Option<UnixDatagram>,
    },
    File {
        path: PathBuf,
        file: Mutex<Option<File>>,
    },
}

/// Writes log lines to every configured destination.
pub struct Logger {
    out: Vec<Sink>,
    err: Vec<Sink>,
    pid: u32,
}

fn facility_code(name: &str) -> u8 {
    match name {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => 3, // daemon
    }
}

fn open_append(path: &PathBuf) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn make_sinks(targets: &[LogTarget]) -> std::io::Result<Vec<Sink>> {
    let mut sinks = Vec::new();
    for t in targets {
        sinks.push(match t {
            LogTarget::Stderr => Sink::Stderr,
            LogTarget::Stdout => Sink::Stdout,
            LogTarget::Syslog(f) => {
                let sock = UnixDatagram::unbound()
                    .ok()
                    .filter(|s| s.connect("/dev/log").is_ok());
                Sink::Syslog {
                    facility: facility_code(f),
                    sock,
                }
            }
            LogTarget::File(p) => {
                let file = open_append(p).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot open log file {}: {e}", p.display()),
                    )
                })?;
                Sink::File {
                    path: p.clone(),
                    file: Mutex::new(Some(file)),
                }
            }
        });
    }
    Ok(sinks)
}

/// Seconds since the epoch as an RFC 3339 UTC timestamp with milliseconds.
pub fn timestamp(t: SystemTime) -> String {
    hasocks_net::clock::rfc3339(t)
}

impl Logger {
    /// Opens every destination; a file that cannot be opened is an error naming it.
    pub fn new(logoutput: &[LogTarget], errorlog: &[LogTarget]) -> std::io::Result<Self> {
        Ok(Self {
            out: make_sinks(logoutput)?,
            err: make_sinks(errorlog)?,
            pid: std::process::id(),
        })
    }

    /// A logger that writes nowhere (tests, `-V`).
    pub fn none() -> Self {
        Self {
            out: Vec::new(),
            err: Vec::new(),
            pid: std::process::id(),
        }
    }

    /// Reopens log files (after logrotate moved them). Failures are reported, not fatal.
    pub fn reopen(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for sink in self.out.iter().chain(self.err.iter()) {
            if let Sink::File { path, file } = sink {
                match open_append(path) {
                    Ok(f) => {
                        if let Ok(mut g) = file.lock() {
                            *g = Some(f);
                        }
                    }
                    Err(e) => problems.push(format!("cannot reopen {}: {e}", path.display())),
                }
            }
        }
        problems
    }

    /// Writes one line to `logoutput:` (and, for `Level::Error`, also to `errorlog:`).
    pub fn log(&self, level: Level, msg: &str) {
        let line = format!(
            "{} hasocks[{}]: {}: {msg}\n",
            timestamp(SystemTime::now()),
            self.pid,
            level_name(level)
        );
        for s in &self.out {
            self.write(s, level, &line, msg);
        }
        if level == Level::Error {
            for s in &self.err {
                self.write(s, level, &line, msg);
            }
        }
    }

    fn write(&self, sink: &Sink, level: Level, line: &str, msg: &str) {
        // A log destination that fails must not take the session down with it.
        match sink {
            Sink::Stderr => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            Sink::Stdout => {
                let _ = std::io::stdout().write_all(line.as_bytes());
            }
            Sink::File { file, .. } => {
                if let Ok(mut g) = file.lock() {
                    if let Some(f) = g.as_mut() {
                        let _ = f.write_all(line.as_bytes());
                    }
                }
            }
            Sink::Syslog { facility, sock } => {
                if let Some(sock) = sock {
                    let sev = match level {
                        Level::Info => 6,
                        Level::Warn => 4,
                        Level::Error => 3,
                    };
                    let pri = u32::from(*facility) * 8 + sev;
                    let _ = sock.send(format!("<{pri}>hasocks[{}]: {msg}", self.pid).as_bytes());
                }
            }
        }
    }
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::Info => "info",
        Level::Warn => "warning",
        Level::Error => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_sink_survives_rotation_after_reopen() {
        let dir = std::env::temp_dir().join(format!("hasocks-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sockd.log");
        let logger = Logger::new(&[LogTarget::File(path.clone())], &[]).unwrap();
        logger.log(Level::Info, "first");
        std::fs::rename(&path, dir.join("sockd.log.1")).unwrap();
        assert!(logger.reopen().is_empty());
        logger.log(Level::Info, "second");
        let now = std::fs::read_to_string(&path).unwrap();
        let old = std::fs::read_to_string(dir.join("sockd.log.1")).unwrap();
        assert!(old.contains("first") && !old.contains("second"));
        assert!(now.contains("second") && !now.contains("first"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

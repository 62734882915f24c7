//! Real system accounts for tests: created with `useradd`, a known password set with
//! `chpasswd -c METHOD` (SHA512 or YESCRYPT), removed again when the guard drops, also
//! when the test fails. They need root: [`root_or_skip`] says why a test did nothing.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

/// True when running as root; otherwise prints why the calling test is skipped.
pub fn root_or_skip(test: &str) -> bool {
    let root = nix::unistd::getuid().is_root();
    if !root {
        eprintln!("{test}: skipped: creating system accounts and reading /etc/shadow needs root (CI runs as root)");
    }
    root
}

/// A system account that exists while this lives.
pub struct Account {
    /// Its name.
    pub name: String,
}

impl Account {
    /// Creates `name` (no home, no shell) with `password` hashed by chpasswd's `method`.
    pub fn create(name: &str, password: &str, method: &str) -> Account {
        let _ = Command::new("userdel")
            .arg(name)
            .stderr(Stdio::null())
            .status();
        let ok = Command::new("useradd")
            .args(["-M", "-s", "/usr/sbin/nologin", name])
            .status()
            .expect("useradd runs")
            .success();
        assert!(ok, "useradd {name}");
        let account = Account {
            name: name.to_string(),
        };
        let mut ch = Command::new("chpasswd")
            .args(["-c", method])
            .stdin(Stdio::piped())
            .spawn()
            .expect("chpasswd runs");
        ch.stdin
            .take()
            .unwrap()
            .write_all(format!("{name}:{password}\n").as_bytes())
            .unwrap();
        assert!(ch.wait().unwrap().success(), "chpasswd {name}");
        account
    }

    /// The account's hash as /etc/shadow holds it.
    pub fn hash(&self) -> String {
        let shadow = std::fs::read_to_string("/etc/shadow").unwrap();
        shadow
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{}:", self.name)))
            .and_then(|rest| rest.split(':').next())
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

/// A file under /etc/pam.d that exists while this lives.
pub struct PamService {
    /// The service name.
    pub name: String,
}

impl PamService {
    /// Writes /etc/pam.d/`name` with `text`.
    pub fn create(name: &str, text: &str) -> PamService {
        std::fs::write(format!("/etc/pam.d/{name}"), text).unwrap();
        PamService {
            name: name.to_string(),
        }
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/etc/pam.d/{}", self.name));
    }
}

/// A short name unique to this test process and `tag` (user names are at most 32 bytes).
pub fn unique(tag: &str) -> String {
    format!("hst{}{tag}", std::process::id() % 100_000)
}

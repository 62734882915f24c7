//! `hasocks.passwordfile`: an htpasswd file (`name:hash` lines, as `htpasswd -B` or `-5`
//! from apache2-utils write them), so operators need no system accounts.
//!
//! Read at start and on SIGHUP (by whoever builds the config generation); it needs no
//! privileges. Hashes: bcrypt `$2y$`/`$2b$`/`$2a$`, sha512/256-crypt `$6$`/`$5$`, md5
//! `$apr1$`/`$1$`, yescrypt `$y$`. A name that is not in the file is checked against another
//! entry's hash and then refused, so both cost the same time; the hash comparison itself is
//! constant-time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{crypt, shown, Outcome};

/// Why a password file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error("cannot read password file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line is not `name:hash` with a hash format we verify.
    #[error("{}:{line}: {message}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Hash prefixes a password file may use.
const FORMATS: &[&str] = &["$2y$", "$2b$", "$2a$", "$6$", "$5$", "$apr1$", "$1$", "$y$"];

/// A loaded htpasswd file.
#[derive(Debug)]
pub struct PasswordFile {
    path: PathBuf,
    users: HashMap<Vec<u8>, String>,
}

impl PasswordFile {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses htpasswd text; `path` is for messages.
    pub fn parse(path: &Path, text: &[u8]) -> Result<Self, LoadError> {
        let mut users = HashMap::new();
        for (i, raw) in text.split(|b| *b == b'\n').enumerate() {
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            if line.iter().all(u8::is_ascii_whitespace) || line.first() == Some(&b'#') {
                continue;
            }
            let bad = |message: String| LoadError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                message,
            };
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                return Err(bad("expected \"name:hash\"".into()));
            };
            let (name, hash) = (
                line.get(..colon).unwrap_or_default(),
                line.get(colon + 1..).unwrap_or_default(),
            );
            let hash = String::from_utf8_lossy(hash).trim_end().to_string();
            if name.is_empty() {
                return Err(bad("empty user name".into()));
            }
            if !FORMATS.iter().any(|f| hash.starts_with(f)) {
                return Err(bad(format!(
                    "user \"{}\": unsupported hash format (use htpasswd -B or -5)",
                    shown(name)
                )));
            }
            users.insert(name.to_vec(), hash);
        }
        Ok(Self {
            path: path.to_path_buf(),
            users,
        })
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many users it has.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether it has no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Checks a name and password. Blocking (the hash is slow by design).
    pub fn check(&self, user: &[u8], password: &[u8]) -> Outcome {
        let name = shown(user);
        let (hash, known) = match self.users.get(user) {
            Some(h) => (h.as_str(), true),
            // Spend the same time on an unknown name as on a wrong password.
            None => (self.users.values().next().map_or("", String::as_str), false),
        };
        let matched = matches!(crypt::verify(password, hash), Ok(true));
        match (known, matched) {
            (true, true) => Outcome::Pass,
            (true, false) => Outcome::Fail(format!(
                "password file authentication failed for user \"{name}\""
            )),
            (false, _) => Outcome::Fail(format!(
                "no user \"{name}\" found in password file {}",
                self.path.display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // htpasswd -nbB alice 'correct horse' ; htpasswd -nb5 bob 'correct horse'
    const FILE: &str = "# comment\n\nalice:$2y$05$djn/80rbZKscnJ/aHQcy7eslXt0UrrBUitrzhuzM8Su7RqEpD/w7O\r\nbob:$6$CAqCyeNIyI8bF5rA$bt9IUWllc6XnZu4Ft1Xw7wqEt3/ytoX1ZB.F2UVmBza7gnFMjqpZe9sYFWGs1KdJPnMyIT.96xiacuhb6Egfa.\n";

    #[test]
    fn htpasswd_bcrypt_and_sha512_lines_verify() {
        let f = PasswordFile::parse(Path::new("p"), FILE.as_bytes()).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f.check(b"alice", b"correct horse"), Outcome::Pass);
        assert_eq!(f.check(b"bob", b"correct horse"), Outcome::Pass);
        assert!(
            matches!(f.check(b"alice", b"correct horsf"), Outcome::Fail(m) if m.contains("\"alice\""))
        );
        assert!(
            matches!(f.check(b"carol", b"correct horse"), Outcome::Fail(m) if m.contains("no user \"carol\""))
        );
        // Another user's password is not this user's.
        assert!(matches!(
            f.check(b"alice2", b"correct horse"),
            Outcome::Fail(_)
        ));
    }

    #[test]
    fn bad_lines_are_errors_with_their_line() {
        let e = PasswordFile::parse(
            Path::new("p"),
            b"alice:$2y$05$x\nbob:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "p:2: user \"bob\": unsupported hash format (use htpasswd -B or -5)"
        );
        let e = PasswordFile::parse(Path::new("p"), b"nocolon\n").unwrap_err();
        assert!(e.to_string().starts_with("p:1: expected"));
    }
}

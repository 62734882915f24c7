//! `username`: the system's shadow database, as Dante checks it on Linux: `getspnam(name)`
//! then `crypt(password, sp_pwdp)` compared with the stored hash. There is no fallback to
//! the passwd entry: a user without a shadow line fails, as in Dante.
//!
//! The entry is read from `/etc/shadow` itself (what glibc's `files` backend reads), so this
//! needs no unsafe FFI; NSS shadow sources other than `files` are not consulted.

use std::io::ErrorKind;
use std::path::Path;

use super::{crypt, shown, Outcome};

/// The shadow file glibc's `getspnam` reads.
pub(crate) const SHADOW: &str = "/etc/shadow";

/// Checks `user`'s password against the shadow file at `path`.
pub(crate) fn check(path: &Path, user: &[u8], password: &[u8]) -> Outcome {
    let name = shown(user);
    let no_record = |why: &str| {
        Outcome::Fail(format!(
            "could not access user \"{name}\"'s records in the system password file: {why}"
        ))
    };
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::PermissionDenied => return no_record("Permission denied"),
        Err(e) => return no_record(&e.to_string()),
    };
    let Some(hash) = entry(&text, user) else {
        return no_record("no system error");
    };
    match crypt::verify(password, &hash) {
        Ok(true) => Outcome::Pass,
        Ok(false) => Outcome::Fail(format!(
            "system password authentication failed for user \"{name}\""
        )),
        Err(e) => Outcome::Fail(format!(
            "system password crypt(3) failed for user \"{name}\": {e}"
        )),
    }
}

/// The password field of `user`'s line in a shadow-format text (`name:hash:...`).
fn entry(text: &[u8], user: &[u8]) -> Option<String> {
    if user.is_empty() || user.iter().any(|b| matches!(b, b':' | b'\n' | 0)) {
        return None;
    }
    text.split(|b| *b == b'\n').find_map(|line| {
        let mut f = line.splitn(3, |b| *b == b':');
        (f.next()? == user).then(|| f.next().map(|h| String::from_utf8_lossy(h).into_owned()))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_users_field_and_nothing_else() {
        let t = b"root:*:19000:0:99999:7:::\nalice:$6$x$y:19000::::::\nalice2:!:1::::::\n";
        assert_eq!(entry(t, b"alice").as_deref(), Some("$6$x$y"));
        assert_eq!(entry(t, b"alice2").as_deref(), Some("!"));
        assert_eq!(entry(t, b"ali"), None);
        assert_eq!(entry(t, b"alice:$6$x$y"), None);
        assert_eq!(entry(t, b""), None);
    }

    #[test]
    fn messages_are_dantes() {
        let dir = std::env::temp_dir().join(format!("hasocks-shadow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("shadow");
        // openssl passwd -6 'correct horse'
        std::fs::write(&f, "alice:$6$JmkAVVGC3CvHq5xV$8CgIGM8uoEZ6HTrQiyOwdHdrofmqJTqkrLSaqXOpP/w4h3vDN1x3tz2/0Now5jeAdp2nXJJVK9zqy.sGtNkIJ/:19000::::::\nlocked:!:1::::::\n").unwrap();
        assert_eq!(check(&f, b"alice", b"correct horse"), Outcome::Pass);
        assert_eq!(
            check(&f, b"alice", b"nope"),
            Outcome::Fail("system password authentication failed for user \"alice\"".into())
        );
        assert_eq!(
            check(&f, b"bob", b"x"),
            Outcome::Fail("could not access user \"bob\"'s records in the system password file: no system error".into())
        );
        assert!(matches!(check(&f, b"locked", b""), Outcome::Fail(_)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

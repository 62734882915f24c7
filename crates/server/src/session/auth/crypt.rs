//! crypt(3) hash verification for the formats real `/etc/shadow` and htpasswd files hold:
//! yescrypt `$y$` (Debian 12's default), sha512-crypt `$6$`, sha256-crypt `$5$`,
//! bcrypt `$2a$`/`$2b$`/`$2y$`, md5-crypt `$1$` and Apache's `$apr1$`.
//!
//! Every comparison of a computed hash with the stored one is constant-time (the crates'
//! own `ct_eq`, `subtle` for md5-crypt). A locked (`!`, `*`) or empty hash never matches.

use md5::{Digest, Md5};
use sha_crypt::{PasswordVerifier, ShaCrypt};
use subtle::ConstantTimeEq;

/// Why a stored hash could not be checked at all (as opposed to "wrong password").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    /// A format this build does not verify (DES crypt, `{SHA}`, scrypt, ...).
    #[error("unsupported hash format \"{0}\"")]
    Unsupported(String),
    /// The stored hash is not well formed for its format.
    #[error("malformed {0} hash")]
    Malformed(&'static str),
}

/// Whether `password` matches the crypt(3) string `hash`. Ok(false) = wrong password, or a
/// locked or empty hash.
pub fn verify(password: &[u8], hash: &str) -> Result<bool, CryptError> {
    if hash.is_empty() || hash.starts_with('!') || hash.starts_with('*') {
        return Ok(false);
    }
    if hash.starts_with("$y$") {
        return wrong_or_bad(
            yescrypt::PasswordVerifier::verify_password(
                &yescrypt::Yescrypt::default(),
                password,
                hash,
            ),
            "yescrypt",
            |e| matches!(e, yescrypt::password_hash::Error::PasswordInvalid),
        );
    }
    if hash.starts_with("$5$") || hash.starts_with("$6$") {
        return wrong_or_bad(
            ShaCrypt::default().verify_password(password, hash),
            "sha-crypt",
            |e| matches!(e, sha_crypt::password_hash::Error::PasswordInvalid),
        );
    }
    if hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$") {
        return bcrypt::verify(password, hash).map_err(|_| CryptError::Malformed("bcrypt"));
    }
    if let Some(rest) = hash.strip_prefix("$1$") {
        return md5_verify(password, rest, "$1$", hash);
    }
    if let Some(rest) = hash.strip_prefix("$apr1$") {
        return md5_verify(password, rest, "$apr1$", hash);
    }
    let shown: String = hash.chars().take(4).collect();
    Err(CryptError::Unsupported(shown))
}

/// Maps a RustCrypto verifier's result: its "password invalid" error is a wrong password,
/// any other error a malformed hash.
fn wrong_or_bad<E>(
    r: Result<(), E>,
    what: &'static str,
    is_wrong: impl Fn(&E) -> bool,
) -> Result<bool, CryptError> {
    match r {
        Ok(()) => Ok(true),
        Err(e) if is_wrong(&e) => Ok(false),
        Err(_) => Err(CryptError::Malformed(what)),
    }
}

/// The crypt(3) base-64 alphabet.
const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// md5-crypt (`$1$`, and Apache's `$apr1$`, which differs only in its magic string):
/// Poul-Henning Kamp's algorithm, written out here because no maintained crate has it.
fn md5_verify(password: &[u8], rest: &str, magic: &str, whole: &str) -> Result<bool, CryptError> {
    let salt = rest.split('$').next().unwrap_or_default();
    let salt = salt.get(..salt.len().min(8)).unwrap_or(salt);
    let computed = md5_crypt(password, salt.as_bytes(), magic.as_bytes());
    let expected = format!(
        "{magic}{salt}${}",
        std::str::from_utf8(&computed).unwrap_or("")
    );
    // Slices of different lengths compare unequal (a truncated hash never matches).
    Ok(bool::from(whole.as_bytes().ct_eq(expected.as_bytes())))
}

/// The 22 hash characters of md5-crypt for `password` and `salt`.
fn md5_crypt(password: &[u8], salt: &[u8], magic: &[u8]) -> Vec<u8> {
    let mut alt = Md5::new();
    alt.update(password);
    alt.update(salt);
    alt.update(password);
    let alt = alt.finalize();

    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(magic);
    ctx.update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(alt.get(..n).unwrap_or_default());
        left -= n;
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(password.get(..1).unwrap_or_default());
        }
        i >>= 1;
    }
    let mut fin = ctx.finalize();

    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(fin);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(fin);
        } else {
            c.update(password);
        }
        fin = c.finalize();
    }

    let b = |i: usize| u32::from(fin.get(i).copied().unwrap_or(0));
    let mut out = Vec::with_capacity(22);
    let mut put = |mut v: u32, n: usize| {
        for _ in 0..n {
            out.push(ITOA64[(v & 0x3f) as usize]);
            v >>= 6;
        }
    };
    for (x, y, z) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        put((b(x) << 16) | (b(y) << 8) | b(z), 4);
    }
    put(b(11), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every vector below was made with a real tool on Debian 12 (whois's mkpasswd,
    // OpenSSL's `openssl passwd`, apache2-utils' htpasswd), never by hand.
    const PW: &[u8] = b"correct horse";

    #[test]
    fn yescrypt_from_mkpasswd() {
        // mkpasswd -m yescrypt 'correct horse'
        let h = "$y$j9T$K/rJ6FkyQocfiLJrPBp1Z.$ge6r6w/gheivp4g8P/aTX.T6CSTNTU9uuZrDWPzoGB2";
        assert_eq!(verify(PW, h), Ok(true));
        assert_eq!(verify(b"correct horsE", h), Ok(false));
    }

    #[test]
    fn sha512_and_sha256_crypt_from_mkpasswd_and_openssl() {
        for h in [
            // mkpasswd -m sha512crypt / sha256crypt
            "$6$Sfl7nA4ShGslz4Dw$1T6gFRV3MmMJMw1IWJsUzOCEks2M2agKTdaw8hb0bpPNjyB9f5k1k.3PJykgWQmGkBzMmgvLGmsN2j2jHrgQg.",
            "$5$zvk.Dupwjh2Qe2td$ID1wdDZKPHWx3wPs6wqKQquz.zzZQQBFEB/M5g5C.H0",
            // openssl passwd -6 / -5
            "$6$JmkAVVGC3CvHq5xV$8CgIGM8uoEZ6HTrQiyOwdHdrofmqJTqkrLSaqXOpP/w4h3vDN1x3tz2/0Now5jeAdp2nXJJVK9zqy.sGtNkIJ/",
            "$5$4ud4MUXXtuddwuao$FyJLEwlWmz1NvsdJJGOWt.qidFdFVUOive3a.mwL6f9",
            // mkpasswd -m sha512crypt -R 10000
            "$6$rounds=10000$jl.Bx4HdJJjF7apF$6kClMTAmWqHdUng1GhYMGFmbODssXIq2HZ.Q1jm7SLF0Q4aED9HLZyP.Bpsimv5jOpj1UEReczkzkaDibPeDj.",
            // htpasswd -5 / -2
            "$6$CAqCyeNIyI8bF5rA$bt9IUWllc6XnZu4Ft1Xw7wqEt3/ytoX1ZB.F2UVmBza7gnFMjqpZe9sYFWGs1KdJPnMyIT.96xiacuhb6Egfa.",
            "$5$8dqWuZsFLlUvMIWy$1SUoP5nCUToCE9Q8VGfuSyvCZ31ieFarXmx9KIwT1u7",
        ] {
            assert_eq!(verify(PW, h), Ok(true), "{h}");
            assert_eq!(verify(b"wrong", h), Ok(false), "{h}");
        }
    }

    #[test]
    fn bcrypt_from_mkpasswd_and_htpasswd() {
        for h in [
            "$2b$05$Nf8rObc1qXoyxP25fjGmOuORMGGQMa5z7RVrYlv5YvGei/5dJpXFW",
            "$2a$05$7RgOGsOX.k/DbULyQKyqP.HZvuowefXHi1KvMT2TcYpHMZDZAHisi",
            // htpasswd -B
            "$2y$05$djn/80rbZKscnJ/aHQcy7eslXt0UrrBUitrzhuzM8Su7RqEpD/w7O",
        ] {
            assert_eq!(verify(PW, h), Ok(true), "{h}");
            assert_eq!(verify(b"correct horse ", h), Ok(false), "{h}");
        }
    }

    #[test]
    fn md5_crypt_and_apr1_from_openssl_mkpasswd_and_htpasswd() {
        for h in [
            "$1$9veO9mwS$.RUGMbKBW6Ug5zmSr3k7m0",
            "$1$wy77A3Kc$ACBjqwxGfcw4luJfulsVJ0",
            "$apr1$Z8S0/dgC$eQNM5LvGApKZmWzwih904/",
            "$apr1$hAhSrxh9$Csu.EWooJEqNxMRp0MyXX.",
        ] {
            assert_eq!(verify(PW, h), Ok(true), "{h}");
            assert_eq!(verify(b"correct hors", h), Ok(false), "{h}");
        }
        // A hash cut short never matches.
        assert_eq!(verify(PW, "$1$9veO9mwS$.RUGMbKBW6Ug5zmSr3k7m"), Ok(false));
    }

    #[test]
    fn a_255_byte_password_verifies() {
        // 100 x "p", 77 x "ä" (2 bytes each), "x": 255 bytes, fed to `mkpasswd -s`.
        let mut pw = "p".repeat(100);
        pw.push_str(&"ä".repeat(77));
        pw.push('x');
        assert_eq!(pw.len(), 255);
        let sha = "$6$iBqBTMyhJ1.zkrWh$g5wiuEYBQcthFXyuXmesS1iCpriqXT30LeTx2mJIDSYB8ITGD9RM32hen.ABpKH.IO.ZeMarBObdjioqEhJ2Y.";
        let yes = "$y$j9T$ozOLOd1ALfru6CZpsWhJQ/$dtgO11EBGB9R2F.ehw00Q6U0.cMTKbzFN.MNThrKXi7";
        assert_eq!(verify(pw.as_bytes(), sha), Ok(true));
        assert_eq!(verify(pw.as_bytes(), yes), Ok(true));
        assert_eq!(verify(&pw.as_bytes()[..254], yes), Ok(false));
    }

    #[test]
    fn locked_and_empty_hashes_never_match() {
        for h in ["", "!", "*", "!$6$Sfl7nA4ShGslz4Dw$1T6gFRV3MmMJMw1IWJsUzOCEks2M2agKTdaw8hb0bpPNjyB9f5k1k.3PJykgWQmGkBzMmgvLGmsN2j2jHrgQg.", "!*"] {
            assert_eq!(verify(PW, h), Ok(false), "{h:?}");
            assert_eq!(verify(b"", h), Ok(false), "{h:?}");
        }
    }

    #[test]
    fn unknown_and_broken_hashes_are_errors_not_matches() {
        assert!(matches!(
            verify(PW, "abJnggxhB/yWI"),
            Err(CryptError::Unsupported(_))
        ));
        assert!(matches!(
            verify(PW, "{SHA}L55TUjtiq8FBorTWAZ0jy6g129A="),
            Err(CryptError::Unsupported(_))
        ));
        assert!(verify(PW, "$6$").is_err());
        assert!(verify(PW, "$y$j9T$").is_err());
        assert!(verify(PW, "$2b$05$short").is_err());
    }
}

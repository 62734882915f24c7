//! A short-lived memory of successful checks, as Squid's `credentialsttl`: a client that
//! opens many sessions with the same name and password pays for the slow hash (or PAM's
//! round) once per [`TTL`], not once per session.
//!
//! `hasocks.auth.cache: SECONDS` sets the time (0: remember nothing).
//! What is kept is a keyed 128-bit SipHash of the password (key random per process), never
//! the password. Failures are never remembered. Entries die after [`TTL`]; all of them go
//! on SIGHUP (a reload), so a password changed in the password file takes effect with the
//! reload; one changed in /etc/shadow or behind PAM takes effect within [`TTL`].

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use siphasher::sip128::{Hasher128, SipHasher24};

/// How long a success is remembered.
pub const TTL: Duration = Duration::from_secs(30);

/// Entries kept at most (a bound on memory whatever the clients do).
const MAX_ENTRIES: usize = 8192;

/// (database, user name) -> (password tag, when it succeeded).
type Entries = HashMap<(String, Vec<u8>), (u128, Instant)>;

/// Remembered successes, keyed by database and user name.
pub(crate) struct Cache {
    key: (u64, u64),
    /// Milliseconds; set per config generation (`hasocks.auth.cache`).
    ttl_ms: AtomicU64,
    map: Mutex<Entries>,
}

impl Cache {
    /// An empty cache with a fresh random key.
    pub fn new(ttl: Duration) -> Self {
        // std seeds each RandomState from the OS generator: two of its outputs make the key.
        let s = RandomState::new();
        Self {
            key: (s.hash_one(1u8), s.hash_one(2u8)),
            ttl_ms: AtomicU64::new(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms.load(Ordering::Relaxed))
    }

    /// Changes how long successes are remembered (a reload with `hasocks.auth.cache`).
    pub fn set_ttl(&self, ttl: Duration) {
        self.ttl_ms.store(
            u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn tag(&self, password: &[u8]) -> u128 {
        let mut h = SipHasher24::new_with_keys(self.key.0, self.key.1);
        h.write(password);
        h.finish128().as_u128()
    }

    /// Whether `db`/`user` succeeded with this password less than the TTL ago.
    pub fn hit(&self, db: &str, user: &[u8], password: &[u8]) -> bool {
        let ttl = self.ttl();
        if ttl.is_zero() {
            return false;
        }
        let tag = self.tag(password);
        let Ok(map) = self.map.lock() else {
            return false;
        };
        map.get(&(db.to_string(), user.to_vec()))
            .is_some_and(|(t, at)| *t == tag && at.elapsed() < ttl)
    }

    /// Remembers a success.
    pub fn remember(&self, db: &str, user: &[u8], password: &[u8]) {
        let ttl = self.ttl();
        if ttl.is_zero() {
            return;
        }
        let tag = self.tag(password);
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= MAX_ENTRIES {
                map.retain(|_, (_, at)| at.elapsed() < ttl);
                if map.len() >= MAX_ENTRIES {
                    map.clear();
                }
            }
            map.insert((db.to_string(), user.to_vec()), (tag, Instant::now()));
        }
    }

    /// Forgets everything (reload).
    pub fn clear(&self) {
        if let Ok(mut map) = self.map.lock() {
            map.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_password_for_the_same_user_and_db_hits() {
        let c = Cache::new(TTL);
        c.remember("shadow", b"alice", b"pw");
        assert!(c.hit("shadow", b"alice", b"pw"));
        assert!(!c.hit("shadow", b"alice", b"pw2"));
        assert!(!c.hit("shadow", b"bob", b"pw"));
        assert!(!c.hit("pam:sockd", b"alice", b"pw"));
        c.clear();
        assert!(!c.hit("shadow", b"alice", b"pw"));
    }

    #[test]
    fn zero_ttl_remembers_nothing() {
        let c = Cache::new(Duration::ZERO);
        c.remember("shadow", b"alice", b"pw");
        assert!(!c.hit("shadow", b"alice", b"pw"));
    }
}

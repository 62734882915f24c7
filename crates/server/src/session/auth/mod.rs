//! Authentication: the password databases behind `username` (shadow), `pam.*` (PAM) and
//! `hasocks.passwordfile` (htpasswd), and the [`Verifier`] every check goes through.
//!
//! # Privileges
//! Shadow and PAM checks need root (or group `shadow`); the network-facing process must not
//! keep it. So, OpenSSH-style: when `hasocks server` starts as root with
//! `user.unprivileged`, it first starts itself again (`/proc/self/exe auth-helper`) as a
//! root child whose stdin and stdout are pipes ([`helper`]), then drops to the unprivileged
//! user for good. From then on every shadow and PAM check is a request on that pipe; the
//! child does getspnam+crypt or the PAM transaction on a bounded pool of threads and answers
//! pass or fail. It never opens a socket and exits when the pipe closes. Not started as
//! root (or root without `user.unprivileged`), checks run in-process. The password file
//! needs no privileges: it is read when a config generation is built.
//!
//! # No stalls
//! Hashing and PAM are blocking and slow (pam_unix sleeps 2-3 s after a failure), so they
//! run off the async threads, under caps: [`CRYPT_SLOTS`] at once for hashes (CPU-bound),
//! [`PAM_SLOTS`] for PAM (mostly sleeping). Sessions that do not authenticate never wait on
//! them, and a flood of bad PAM logins does not hold the hash slots. One client address
//! gets only a few of the slots ([`CRYPT_SLOTS_PER_CLIENT`], [`PAM_SLOTS_PER_CLIENT`]), so a
//! flood from one place queues behind itself. Successes are remembered for a short time
//! ([`cache`]), so a client opening many sessions pays once.

pub mod cache;
pub mod crypt;
pub mod helper;
mod pam;
pub mod passwordfile;
mod shadow;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

use passwordfile::PasswordFile;

/// Hash checks run at once, in-process (about twice the cores: they are pure CPU).
pub const CRYPT_SLOTS: usize = 8;
/// PAM checks run at once (each may sleep seconds in a module's fail delay).
pub const PAM_SLOTS: usize = 64;
/// Of those, at most this many hash checks for one client address ...
pub const CRYPT_SLOTS_PER_CLIENT: usize = 2;
/// ... and this many PAM checks: one address flooding bad logins waits for itself and
/// leaves the other slots to everyone else.
pub const PAM_SLOTS_PER_CLIENT: usize = 16;

/// The verdict of one check; a failure says why, in Dante's words, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The password is right (and, for PAM, the account is usable).
    Pass,
    /// Refused, with the reason to log (never the password).
    Fail(String),
}

/// A system database check, what the privileged helper runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemKind {
    /// `username`: /etc/shadow.
    Shadow,
    /// `pam.*` with this service name.
    Pam {
        /// The PAM service (`pam.servicename`, default `sockd`).
        service: String,
    },
}

/// One system check: database, name, password and the client's address (PAM_RHOST).
#[derive(Clone, PartialEq, Eq)]
pub struct SystemRequest {
    /// Which database.
    pub kind: SystemKind,
    /// The user name as the client sent it.
    pub user: Vec<u8>,
    /// The password as the client sent it.
    pub password: Vec<u8>,
    /// The client's address.
    pub rhost: IpAddr,
}

impl std::fmt::Debug for SystemRequest {
    // The password never reaches a log or a panic message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemRequest")
            .field("kind", &self.kind)
            .field("user", &shown(&self.user))
            .field("rhost", &self.rhost)
            .finish_non_exhaustive()
    }
}

/// Runs a system check here, blocking. The helper runs this; so does a server that was not
/// started as root.
pub fn system_check(req: &SystemRequest) -> Outcome {
    match &req.kind {
        SystemKind::Shadow => shadow::check(Path::new(shadow::SHADOW), &req.user, &req.password),
        SystemKind::Pam { service } => pam::check(service, &req.user, &req.password, req.rhost),
    }
}

/// Refuses a config whose methods need a system library this machine cannot load, at the
/// first method word that needs it (`file:line:col: method "pam.any" needs PAM, ...`).
/// Called by `-V`, at start and at every reload, so a missing library is never found out
/// by the first client.
pub fn check_libraries(
    cfg: &hasocks_conf::sockd::SockdConfig,
) -> Result<(), hasocks_conf::ConfError> {
    let pam = cfg.method_uses.iter().find(|u| u.method.is_pam());
    if let Some(u) = pam {
        if let Err(e) = hasocks_syslib::pam::library() {
            return Err(missing_library(u, "PAM", &e, "libpam0g"));
        }
    }
    let gss = cfg
        .method_uses
        .iter()
        .find(|u| u.method == hasocks_conf::sockd::Method::Gssapi);
    if let Some(u) = gss {
        if let Err(e) = hasocks_syslib::gssapi::library() {
            return Err(missing_library(u, "GSSAPI", &e, "libgssapi-krb5-2"));
        }
    }
    Ok(())
}

/// `file:line:col: method "M" needs FEATURE, and LIB cannot be loaded ...`.
fn missing_library(
    u: &hasocks_conf::sockd::MethodUse,
    feature: &str,
    e: &hasocks_syslib::LoadError,
    package: &str,
) -> hasocks_conf::ConfError {
    hasocks_conf::ConfError::new(
        &u.file,
        u.line,
        u.col,
        format!(
            "method \"{}\" needs {feature}, and {} cannot be loaded on this machine: {} \
             (install {package}, or use another method)",
            u.method.word(),
            e.library,
            e.reason
        ),
    )
}

/// The user name of a PAM check that has none (`pam.address`, `pam.any` without RFC 1929).
pub const PAM_ADDRESS_USER: &str = pam::RHOSTUSR;

/// A user name as logs show it: lossy UTF-8, control characters escaped.
pub fn shown(user: &[u8]) -> String {
    String::from_utf8_lossy(user).escape_debug().to_string()
}

/// Where a password is checked.
#[derive(Debug, Clone)]
pub enum Db {
    /// System accounts: /etc/shadow, or PAM with a service.
    System(SystemKind),
    /// An htpasswd file.
    File(Arc<PasswordFile>),
}

impl Db {
    /// The name of the database in the success cache.
    fn cache_key(&self, rhost: IpAddr) -> String {
        match self {
            Db::System(SystemKind::Shadow) => "shadow".into(),
            // PAM may decide on the client's address too.
            Db::System(SystemKind::Pam { service }) => format!("pam:{service}:{rhost}"),
            Db::File(f) => format!("file:{}:{:p}", f.path().display(), Arc::as_ptr(f)),
        }
    }
}

/// Counts of checks since start (long-lived: they survive reloads).
#[derive(Debug, Default)]
pub struct AuthStats {
    successes: AtomicU64,
    failures: AtomicU64,
    cache_hits: AtomicU64,
}

/// A plain copy of [`AuthStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthCounts {
    /// Authentications that passed (cache hits included).
    pub successes: u64,
    /// Authentications that failed.
    pub failures: u64,
    /// Successes answered from the cache.
    pub cache_hits: u64,
}

impl AuthStats {
    /// Counts an authentication decided outside the verifier (GSS-API's).
    pub fn count(&self, passed: bool) {
        let c = if passed {
            &self.successes
        } else {
            &self.failures
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> AuthCounts {
        AuthCounts {
            successes: self.successes.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
        }
    }
}

/// Runs checks off the async threads, capped, remembers successes, counts outcomes.
pub struct Verifier {
    crypt: Arc<Semaphore>,
    pam: Arc<Semaphore>,
    /// Per client address and kind (PAM or not): its own small share.
    per_client: std::sync::Mutex<HashMap<(IpAddr, bool), Arc<Semaphore>>>,
    cache: cache::Cache,
    stats: AuthStats,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new(cache::TTL)
    }
}

impl Verifier {
    /// A verifier remembering successes for `ttl` (zero: never).
    pub fn new(ttl: std::time::Duration) -> Self {
        Self {
            crypt: Arc::new(Semaphore::new(CRYPT_SLOTS)),
            pam: Arc::new(Semaphore::new(PAM_SLOTS)),
            per_client: std::sync::Mutex::default(),
            cache: cache::Cache::new(ttl),
            stats: AuthStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &AuthStats {
        &self.stats
    }

    /// Forgets remembered successes and sets how long to remember new ones (on reload).
    pub fn reset_cache(&self, ttl: std::time::Duration) {
        self.cache.clear();
        self.cache.set_ttl(ttl);
    }

    /// Checks `user`/`password` from `rhost` against `db`.
    pub async fn check(&self, db: &Db, user: &[u8], password: &[u8], rhost: IpAddr) -> Outcome {
        let key = db.cache_key(rhost);
        if self.cache.hit(&key, user, password) {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            self.stats.successes.fetch_add(1, Ordering::Relaxed);
            return Outcome::Pass;
        }
        let out = self.run(db, user, password, rhost).await;
        match out {
            Outcome::Pass => {
                self.cache.remember(&key, user, password);
                self.stats.successes.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Fail(_) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        out
    }

    /// The semaphore of one client address and kind.
    fn client_slots(&self, rhost: IpAddr, pam: bool) -> Arc<Semaphore> {
        let mut m = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        // Drop the shares nobody holds, so the map is as large as the set of clients
        // checking right now.
        if m.len() > 1024 {
            m.retain(|_, s| Arc::strong_count(s) > 1);
        }
        let n = if pam {
            PAM_SLOTS_PER_CLIENT
        } else {
            CRYPT_SLOTS_PER_CLIENT
        };
        m.entry((rhost, pam))
            .or_insert_with(|| Arc::new(Semaphore::new(n)))
            .clone()
    }

    async fn run(&self, db: &Db, user: &[u8], password: &[u8], rhost: IpAddr) -> Outcome {
        let pam = matches!(db, Db::System(SystemKind::Pam { .. }));
        let slots = if pam { &self.pam } else { &self.crypt };
        let mine = self.client_slots(rhost, pam);
        let (Ok(_mine), Ok(_permit)) = (
            mine.acquire_owned().await,
            slots.clone().acquire_owned().await,
        ) else {
            return Outcome::Fail("authentication is shutting down".into());
        };
        let lost = || Outcome::Fail("the password check did not finish".into());
        match db {
            Db::File(f) => {
                let (f, u, p) = (f.clone(), user.to_vec(), password.to_vec());
                tokio::task::spawn_blocking(move || f.check(&u, &p))
                    .await
                    .unwrap_or_else(|_| lost())
            }
            Db::System(kind) => {
                let req = SystemRequest {
                    kind: kind.clone(),
                    user: user.to_vec(),
                    password: password.to_vec(),
                    rhost,
                };
                match helper::installed() {
                    Some(h) => h.check(&req).await,
                    None => tokio::task::spawn_blocking(move || system_check(&req))
                        .await
                        .unwrap_or_else(|_| lost()),
                }
            }
        }
    }
}

//! Privileges: dropping root after the listeners are bound (`user.unprivileged`), and the
//! privileged authentication helper that lets password checks keep root without the
//! network-facing process keeping it.
//!
//! Design (privilege separation, as OpenSSH's): started as root with `user.unprivileged`,
//! `hasocks server` first runs [`start_auth_helper`], which starts the same executable
//! (`/proc/self/exe`) as `hasocks auth-helper`: a root child with pipes for stdin and stdout
//! and no socket, which answers shadow and PAM checks
//! ([`crate::session::auth::helper`]) and exits when its stdin closes. Then the server binds
//! and drops to the unprivileged user for good ([`drop_to`]): from then on a bug reachable
//! from the network runs as that user, and all it can get from root is "this name and
//! password pass or fail", the same question any SOCKS client can ask. Without
//! `user.unprivileged`, or not started as root, there is no helper and checks run in the
//! process itself (with whatever rights it has: an unprivileged one can use the password
//! file, not /etc/shadow).

use std::process::Stdio;

use nix::unistd::{getuid, setgid, setgroups, setuid, Uid, User};

use crate::session::auth::helper::{self, HelperClient, HELPER_THREADS};

/// Why privileges could not be dropped, or the helper not started.
#[derive(Debug, thiserror::Error)]
pub enum PrivError {
    /// `user.unprivileged` names no user (or the lookup failed).
    #[error("user.unprivileged: {0}")]
    User(String),
    /// A set*id call failed.
    #[error("{call}: {source}")]
    Call {
        /// The call (`setgid(65534)`...).
        call: String,
        /// The OS error.
        source: nix::Error,
    },
    /// Root could be regained after the drop: refuse to run.
    #[error("privileges could be regained after dropping them")]
    Regained,
    /// The helper could not be started.
    #[error("auth helper: {0}")]
    Helper(String),
}

/// The hidden subcommand of the hasocks binary that runs the helper.
pub const AUTH_HELPER_SUBCOMMAND: &str = "auth-helper";

/// Switches to `user` when running as root; a no-op (Ok(false)) otherwise.
pub fn drop_to(user: &str) -> Result<bool, PrivError> {
    if !getuid().is_root() {
        return Ok(false);
    }
    let u = User::from_name(user)
        .map_err(|e| PrivError::User(format!("cannot look up {user}: {e}")))?
        .ok_or_else(|| PrivError::User(format!("no such user {user}")))?;
    let call = |call: String| move |source| PrivError::Call { call, source };
    setgroups(&[u.gid]).map_err(call("setgroups".into()))?;
    setgid(u.gid).map_err(call(format!("setgid({})", u.gid)))?;
    setuid(u.uid).map_err(call(format!("setuid({})", u.uid)))?;
    if setuid(Uid::from_raw(0)).is_ok() {
        return Err(PrivError::Regained);
    }
    Ok(true)
}

/// Starts the root authentication helper when running as root and about to drop to
/// `unprivileged` (call before [`drop_to`], inside the tokio runtime). Returns whether one
/// was started; without one, checks run in-process.
pub fn start_auth_helper(unprivileged: Option<&str>) -> Result<bool, PrivError> {
    if unprivileged.is_none() || !getuid().is_root() {
        return Ok(false);
    }
    let exe = std::env::current_exe()
        .map_err(|e| PrivError::Helper(format!("cannot find our own executable: {e}")))?;
    let mut child = tokio::process::Command::new(exe)
        .arg(AUTH_HELPER_SUBCOMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .env_clear()
        // Some PAM modules run programs; nothing else from our environment goes along.
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .spawn()
        .map_err(|e| PrivError::Helper(format!("cannot start it: {e}")))?;
    let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(PrivError::Helper("no pipes".into()));
    };
    // Reaped when it exits, so it never lingers as a zombie.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(helper::install(HelperClient::new(output, input)))
}

/// The helper's main: serves checks on stdin/stdout until stdin closes. Returns the exit
/// status. It ignores SIGHUP and SIGINT (a reload or a Ctrl-C is for the server, which
/// closes the pipe when it goes).
pub fn run_auth_helper() -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hasocks auth-helper: {e}");
            return 1;
        }
    };
    // Registering a listener replaces the default action (terminate) for good.
    let _signals = rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::hangup()),
            signal(SignalKind::interrupt()),
        )
    });
    match helper::serve(std::io::stdin().lock(), std::io::stdout(), HELPER_THREADS) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("hasocks auth-helper: {e}");
            1
        }
    }
}

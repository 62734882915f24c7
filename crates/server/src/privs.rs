//! Dropping root after the listeners are bound (`user.unprivileged`).

use nix::unistd::{getuid, setgid, setgroups, setuid, Uid, User};

/// Switches to `user` when running as root; a no-op (Ok(false)) otherwise.
pub fn drop_to(user: &str) -> Result<bool, String> {
    if !getuid().is_root() {
        return Ok(false);
    }
    let u = User::from_name(user)
        .map_err(|e| format!("user.unprivileged: cannot look up {user}: {e}"))?
        .ok_or_else(|| format!("user.unprivileged: no such user {user}"))?;
    setgroups(&[u.gid]).map_err(|e| format!("setgroups: {e}"))?;
    setgid(u.gid).map_err(|e| format!("setgid({}): {e}", u.gid))?;
    setuid(u.uid).map_err(|e| format!("setuid({}): {e}", u.uid))?;
    if setuid(Uid::from_raw(0)).is_ok() {
        return Err("privileges could be regained after dropping them".into());
    }
    Ok(true)
}

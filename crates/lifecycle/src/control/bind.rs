//! Binding a daemon's control socket (a Unix stream socket): mode 0660, a stale one left by
//! a process that died replaced, a live one refused, a missing parent folder created.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

/// Why the control socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// A running process answers on that path.
    #[error("control socket {0}: another process is listening there")]
    InUse(PathBuf),
    /// Something that is not a socket is at that path (it is left alone).
    #[error("control socket {0}: the path exists and is not a socket")]
    NotASocket(PathBuf),
    /// The OS refused.
    #[error("control socket {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// Whether a socket found at the path may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Only when nobody answers on it (a process that died left it).
    IfStale,
    /// Always: the process that answers on it handed over to this one and lets go of it.
    Replace,
}

/// Binds the configured control socket, which must work, or else the default one, which
/// is skipped with a warning ending in `without` when it cannot be made (an unprivileged
/// daemon cannot create /run/hasocks). The path and the listener, or None without a socket.
pub fn bind_configured_or_default(
    configured: Option<PathBuf>,
    default: &Path,
    existing: Existing,
    without: &str,
) -> Result<Option<(PathBuf, UnixListener)>, BindError> {
    if let Some(p) = configured {
        let l = bind(&p, existing)?;
        return Ok(Some((p, l)));
    }
    match bind(default, existing) {
        Ok(l) => Ok(Some((default.to_path_buf(), l))),
        Err(e) => {
            tracing::warn!("{e}; running without a control socket{without}");
            Ok(None)
        }
    }
}

/// Binds the control socket at `path` with mode 0660 (as relayd: the owner and the group may
/// use it). A missing parent folder is created (mode 0755).
pub fn bind(path: &Path, existing: Existing) -> Result<UnixListener, BindError> {
    let io_err = |source| BindError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_socket() => return Err(BindError::NotASocket(path.into())),
        Ok(_) if existing == Existing::Replace => std::fs::remove_file(path).map_err(io_err)?,
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(BindError::InUse(path.into())),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path).map_err(io_err)?;
            }
            Err(e) => return Err(io_err(e)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(io_err)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                .map_err(io_err)?;
        }
    }
    // The socket is created with the umask's mode (no write for others under any usual
    // umask, so nobody else can connect meanwhile), then set to 0660. Changing the umask
    // instead would affect every thread of the process.
    let l = UnixListener::bind(path).map_err(io_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io_err)?;
    Ok(l)
}

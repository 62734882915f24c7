//! The one way a config file is read: only a regular file, at most [`MAX_CONFIG_BYTES`], and
//! never blocking (a FIFO or device given as a config must not hang or exhaust the daemon).

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest config file (main or included) that is read: 4 MiB, far above any real
/// relayd.conf or sockd.conf, small enough that a wrong path cannot exhaust memory.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Why a config file could not be read. The caller adds the file and position.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The path names something other than a regular file (FIFO, device, directory, socket).
    #[error("not a regular file (it is {0})")]
    NotRegular(&'static str),
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit: u64,
    },
    /// The bytes are not UTF-8.
    #[error("the file is not valid UTF-8 (at byte {0})")]
    NotUtf8(usize),
    /// The file system refused (missing file, permissions, I/O error).
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// What kind of non-regular file `meta` is, for the message; None for a regular file.
fn not_regular(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    }
}

/// Refuses non-regular files and files over the limit.
fn check(meta: &Metadata) -> Result<(), ReadError> {
    if let Some(kind) = not_regular(meta) {
        return Err(ReadError::NotRegular(kind));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(ReadError::TooLarge {
            limit: MAX_CONFIG_BYTES,
        });
    }
    Ok(())
}

/// Reads the config file at `path` as UTF-8 text, refusing anything but a regular file of at
/// most [`MAX_CONFIG_BYTES`].
pub fn read_config(path: &Path) -> Result<String, ReadError> {
    // Checked before opening: opening a FIFO for reading would wait for a writer.
    check(&std::fs::metadata(path)?)?;
    // O_NONBLOCK: should the path become a FIFO between the check and the open, the open
    // returns at once instead of waiting for a writer. The flag bits are a C int.
    let flags = (rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)?;
    // The opened file is what is read: check it again, the path may have changed.
    let meta = file.metadata()?;
    check(&meta)?;
    read_bounded(file, meta.len())
}

/// Reads at most one byte over the limit, so a file that grew after the check is refused
/// without being read whole.
fn read_bounded(file: File, size_hint: u64) -> Result<String, ReadError> {
    let cap = usize::try_from(size_hint.min(MAX_CONFIG_BYTES)).unwrap_or(0);
    let mut bytes = Vec::with_capacity(cap);
    file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ReadError::TooLarge {
            limit: MAX_CONFIG_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8(e.utf8_error().valid_up_to()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// A fresh directory under the system temp dir, unique to this test.
    fn temp_dir(tag: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("hasocks-read-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Runs `read_config` on another thread and fails the test if it does not return within a
    /// generous deadline (a blocking open would never return).
    fn read_promptly(path: PathBuf) -> Result<String, ReadError> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(read_config(&path)));
        rx.recv_timeout(Duration::from_secs(10))
            .expect("read_config blocked")
    }

    #[test]
    fn a_regular_file_is_read_whole() {
        let dir = temp_dir("regular");
        let f = dir.join("a.conf");
        std::fs::write(&f, "table <t> { h }\n").unwrap();
        assert_eq!(read_config(&f).unwrap(), "table <t> { h }\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = temp_dir("fifo");
        let fifo = dir.join("fifo.conf");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from(0o600)).unwrap();
        // No writer ever opens the FIFO: a plain open for reading would wait forever.
        let e = read_promptly(fifo).unwrap_err();
        assert!(matches!(e, ReadError::NotRegular("a FIFO")), "{e:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dev_zero_is_refused() {
        let e = read_promptly(PathBuf::from("/dev/zero")).unwrap_err();
        assert!(
            matches!(e, ReadError::NotRegular("a character device")),
            "{e:?}"
        );
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = temp_dir("dir");
        let e = read_config(&dir).unwrap_err();
        assert!(matches!(e, ReadError::NotRegular("a directory")), "{e:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused() {
        let dir = temp_dir("big");
        let f = dir.join("big.conf");
        std::fs::write(&f, vec![b'#'; MAX_CONFIG_BYTES as usize + 1]).unwrap();
        let e = read_config(&f).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { limit } if limit == MAX_CONFIG_BYTES));
        assert!(e.to_string().contains("4194304"), "{e}");
        // Exactly at the limit is still read.
        std::fs::write(&f, vec![b'#'; MAX_CONFIG_BYTES as usize]).unwrap();
        assert_eq!(read_config(&f).unwrap().len() as u64, MAX_CONFIG_BYTES);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_grew_after_the_check_is_cut_at_the_limit() {
        let dir = temp_dir("grow");
        let f = dir.join("grow.conf");
        std::fs::write(&f, vec![b'#'; MAX_CONFIG_BYTES as usize + 10]).unwrap();
        // The size seen at the check was small; the bytes read are not.
        let e = read_bounded(File::open(&f).unwrap(), 10).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { .. }), "{e:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn invalid_utf8_is_refused_with_its_offset() {
        let dir = temp_dir("utf8");
        let f = dir.join("bad.conf");
        std::fs::write(&f, b"abc\xff").unwrap();
        assert!(matches!(read_config(&f), Err(ReadError::NotUtf8(3))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let e = read_config(Path::new("/nonexistent/x.conf")).unwrap_err();
        assert!(
            matches!(&e, ReadError::Io(io) if io.kind() == io::ErrorKind::NotFound),
            "{e:?}"
        );
    }
}

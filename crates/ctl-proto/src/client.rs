//! The control socket's client side, used by `hasocks ctl` (relay or server alike).

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::relay::Event;
use crate::{decode_reply, encode_request, Body, Command};

/// Why a control request could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached.
    #[error("cannot connect to {}: {}", .path.display(), connect_hint(.error))]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The OS error (its text is in the message, so it is not a `source`).
        error: io::Error,
    },
    /// The connection failed midway.
    #[error("control socket {}: {source}", .path.display())]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The relay's answer could not be understood.
    #[error("control socket {}: unexpected reply: {message}", .path.display())]
    Protocol {
        /// The socket path.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}

fn connect_hint(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied => {
            "permission denied (the socket is mode 0660: run as its owner, root, or a member of its group)".to_string()
        }
        io::ErrorKind::NotFound => {
            "no such socket (is the daemon running? -s names another socket)".to_string()
        }
        io::ErrorKind::ConnectionRefused => {
            "connection refused (nothing listens there: the daemon stopped?)".to_string()
        }
        _ => e.to_string(),
    }
}

struct Conn {
    path: PathBuf,
    r: BufReader<tokio::net::unix::OwnedReadHalf>,
    w: tokio::net::unix::OwnedWriteHalf,
}

impl Conn {
    async fn open(path: &Path, command: Command) -> Result<Conn, ClientError> {
        let s = UnixStream::connect(path)
            .await
            .map_err(|error| ClientError::Connect {
                path: path.to_path_buf(),
                error,
            })?;
        let (r, w) = s.into_split();
        let mut c = Conn {
            path: path.to_path_buf(),
            r: BufReader::new(r),
            w,
        };
        let line = encode_request(command);
        let path = c.path.clone();
        c.w.write_all(&line)
            .await
            .map_err(|source| ClientError::Io { path, source })?;
        Ok(c)
    }

    fn protocol(&self, message: String) -> ClientError {
        ClientError::Protocol {
            path: self.path.clone(),
            message,
        }
    }

    /// The next reply; None at EOF.
    async fn next(&mut self) -> Result<Option<Body>, ClientError> {
        let mut line = String::new();
        let n = self
            .r
            .read_line(&mut line)
            .await
            .map_err(|source| ClientError::Io {
                path: self.path.clone(),
                source,
            })?;
        if n == 0 {
            return Ok(None);
        }
        let body =
            decode_reply(line.as_bytes()).map_err(|e| self.protocol(format!("{e}: {line}")))?;
        Ok(Some(body))
    }
}

/// Sends one command and returns the relay's reply (an error reply is a `Body::Error`).
pub async fn request(path: &Path, command: Command) -> Result<Body, ClientError> {
    let mut c = Conn::open(path, command).await?;
    match c.next().await? {
        Some(body) => Ok(body),
        None => Err(c.protocol("the daemon closed the connection without a reply".into())),
    }
}

/// Streams events to `on_event` until it returns false or the relay closes the stream.
pub async fn monitor(
    path: &Path,
    mut on_event: impl FnMut(Event) -> bool,
) -> Result<(), ClientError> {
    let mut c = Conn::open(path, Command::Monitor).await?;
    while let Some(body) = c.next().await? {
        match body {
            Body::Event { event } => {
                if !on_event(event) {
                    return Ok(());
                }
            }
            Body::Error { message, .. } => return Err(c.protocol(message)),
            other => return Err(c.protocol(format!("{other:?}"))),
        }
    }
    Ok(())
}

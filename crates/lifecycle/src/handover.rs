//! Handing listening sockets to a successor process (a binary upgrade): descriptors sent
//! with SCM_RIGHTS over a Unix stream socket, beside length-prefixed JSON messages that the
//! daemons write and read with [`send_frame`] and [`recv_frame`]. Blocking: a hand-over is
//! a short exchange at start-up, done off the async threads.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// Descriptors per message (the kernel takes at most 253).
const BATCH: usize = 200;
/// The longest frame accepted.
pub const MAX_FRAME: usize = 16 << 20;

/// Writes one frame: a 4-byte big-endian length, then `body`.
pub fn send_frame(s: &mut UnixStream, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len()).map_err(|_| io::Error::other("frame too long"))?;
    s.write_all(&len.to_be_bytes())?;
    s.write_all(body)
}

/// Reads one frame written by [`send_frame`] (never more bytes than it holds, so that the
/// descriptors after it stay in the socket).
pub fn recv_frame(s: &mut UnixStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes"),
        ));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(body)
}

/// Sends `fds`, in batches, each attached to one byte.
pub fn send_fds(s: &UnixStream, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    for chunk in fds.chunks(BATCH) {
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(BATCH))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(chunk)) {
            return Err(io::Error::other("ancillary buffer too small"));
        }
        let sent = sendmsg(
            s.as_fd(),
            &[IoSlice::new(&[1u8])],
            &mut control,
            SendFlags::empty(),
        )?;
        if sent != 1 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "descriptor batch not sent",
            ));
        }
    }
    Ok(())
}

/// Receives exactly `n` descriptors sent by [`send_fds`].
pub fn recv_fds(s: &UnixStream, n: usize) -> io::Result<Vec<OwnedFd>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(BATCH))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut byte = [0u8; 1];
        let got = recvmsg(
            s.as_fd(),
            &mut [IoSliceMut::new(&mut byte)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        if got.bytes == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the other process closed after {} of {n} descriptors",
                    out.len()
                ),
            ));
        }
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = msg {
                out.extend(fds);
            }
        }
    }
    if out.len() != n {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("got {} descriptors, expected {n}", out.len()),
        ));
    }
    Ok(out)
}

/// How long either side waits for the other during a hand-over.
pub const STEP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The running (old) process's side: sends `meta` (JSON describing what follows) and `fds`,
/// waits for the new process to confirm that it serves, then calls `release` (stop
/// accepting, free the control socket and the admin port) and acknowledges. An error before
/// the confirmation leaves the old process as it was.
pub fn give(
    mut s: UnixStream,
    meta: &[u8],
    fds: &[BorrowedFd<'_>],
    release: impl FnOnce(),
) -> io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(STEP_TIMEOUT))?;
    s.set_write_timeout(Some(STEP_TIMEOUT))?;
    send_frame(&mut s, meta)?;
    send_fds(&s, fds)?;
    let done = recv_frame(&mut s)?;
    if done != b"done" {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no confirmation from the new process",
        ));
    }
    release();
    s.write_all(b"k")
}

/// The new process's side, once it has what it asked for: [`Taken::confirm`] when it serves.
#[derive(Debug)]
pub struct Taken {
    s: UnixStream,
}

impl Taken {
    /// Tells the old process that this one serves, and waits until it has let go of its
    /// control socket and admin port.
    pub fn confirm(mut self) -> io::Result<()> {
        send_frame(&mut self.s, b"done")?;
        let mut ack = [0u8; 1];
        self.s.read_exact(&mut ack)?;
        if ack != *b"k" {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected acknowledgement",
            ));
        }
        Ok(())
    }
}

/// Connects to the running process's control socket at `path`, sends `request` (one line of
/// its protocol asking for a hand-over), and receives the description (`meta`) and the
/// descriptors; `count_fds` reads from `meta` how many follow.
pub fn take(
    path: &std::path::Path,
    request: &[u8],
    count_fds: impl FnOnce(&[u8]) -> io::Result<usize>,
) -> io::Result<(Vec<u8>, Vec<OwnedFd>, Taken)> {
    let mut s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(STEP_TIMEOUT))?;
    s.set_write_timeout(Some(STEP_TIMEOUT))?;
    s.write_all(request)?;
    let meta = recv_frame(&mut s)?;
    let n = count_fds(&meta)?;
    let fds = recv_fds(&s, n)?;
    Ok((meta, fds, Taken { s }))
}

/// What lets go of the old process's resources once its successor serves (stop accepting,
/// close the admin port, tell the daemon to drain and exit).
pub type Release = Box<dyn FnOnce() + Send>;

/// [`give`] off the async threads, on a control connection: `meta` and `fds` go to the new
/// process; `release` runs once it confirms. When the hand-over fails before the release,
/// the release comes back (nothing changed here, a later takeover may be tried).
pub async fn offer(
    stream: tokio::net::UnixStream,
    meta: Vec<u8>,
    fds: Vec<OwnedFd>,
    release: Release,
) -> Result<(), (io::Error, Option<Release>)> {
    let std = match stream.into_std() {
        Ok(s) => s,
        Err(e) => return Err((e, Some(release))),
    };
    let joined = tokio::task::spawn_blocking(move || {
        let mut release = Some(release);
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
        let r = give(std, &meta, &borrowed, || {
            if let Some(f) = release.take() {
                f();
            }
        });
        (r, release)
    })
    .await;
    match joined {
        Ok((Ok(()), _)) => Ok(()),
        Ok((Err(e), back)) => Err((e, back)),
        Err(e) => Err((io::Error::other(e.to_string()), None)),
    }
}

/// [`take`] off the async threads, with the protocol's `takeover` request; `count_fds`
/// reads from the description how many descriptors follow.
pub async fn take_over(
    path: std::path::PathBuf,
    count_fds: fn(&[u8]) -> Result<usize, HandoverError>,
) -> io::Result<(Vec<u8>, Vec<OwnedFd>, Taken)> {
    let request = hasocks_ctl_proto::encode_request(hasocks_ctl_proto::Command::Takeover);
    tokio::task::spawn_blocking(move || {
        take(&path, &request, |m| count_fds(m).map_err(io::Error::other))
    })
    .await
    .map_err(|e| io::Error::other(e.to_string()))?
}

/// Reads a daemon's hand-over description (JSON with its version in `v`), refusing another
/// version before looking at the rest.
pub fn read_description<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    version: u32,
) -> Result<T, HandoverError> {
    #[derive(serde::Deserialize)]
    struct Versioned {
        v: u32,
    }
    let desc = |e: serde_json::Error| HandoverError::Description(e.to_string());
    let got = serde_json::from_slice::<Versioned>(bytes).map_err(desc)?.v;
    if got != version {
        return Err(HandoverError::Version {
            got,
            reads: version,
        });
    }
    serde_json::from_slice(bytes).map_err(desc)
}

/// Why a hand-over's description or descriptors cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandoverError {
    /// The description is not what this build writes.
    #[error("hand-over description: {0}")]
    Description(String),
    /// Another version of the description.
    #[error("hand-over version {got} (this build reads {reads})")]
    Version {
        /// What came.
        got: u32,
        /// What this build reads.
        reads: u32,
    },
    /// Fewer descriptors than described.
    #[error("hand-over: {got} sockets where {described} were described")]
    Count {
        /// Received.
        got: usize,
        /// Described.
        described: usize,
    },
    /// A received socket could not be set up.
    #[error("hand-over socket: {0}")]
    Socket(String),
}

impl Taken {
    /// [`confirm`](Self::confirm) off the async threads.
    pub async fn confirmed(self) -> io::Result<()> {
        tokio::task::spawn_blocking(move || self.confirm())
            .await
            .map_err(|e| io::Error::other(e.to_string()))?
    }
}

/// Cuts received descriptors into listening-socket groups of `counts` sockets each (in the
/// order sent), made non-blocking for the accept loops.
pub fn split_listeners(
    counts: &[usize],
    fds: Vec<OwnedFd>,
) -> Result<Vec<Vec<std::net::TcpListener>>, HandoverError> {
    let mut fds = fds.into_iter();
    let mut out = Vec::with_capacity(counts.len());
    for &n in counts {
        let group: Vec<std::net::TcpListener> = fds
            .by_ref()
            .take(n)
            .map(std::net::TcpListener::from)
            .collect();
        if group.len() != n {
            return Err(HandoverError::Count {
                got: group.len(),
                described: n,
            });
        }
        for s in &group {
            s.set_nonblocking(true)
                .map_err(|e| HandoverError::Socket(e.to_string()))?;
        }
        out.push(group);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_cross_to_the_other_end_and_still_accept() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let ls: Vec<std::net::TcpListener> = (0..250)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let addrs: Vec<_> = ls.iter().map(|l| l.local_addr().unwrap()).collect();
        send_frame(&mut a, b"{\"n\":250}").unwrap();
        let fds: Vec<BorrowedFd<'_>> = ls.iter().map(|l| l.as_fd()).collect();
        send_fds(&a, &fds).unwrap();
        assert_eq!(recv_frame(&mut b).unwrap(), b"{\"n\":250}");
        let got = recv_fds(&b, 250).unwrap();
        drop(ls);
        let first = std::net::TcpListener::from(got.into_iter().next().unwrap());
        assert_eq!(first.local_addr().unwrap(), addrs[0]);
        let _c = std::net::TcpStream::connect(addrs[0]).unwrap();
        first.accept().expect("the handed-over socket accepts");
    }

    #[test]
    fn give_and_take_release_the_old_side_only_after_the_confirmation() {
        let dir = std::env::temp_dir().join(format!("handover-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("ctl.sock");
        let _ = std::fs::remove_file(&path);
        let server = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let released = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = released.clone();
        let old = std::thread::spawn(move || {
            let (mut c, _) = server.accept().unwrap();
            let mut line = [0u8; 9];
            c.read_exact(&mut line).unwrap();
            assert_eq!(&line, b"takeover\n");
            give(c, b"1", &[l.as_fd()], || {
                flag.store(true, std::sync::atomic::Ordering::SeqCst)
            })
            .unwrap();
        });
        let (meta, fds, taken) = take(&path, b"takeover\n", |m| {
            std::str::from_utf8(m)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| io::Error::other("count"))
        })
        .unwrap();
        assert_eq!((meta.as_slice(), fds.len()), (&b"1"[..], 1));
        assert!(
            !released.load(std::sync::atomic::Ordering::SeqCst),
            "released before the confirmation"
        );
        taken.confirm().unwrap();
        old.join().unwrap();
        assert!(released.load(std::sync::atomic::Ordering::SeqCst));
        let got = std::net::TcpListener::from(fds.into_iter().next().unwrap());
        assert_eq!(got.local_addr().unwrap(), addr);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_peer_that_closes_early_is_an_error_not_a_hang() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(a);
        assert!(recv_fds(&b, 1).is_err());
    }
}

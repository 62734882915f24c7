//! Zero-copy direction for `pump` on Linux: socket -> pipe -> socket with splice(2), through
//! rustix's safe wrapper. Bytes never enter user space, at the cost of two extra fds per
//! direction and two syscalls per chunk. splice(2) cannot pass MSG_NOSIGNAL, so a reset peer
//! may raise SIGPIPE; Rust programs ignore SIGPIPE by default, so it surfaces as EPIPE.

use std::io;
use std::os::fd::OwnedFd;
use std::task::{ready, Context, Poll};

use rustix::pipe::{
    fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, splice, PipeFlags, SpliceFlags,
};
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::Fault;

/// One direction copied through a pipe with splice(2).
pub(crate) struct SpliceHalf {
    /// Read end of the pipe (drained into the writer).
    rd: OwnedFd,
    /// Write end of the pipe (filled from the reader).
    wr: OwnedFd,
    /// Pipe capacity: the most one splice from the reader may move.
    cap: usize,
    /// Bytes sitting in the pipe, not yet written out.
    in_pipe: usize,
    read_eof: bool,
    done: bool,
    bytes: u64,
}

impl SpliceHalf {
    /// A direction with a fresh pipe sized to about `size` bytes, `bytes` already delivered.
    pub(crate) fn new(size: usize, bytes: u64) -> io::Result<Self> {
        let (rd, wr) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        // Never shrink below the default (64 KiB, 16 slots): fewer slots means more splice
        // calls. Growing may be refused (pipe-user-pages-soft); the default then serves.
        let default = fcntl_getpipe_size(&wr).unwrap_or(64 * 1024);
        let cap = if size > default {
            fcntl_setpipe_size(&wr, size).unwrap_or(default)
        } else {
            default
        };
        Ok(SpliceHalf {
            rd,
            wr,
            cap,
            in_pipe: 0,
            read_eof: false,
            done: false,
            bytes,
        })
    }

    /// Bytes delivered to the writer so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Same contract as `Half::poll_copy`.
    pub(crate) fn poll_copy(
        &mut self,
        cx: &mut Context<'_>,
        r: &TcpStream,
        w: &TcpStream,
        progress: &mut bool,
        other_done: bool,
    ) -> Poll<Result<(), Fault>> {
        let flags = SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
        while !self.done {
            if self.in_pipe == 0 {
                if self.read_eof && other_done {
                    // The session ends here; closing the socket sends the FIN.
                    self.done = true;
                    continue;
                }
                if self.read_eof {
                    // Tokio's shutdown is a plain shutdown(2): it never waits.
                    match rustix::net::shutdown(w, rustix::net::Shutdown::Write) {
                        Ok(()) | Err(rustix::io::Errno::NOTCONN) => self.done = true,
                        Err(e) => return Poll::Ready(Err(Fault::Write(e.into()))),
                    }
                    continue;
                }
                // Only an empty pipe is filled, so EAGAIN can only mean "socket not readable"
                // (a partly full pipe may also refuse, and the two would be indistinguishable).
                if let Err(e) = ready!(r.poll_read_ready(cx)) {
                    return Poll::Ready(Err(Fault::Read(e)));
                }
                let res = r.try_io(Interest::READABLE, || {
                    splice(r, None, &self.wr, None, self.cap, flags).map_err(io::Error::from)
                });
                match res {
                    Ok(0) => self.read_eof = true,
                    Ok(n) => {
                        self.in_pipe = n;
                        *progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(Fault::Read(e))),
                }
            } else {
                if let Err(e) = ready!(w.poll_write_ready(cx)) {
                    return Poll::Ready(Err(Fault::Write(e)));
                }
                let res = w.try_io(Interest::WRITABLE, || {
                    splice(&self.rd, None, w, None, self.in_pipe, flags).map_err(io::Error::from)
                });
                match res {
                    Ok(0) => {
                        return Poll::Ready(Err(Fault::Write(io::ErrorKind::WriteZero.into())))
                    }
                    Ok(n) => {
                        self.in_pipe = self.in_pipe.saturating_sub(n);
                        self.bytes += n as u64;
                        *progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(Fault::Write(e))),
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

//! Bidirectional copy between two TCP streams with byte counts, half-close, idle timeout and
//! cancellation. One future drives both directions (no extra tasks), each direction owns one
//! buffer allocated once per session; a bulk direction moves to splice(2) (see `set_splice`).

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Default per-direction buffer size in bytes.
pub const DEFAULT_BUF_SIZE: usize = 32 * 1024;

mod splice;

static BUF_SIZE: AtomicUsize = AtomicUsize::new(DEFAULT_BUF_SIZE);
static SPLICE: AtomicBool = AtomicBool::new(DEFAULT_SPLICE);

/// Whether `pump` uses splice(2) unless told otherwise (see `set_splice`).
pub const DEFAULT_SPLICE: bool = true;

/// Bytes a direction copies through its buffer before it switches to splice. Short sessions
/// never pay for the pipe (creating one costs about as much as copying ~20 KB); bulk ones
/// then move bytes at roughly half the CPU per byte.
pub const SPLICE_AFTER: u64 = 64 * 1024;

/// Chooses whether later `pump` calls may switch bulk directions to splice(2) (zero-copy
/// through a pipe) after `SPLICE_AFTER` bytes, or always copy through the user-space buffer.
/// If a pipe cannot be made (fd limit), that direction keeps copying.
pub fn set_splice(enabled: bool) {
    SPLICE.store(enabled, Ordering::Relaxed);
}

/// Whether later `pump` calls use splice(2).
pub fn splice_enabled() -> bool {
    SPLICE.load(Ordering::Relaxed)
}

/// Whether a session with `opts` may move to splice(2): the process-wide choice, unless the
/// session opts out.
fn splices(opts: &CopyOpts) -> bool {
    splice_enabled() && !opts.no_splice
}

/// Sets the per-direction buffer size used by later `pump` calls (clamped to 4 KiB..=1 MiB).
pub fn set_buffer_size(bytes: usize) {
    BUF_SIZE.store(bytes.clamp(4096, 1 << 20), Ordering::Relaxed);
}

/// The per-direction buffer size `pump` currently uses.
pub fn buffer_size() -> usize {
    BUF_SIZE.load(Ordering::Relaxed)
}

/// Options for one `pump` session.
#[derive(Debug, Clone, Default)]
pub struct CopyOpts {
    /// End the session when no byte moved in either direction for this long.
    pub idle_timeout: Option<Duration>,
    /// End the session when this token is cancelled.
    pub cancel: Option<CancellationToken>,
    /// Copy through user space only, never splice(2), whatever `set_splice` says (relayd's
    /// `tcp { no splice }`).
    pub no_splice: bool,
}

/// Byte counts and the time of the last activity of a session in progress. `pump_live`
/// updates them as bytes move, so that a registry of open sessions can show them while the
/// session runs (one relaxed store per counter per wake-up: no lock on the data path).
#[derive(Debug, Default)]
pub struct LiveBytes {
    a_to_b: AtomicU64,
    b_to_a: AtomicU64,
    /// `clock::now_ms()` when a byte last moved; 0 = not yet.
    last_ms: AtomicU64,
    /// Bytes `a` sent that went to `b` before the copy began (read ahead by the caller).
    ahead: u64,
}

impl LiveBytes {
    /// Counts for a session whose first `ahead` bytes from `a` were forwarded before the copy.
    pub fn with_ahead(ahead: u64) -> Self {
        LiveBytes {
            ahead,
            ..LiveBytes::default()
        }
    }

    /// Bytes moved so far from `a` to `b`.
    pub fn a_to_b(&self) -> u64 {
        self.ahead + self.a_to_b.load(Ordering::Relaxed)
    }

    /// Bytes moved so far from `b` to `a`.
    pub fn b_to_a(&self) -> u64 {
        self.b_to_a.load(Ordering::Relaxed)
    }

    /// `crate::clock::now_ms()` of the last byte moved, None before the first one.
    pub fn last_active_ms(&self) -> Option<u64> {
        Some(self.last_ms.load(Ordering::Relaxed)).filter(|ms| *ms > 0)
    }

    fn publish(&self, a_to_b: u64, b_to_a: u64, now_ms: u64) {
        self.a_to_b.store(a_to_b, Ordering::Relaxed);
        self.b_to_a.store(b_to_a, Ordering::Relaxed);
        self.last_ms.store(now_ms, Ordering::Relaxed);
    }
}

/// Why a `pump` session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Both directions reached EOF and were shut down cleanly.
    Closed,
    /// No byte moved for the configured idle timeout.
    IdleTimeout,
    /// The cancellation token fired.
    Cancelled,
    /// A socket error on `a` (the client side).
    ErrorA,
    /// A socket error on `b` (the server side).
    ErrorB,
}

/// What a `pump` session moved and how it ended.
#[derive(Debug, Clone, Copy)]
pub struct CopyReport {
    /// Bytes written to `b` that were read from `a`.
    pub a_to_b: u64,
    /// Bytes written to `a` that were read from `b`.
    pub b_to_a: u64,
    /// Why the session ended.
    pub end: EndReason,
}

/// A failed direction: which end of it broke.
pub(crate) enum Fault {
    /// The reading socket failed.
    Read(io::Error),
    /// The writing socket failed (write or shutdown).
    Write(io::Error),
}

// Buffers of idle directions wait here for the next direction that needs one, so a busy
// server does not zero and free 32 KiB at every message. Per thread (no locking), bounded.
thread_local! {
    static POOL: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}
/// Buffers kept per thread for reuse (at the default size, 2 MiB).
const POOL_MAX: usize = 64;

fn take_buf(size: usize) -> Vec<u8> {
    POOL.with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.pop()))
        .filter(|b| b.len() == size)
        .unwrap_or_else(|| vec![0u8; size])
}

fn give_buf(buf: Vec<u8>) {
    if buf.is_empty() {
        return;
    }
    POOL.with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            if p.len() < POOL_MAX {
                p.push(buf);
            }
        }
    });
}

/// One direction of the copy: read from one stream into a buffer, write it to the other.
/// The buffer exists only while bytes are moving: it is allocated when the reader becomes
/// readable and freed when the direction goes idle with nothing buffered, so an idle session
/// holds no buffer memory (thousands of idle SOCKS control connections are common).
pub(crate) struct Half {
    buf: Vec<u8>,
    size: usize,
    pos: usize,
    cap: usize,
    read_eof: bool,
    done: bool,
    bytes: u64,
}

impl Half {
    pub(crate) fn new(size: usize) -> Self {
        Half {
            buf: Vec::new(),
            size,
            pos: 0,
            cap: 0,
            read_eof: false,
            done: false,
            bytes: 0,
        }
    }

    /// Bytes delivered to the writer so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Nothing buffered and the reader not at EOF: a safe point to change the mechanism.
    fn is_empty_and_open(&self) -> bool {
        self.pos == self.cap && !self.read_eof && !self.done
    }

    /// Moves bytes until the reader is pending and the buffer is drained, or the writer is
    /// pending, or the direction is finished (EOF seen and the writer shut down).
    pub(crate) fn poll_copy(
        &mut self,
        cx: &mut Context<'_>,
        r: &mut TcpStream,
        w: &mut TcpStream,
        progress: &mut bool,
        other_done: bool,
    ) -> Poll<Result<(), Fault>> {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        loop {
            if !self.read_eof && self.buf.is_empty() {
                // No buffer while idle: wait for readability first, then allocate.
                match r.poll_read_ready(cx) {
                    Poll::Ready(Ok(())) => self.buf = take_buf(self.size),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Fault::Read(e))),
                    Poll::Pending => return Poll::Pending,
                }
            }
            // Keep reading while there is room, so a slow writer does not stall the reader.
            if !self.read_eof && self.cap < self.buf.len() {
                let mut rb = ReadBuf::new(&mut self.buf[self.cap..]);
                match Pin::new(&mut *r).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) => {
                        let n = rb.filled().len();
                        if n == 0 {
                            self.read_eof = true;
                        } else {
                            self.cap += n;
                            *progress = true;
                        }
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Fault::Read(e))),
                    Poll::Pending => {
                        if self.pos == self.cap {
                            // Idle with nothing buffered: give the memory back.
                            give_buf(std::mem::take(&mut self.buf));
                            (self.pos, self.cap) = (0, 0);
                            return Poll::Pending;
                        }
                    }
                }
            }
            if self.pos < self.cap {
                match Pin::new(&mut *w).poll_write(cx, &self.buf[self.pos..self.cap]) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(Fault::Write(io::ErrorKind::WriteZero.into())))
                    }
                    Poll::Ready(Ok(n)) => {
                        self.pos += n;
                        self.bytes += n as u64;
                        *progress = true;
                        if self.pos == self.cap {
                            self.pos = 0;
                            self.cap = 0;
                        }
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Fault::Write(e))),
                    Poll::Pending => return Poll::Pending,
                }
                continue;
            }
            if self.read_eof && other_done {
                // The other direction is over too: the session ends here and closing the
                // socket sends the FIN, so a shutdown(2) would only cost a system call.
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            if self.read_eof {
                // EOF from the reader becomes a write shutdown on the writer (half-close).
                return match Pin::new(&mut *w).poll_shutdown(cx) {
                    Poll::Ready(Ok(())) => {
                        self.done = true;
                        Poll::Ready(Ok(()))
                    }
                    // The peer already went away entirely: nothing left to tell it.
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::NotConnected => {
                        self.done = true;
                        Poll::Ready(Ok(()))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(Fault::Write(e))),
                    Poll::Pending => Poll::Pending,
                };
            }
        }
    }
}

impl Drop for Half {
    fn drop(&mut self) {
        give_buf(std::mem::take(&mut self.buf));
    }
}

/// One direction, by buffer copy or by splice.
enum Dir {
    /// Buffer copy; `upgrade` while a later switch to splice is still wanted.
    Buf { half: Half, upgrade: bool },
    /// Splice through a pipe.
    Splice(splice::SpliceHalf),
}

impl Dir {
    /// A direction that starts copying and, if `splice`, moves to splice once it is bulk.
    fn new(splice: bool) -> Dir {
        Dir::Buf {
            half: Half::new(buffer_size()),
            upgrade: splice,
        }
    }

    /// Switches a bulk direction to splice at a point where the buffer is empty.
    fn maybe_upgrade(&mut self) {
        let Dir::Buf { half, upgrade } = self else {
            return;
        };
        if !*upgrade || half.bytes() < SPLICE_AFTER || !half.is_empty_and_open() {
            return;
        }
        match splice::SpliceHalf::new(half.size, half.bytes()) {
            // The copy buffer is freed here: a spliced direction holds no user-space memory.
            Ok(s) => *self = Dir::Splice(s),
            Err(e) => {
                tracing::debug!("no pipe for splice, copying on: {e}");
                *upgrade = false;
            }
        }
    }

    fn poll_copy(
        &mut self,
        cx: &mut Context<'_>,
        r: &mut TcpStream,
        w: &mut TcpStream,
        progress: &mut bool,
        other_done: bool,
    ) -> Poll<Result<(), Fault>> {
        self.maybe_upgrade();
        match self {
            Dir::Buf { half, .. } => half.poll_copy(cx, r, w, progress, other_done),
            Dir::Splice(h) => h.poll_copy(cx, r, w, progress, other_done),
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            Dir::Buf { half, .. } => half.bytes(),
            Dir::Splice(h) => h.bytes(),
        }
    }
}

/// Maps a fault of the direction reading `from` and writing `to` to an end reason.
fn fault_reason(f: Fault, from: EndReason, to: EndReason) -> EndReason {
    let (side, what, e) = match f {
        Fault::Read(e) => (from, "read", e),
        Fault::Write(e) => (to, "write", e),
    };
    tracing::debug!(?side, "copy {what} failed: {e}");
    side
}

/// Copies both ways until both directions are done; one side's EOF becomes a write shutdown on
/// the other, the other direction keeps flowing (half-close). Byte counts are kept even when it
/// ends on an error/timeout. idle_timeout: no byte in either direction for that long ends the
/// session.
pub async fn pump(a: TcpStream, b: TcpStream, opts: CopyOpts) -> CopyReport {
    pump_live(a, b, opts, None).await
}

/// [`pump`], publishing byte counts and activity to `live` as they change.
pub async fn pump_live(
    mut a: TcpStream,
    mut b: TcpStream,
    opts: CopyOpts,
    live: Option<&LiveBytes>,
) -> CopyReport {
    let splice = splices(&opts);
    let (mut ab, mut ba) = (Dir::new(splice), Dir::new(splice));
    let mut idle = opts
        .idle_timeout
        .map(|d| (d, Box::pin(tokio::time::sleep(d))));
    let mut cancelled = opts.cancel.map(|t| Box::pin(t.cancelled_owned()));
    let mut last = Instant::now();
    // Whether each direction has finished (EOF passed on), as of the last poll.
    let (mut ab_fin, mut ba_fin) = (false, false);

    let end = poll_fn(|cx| {
        if let Some(c) = cancelled.as_mut() {
            if c.as_mut().poll(cx).is_ready() {
                return Poll::Ready(EndReason::Cancelled);
            }
        }
        let mut progress = false;
        let ab_done = match ab.poll_copy(cx, &mut a, &mut b, &mut progress, ba_fin) {
            Poll::Ready(Ok(())) => true,
            Poll::Ready(Err(f)) => {
                return Poll::Ready(fault_reason(f, EndReason::ErrorA, EndReason::ErrorB))
            }
            Poll::Pending => false,
        };
        ab_fin = ab_done;
        let ba_done = match ba.poll_copy(cx, &mut b, &mut a, &mut progress, ab_fin) {
            Poll::Ready(Ok(())) => true,
            Poll::Ready(Err(f)) => {
                return Poll::Ready(fault_reason(f, EndReason::ErrorB, EndReason::ErrorA))
            }
            Poll::Pending => false,
        };
        ba_fin = ba_done;
        if ab_done && ba_done {
            return Poll::Ready(EndReason::Closed);
        }
        if progress && (idle.is_some() || live.is_some()) {
            // Only note the time; the timer is re-armed lazily when it fires, which keeps
            // timer-wheel churn off the hot path.
            last = Instant::now();
            if let Some(l) = live {
                l.publish(ab.bytes(), ba.bytes(), crate::clock::ms_at(last.into_std()));
            }
        }
        if let Some((d, sleep)) = idle.as_mut() {
            while sleep.as_mut().poll(cx).is_ready() {
                let due = last + *d;
                if due <= Instant::now() {
                    return Poll::Ready(EndReason::IdleTimeout);
                }
                sleep.as_mut().reset(due);
            }
        }
        Poll::Pending
    })
    .await;

    CopyReport {
        a_to_b: ab.bytes(),
        b_to_a: ba.bytes(),
        end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_that_opts_out_of_splice_never_splices() {
        let no = CopyOpts {
            no_splice: true,
            ..CopyOpts::default()
        };
        // Whatever the process-wide choice is (other tests may change it), never.
        assert!(!splices(&no));
        assert_eq!(splices(&CopyOpts::default()), splice_enabled());
    }
}

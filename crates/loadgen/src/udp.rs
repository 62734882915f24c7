//! The UDP load: N UDP associations through a SOCKS5 server, each keeping a window of
//! datagrams in flight towards a UDP echo server of its own on 127.0.0.1 (so one
//! association's window never overflows another's receive queue), counting the echoes.
//! Loopback only: the echo servers bind 127.0.0.1.
//!
//! The generator shares the CPUs with the proxy it measures, so it spends as little as it can
//! per datagram: the client side and the echo server take up to `batch` datagrams per
//! recvmmsg(2) and answer a batch of equal datagrams to one peer with one UDP GSO sendmsg(2)
//! (the kernel cuts it into separate datagrams before any socket sees it, so the proxy under
//! test gets ordinary datagrams). `batch` 1 is the plain one-receive-one-send loop.

use std::cell::RefCell;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hasocks_probe::socks5_command;
use hasocks_socks_wire::udp::UdpHeader;
use hasocks_socks_wire::v5::Command;
use hasocks_socks_wire::TargetAddr;
use nix::sys::socket::{
    recvmmsg, sendmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage,
};
use tokio::io::Interest;
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinSet;

use crate::report::{Errors, Udp};
use crate::SessionError;

/// The budget of one association's handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Most datagrams per receive or GSO send (the kernel's GSO limit is 64 segments).
const MAX_BATCH: usize = 64;
/// Most bytes one GSO send may carry.
const GSO_MAX_BYTES: usize = 65_507;

thread_local! {
    /// Receive buffers and headers, one set per runtime thread (nix's headers are not `Send`,
    /// so they cannot live in a task).
    static RX: RefCell<Rx> = RefCell::new(Rx::new(65536));
}

/// Receive buffers and headers for up to `MAX_BATCH` datagrams.
struct Rx {
    bufs: Vec<Vec<u8>>,
    headers: MultiHeaders<SockaddrStorage>,
    got: Vec<(usize, Option<SockaddrStorage>)>,
}

impl Rx {
    fn new(slot: usize) -> Self {
        Self {
            bufs: (0..MAX_BATCH).map(|_| vec![0u8; slot]).collect(),
            headers: MultiHeaders::preallocate(MAX_BATCH, None),
            got: Vec::with_capacity(MAX_BATCH),
        }
    }

    /// Up to `max` waiting datagrams into `got`; `WouldBlock` clears the readiness.
    fn recv(&mut self, sock: &UdpSocket, max: usize) -> io::Result<usize> {
        let Self { bufs, headers, got } = self;
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs
            .iter_mut()
            .take(max)
            .map(|b| [IoSliceMut::new(b)])
            .collect();
        let fd = sock.as_raw_fd();
        got.clear();
        sock.try_io(Interest::READABLE, || {
            let res = recvmmsg(fd, headers, iovs.iter_mut(), MsgFlags::empty(), None)?;
            got.extend(res.map(|m| (m.bytes, m.address)));
            Ok(got.len())
        })
    }
}

/// Sends `dgs` (all but the last of one length, the last no longer) to `to` (None on a
/// connected socket) in one GSO sendmsg, or one plain sendmsg for a single datagram.
fn send_batch(sock: &UdpSocket, dgs: &[&[u8]], to: Option<&SockaddrStorage>) -> io::Result<()> {
    let seg = dgs.first().map_or(0, |d| d.len()) as u16;
    let iovs: Vec<IoSlice<'_>> = dgs.iter().map(|d| IoSlice::new(d)).collect();
    let gso = [ControlMessage::UdpGsoSegments(&seg)];
    let cmsgs: &[ControlMessage] = if dgs.len() > 1 { &gso } else { &[] };
    let fd = sock.as_raw_fd();
    sock.try_io(Interest::WRITABLE, || {
        sendmsg(fd, &iovs, cmsgs, MsgFlags::empty(), to)
            .map(drop)
            .map_err(io::Error::from)
    })
}

/// Sends `count` copies of `dg` on the connected `sock`, in batches of at most `batch`;
/// returns how many went.
async fn send_copies(sock: &UdpSocket, dg: &[u8], count: usize, batch: usize) -> u64 {
    let per = batch.min(GSO_MAX_BYTES / dg.len().max(1)).max(1);
    let mut sent = 0;
    while sent < count {
        let n = per.min(count - sent);
        let copies = vec![dg; n];
        if sock.writable().await.is_err() {
            break;
        }
        match send_batch(sock, &copies, None) {
            Ok(()) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        }
    }
    sent as u64
}

/// A UDP echo server on 127.0.0.1, one per association (so one association's window never
/// overflows another's receive queue), served by a task of this runtime. Each received batch
/// goes back in runs of equal datagrams to one peer, each run in one send.
async fn start_echo(batch: usize) -> std::io::Result<SocketAddr> {
    let s = UdpSocket::bind("127.0.0.1:0").await?;
    let addr = s.local_addr()?;
    tokio::spawn(async move {
        while s.readable().await.is_ok() {
            RX.with_borrow_mut(|rx| {
                let Ok(n) = rx.recv(&s, batch) else {
                    return;
                };
                let mut i = 0;
                while i < n {
                    let (len, from) = rx.got[i];
                    let mut j = i + 1;
                    while j < n && rx.got[j] == (len, from) && (j - i + 1) * len <= GSO_MAX_BYTES {
                        j += 1;
                    }
                    let dgs: Vec<&[u8]> = rx.bufs[i..j].iter().map(|b| &b[..len]).collect();
                    if let Some(to) = from {
                        // A full send buffer drops the run, as a plain echo server would.
                        let _ = send_batch(&s, &dgs, Some(&to));
                    }
                    i = j;
                }
            });
        }
    });
    Ok(addr)
}

/// SOCKS5 UDP ASSOCIATE; returns the control connection (the association lives as long as
/// it does) and where to send datagrams.
async fn associate(proxy: SocketAddr) -> Result<(TcpStream, SocketAddr), SessionError> {
    let deadline = tokio::time::Instant::now() + HANDSHAKE;
    let s = tokio::time::timeout_at(deadline, TcpStream::connect(proxy))
        .await
        .map_err(|_| SessionError::Timeout("connect"))?
        .map_err(SessionError::Connect)?;
    let any = TargetAddr::unspecified_v4();
    let (s, bound) = socks5_command(s, Command::UdpAssociate, &any, None, deadline, None).await?;
    let bnd = match bound {
        // An unspecified BND means "the address you reached me on".
        TargetAddr::Ip(a) if a.ip().is_unspecified() => SocketAddr::new(proxy.ip(), a.port()),
        TargetAddr::Ip(a) => a,
        TargetAddr::Domain(..) => return Err(SessionError::NamedRelay),
    };
    Ok((s, bnd))
}

#[derive(Default)]
struct Totals {
    echoes: AtomicU64,
    bytes: AtomicU64,
    sent: AtomicU64,
}

/// One association's load until `stop`, added to `totals`.
async fn blast(
    o: Arc<UdpLoad>,
    totals: Arc<Totals>,
    stop: Arc<AtomicBool>,
) -> Result<(), SessionError> {
    let local = |e| SessionError::Io("udp socket", e);
    let echo = start_echo(o.batch).await.map_err(local)?;
    let (_ctl, bnd) = associate(o.proxy).await?;
    let sock = UdpSocket::bind("127.0.0.1:0").await.map_err(local)?;
    sock.connect(bnd).await.map_err(local)?;
    let mut dg = Vec::new();
    UdpHeader::new(TargetAddr::Ip(echo)).encode(&mut dg);
    let head = dg.len();
    dg.resize(head + o.size, b'u');
    let (mut echoes, mut bytes) = (0u64, 0u64);
    let mut sent = send_copies(&sock, &dg, o.window, o.batch).await;
    while !stop.load(Ordering::Relaxed) {
        match tokio::time::timeout(Duration::from_millis(200), sock.readable()).await {
            Ok(Ok(())) => {
                let got = RX.with_borrow_mut(|rx| {
                    rx.recv(&sock, o.batch).map(|n| {
                        let b = rx
                            .got
                            .iter()
                            .map(|(len, _)| len.saturating_sub(head) as u64);
                        (n, b.sum::<u64>())
                    })
                });
                let Ok((n, b)) = got else {
                    continue;
                };
                echoes += n as u64;
                bytes += b;
                sent += send_copies(&sock, &dg, n, o.batch).await;
            }
            Ok(Err(e)) => return Err(SessionError::Io("udp receive", e)),
            // Nothing for 200 ms: the window was lost; refill it.
            Err(_) => sent += send_copies(&sock, &dg, o.window, o.batch).await,
        }
    }
    totals.echoes.fetch_add(echoes, Ordering::Relaxed);
    totals.bytes.fetch_add(bytes, Ordering::Relaxed);
    totals.sent.fetch_add(sent, Ordering::Relaxed);
    Ok(())
}

/// A UDP load: where, how many associations, how long, what size, how many in flight.
#[derive(Debug, Clone)]
pub struct UdpLoad {
    /// The SOCKS5 server.
    pub proxy: SocketAddr,
    /// Associations, each with its own echo server.
    pub associations: usize,
    /// How long to run.
    pub duration: Duration,
    /// Payload bytes per datagram.
    pub size: usize,
    /// Datagrams in flight per association.
    pub window: usize,
    /// Most datagrams per receive or send call (1 to 64).
    pub batch: usize,
}

impl UdpLoad {
    /// Runs the load; a failed association is counted in the report.
    pub async fn run(&self) -> Udp {
        let o = Arc::new(UdpLoad {
            batch: self.batch.clamp(1, MAX_BATCH),
            ..self.clone()
        });
        let totals = Arc::new(Totals::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = JoinSet::new();
        for _ in 0..o.associations {
            tasks.spawn(blast(o.clone(), totals.clone(), stop.clone()));
        }
        let started = Instant::now();
        tokio::time::sleep(o.duration).await;
        stop.store(true, Ordering::Relaxed);
        let seconds = started.elapsed().as_secs_f64();
        let mut errors = Errors::default();
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.add(e),
                Err(e) => errors.add(e.into()),
            }
        }
        let echoes = totals.echoes.load(Ordering::Relaxed);
        Udp {
            via: format!("socks5 {}", o.proxy),
            associations: o.associations,
            size: o.size,
            seconds,
            echoes,
            bytes: totals.bytes.load(Ordering::Relaxed),
            unanswered: totals.sent.load(Ordering::Relaxed).saturating_sub(echoes),
            errors,
        }
    }
}

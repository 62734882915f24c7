//! Datagrams received in batches with recvmmsg(2) through nix's safe wrapper, on buffers and
//! message headers held once per worker thread, so a busy association costs one receive call
//! per batch instead of one per datagram. Sends go out with UDP GSO (`UDP_SEGMENT`, Linux
//! 4.18+) where they can: consecutive datagrams of one size to one destination leave in one
//! sendmsg(2), and the kernel takes them through its output path once and cuts them apart at
//! the receiver. Anything else goes one call per datagram: nix's sendmmsg only reports how
//! many went by iterating results that read never-written address slots (undefined behaviour
//! in safe code), and a plain libc call would need `unsafe`.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::sys::socket::{
    recvmmsg, sendmsg, setsockopt, socket, sockopt, AddressFamily, ControlMessage, MsgFlags,
    MultiHeaders, SockFlag, SockType, SockaddrStorage,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams per system call.
pub(super) const SLOTS: usize = 32;

/// Most payload bytes one GSO send may carry: an IPv4 datagram's limit (65,535 less the IP
/// and UDP headers), which also keeps IPv6 under its own.
const GSO_MAX_BYTES: usize = 65_507;

/// Whether GSO sends are worth trying: the kernel knows `UDP_SEGMENT` (probed once) and no
/// send has shown that the path cannot segment (EIO: a device without checksum offload).
fn gso_on() -> bool {
    static PROBED: OnceLock<bool> = OnceLock::new();
    GSO_OK.load(Ordering::Relaxed)
        && *PROBED.get_or_init(|| {
            socket(
                AddressFamily::Inet,
                SockType::Datagram,
                SockFlag::SOCK_CLOEXEC,
                None,
            )
            .and_then(|fd| setsockopt(&fd, sockopt::UdpGsoSegment, &0))
            .is_ok()
        })
}
static GSO_OK: AtomicBool = AtomicBool::new(true);

/// A datagram waiting in a slot to be sent.
#[derive(Clone, Copy)]
struct Queued {
    slot: usize,
    start: usize,
    end: usize,
    /// The payload bytes it counts for in the statistics.
    counted: usize,
}

impl Queued {
    /// Its bytes in `bufs` (slots of `slot_len` bytes).
    fn bytes<'b>(&self, bufs: &'b [u8], slot_len: usize) -> &'b [u8] {
        let at = self.slot * slot_len;
        bufs.get(at + self.start..at + self.end.min(slot_len))
            .unwrap_or_default()
    }
}

/// What a flush did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sent {
    /// Datagrams the kernel took.
    pub dgrams: u64,
    /// Their counted payload bytes.
    pub bytes: u64,
    /// Datagrams that could not be sent.
    pub failed: u64,
}

/// One worker thread's batch buffers: `SLOTS` datagram slots of `slot_len` bytes each, what
/// the last receive put in them, and two send queues.
pub(super) struct Batch {
    slot_len: usize,
    bufs: Box<[u8]>,
    /// Receive headers per address family: the kernel shrinks each header's address length
    /// to what it wrote, so an IPv4 receive must not share headers with an IPv6 one.
    rx4: MultiHeaders<SockaddrStorage>,
    rx6: MultiHeaders<SockaddrStorage>,
    got: [(usize, Option<SocketAddr>); SLOTS],
    queues: [Vec<Queued>; 2],
    /// Each queue's destinations, in its order (kept here: 4 kB is too much to rebuild
    /// for every send).
    dests: [[Option<SockaddrStorage>; SLOTS]; 2],
}

impl Batch {
    /// Buffers for datagrams of up to `slot_len` bytes (pages are only touched when used).
    pub fn new(slot_len: usize) -> Self {
        Self {
            slot_len,
            bufs: vec![0u8; slot_len * SLOTS].into_boxed_slice(),
            rx4: MultiHeaders::preallocate(SLOTS, None),
            rx6: MultiHeaders::preallocate(SLOTS, None),
            got: [(0, None); SLOTS],
            queues: [Vec::with_capacity(SLOTS), Vec::with_capacity(SLOTS)],
            dests: [[None; SLOTS]; 2],
        }
    }

    /// Receives up to `SLOTS` datagrams from `sock` (of family `v4`), each at `offset` in its
    /// slot; returns how many. `WouldBlock` clears the socket's readiness.
    pub fn recv(&mut self, sock: &UdpSocket, v4: bool, offset: usize) -> io::Result<usize> {
        let Self {
            slot_len,
            bufs,
            rx4,
            rx6,
            got,
            ..
        } = self;
        let mut iovs: [[IoSliceMut<'_>; 1]; SLOTS] =
            std::array::from_fn(|_| [IoSliceMut::new(&mut [])]);
        for (iov, chunk) in iovs.iter_mut().zip(bufs.chunks_exact_mut(*slot_len)) {
            if let Some(room) = chunk.get_mut(offset..) {
                *iov = [IoSliceMut::new(room)];
            }
        }
        let headers = if v4 { rx4 } else { rx6 };
        let fd = sock.as_raw_fd();
        sock.try_io(Interest::READABLE, || {
            let res = recvmmsg(fd, headers, iovs.iter_mut(), MsgFlags::empty(), None)?;
            let mut n = 0;
            for (msg, slot) in res.zip(got.iter_mut()) {
                *slot = (msg.bytes, msg.address.and_then(to_std));
                n += 1;
            }
            Ok(n)
        })
    }

    /// Length and source of received datagram `i`.
    pub fn got(&self, i: usize) -> (usize, Option<SocketAddr>) {
        self.got.get(i).copied().unwrap_or((0, None))
    }

    /// Slot `i`, whole.
    pub fn slot(&self, i: usize) -> &[u8] {
        let at = i * self.slot_len;
        self.bufs.get(at..at + self.slot_len).unwrap_or_default()
    }

    /// Slot `i`, whole, writable.
    pub fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        let at = i * self.slot_len;
        self.bufs
            .get_mut(at..at + self.slot_len)
            .unwrap_or_default()
    }

    /// Queues `slot[i][range]` for `dest` on queue `q` (0 or 1), counting `counted` bytes;
    /// false when the queue is full (never, with one queue flush per receive).
    pub fn queue(
        &mut self,
        q: usize,
        i: usize,
        range: Range<usize>,
        dest: SocketAddr,
        counted: usize,
    ) -> bool {
        let (Some(queue), Some(dests)) = (self.queues.get_mut(q), self.dests.get_mut(q)) else {
            return false;
        };
        let Some(d) = dests.get_mut(queue.len()) else {
            return false;
        };
        *d = Some(SockaddrStorage::from(dest));
        queue.push(Queued {
            slot: i,
            start: range.start,
            end: range.end,
            counted,
        });
        true
    }

    /// Sends queue `q` on `sock` (all fail without one), in order, and empties it. A datagram
    /// the kernel refuses is skipped; once the socket would block, the rest fail, as
    /// datagram-by-datagram sending did.
    pub fn flush(&mut self, q: usize, sock: Option<&UdpSocket>) -> Sent {
        let Self {
            slot_len,
            bufs,
            queues,
            dests,
            ..
        } = self;
        let (Some(queue), Some(addrs)) = (queues.get_mut(q), dests.get(q)) else {
            return Sent::default();
        };
        let count = queue.len();
        let mut sent = Sent::default();
        if count == 0 {
            return sent;
        }
        let Some(sock) = sock else {
            sent.failed = count as u64;
            queue.clear();
            return sent;
        };
        let gso = gso_on();
        let mut pos = 0;
        'queue: while pos < count {
            let run = if gso { gso_run(queue, addrs, pos) } else { 1 };
            if run > 1 {
                match send_gso(sock, bufs, *slot_len, &queue[pos..pos + run], &addrs[pos]) {
                    Ok(()) => {
                        sent.dgrams += run as u64;
                        sent.bytes += queue[pos..pos + run]
                            .iter()
                            .map(|e| e.counted as u64)
                            .sum::<u64>();
                        pos += run;
                        continue;
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(err) => {
                        // The path cannot segment: never again. Other errors (a segment
                        // over the path MTU, say) concern this run only. Either way its
                        // datagrams get their own sends below.
                        if err.raw_os_error() == Some(Errno::EIO as i32) {
                            GSO_OK.store(false, Ordering::Relaxed);
                        }
                    }
                }
            }
            for e in &queue[pos..pos + run] {
                let dg = e.bytes(bufs, *slot_len);
                match addrs[pos]
                    .and_then(to_std)
                    .map(|to| sock.try_send_to(dg, to))
                {
                    Some(Ok(_)) => {
                        sent.dgrams += 1;
                        sent.bytes += e.counted as u64;
                    }
                    // Would block: no later datagram would go either.
                    Some(Err(err)) if err.kind() == io::ErrorKind::WouldBlock => break 'queue,
                    _ => sent.failed += 1,
                }
                pos += 1;
            }
        }
        sent.failed += count.saturating_sub(pos) as u64;
        queue.clear();
        sent
    }
}

/// How many queued datagrams from `from` on can leave in one GSO send: same destination,
/// every one but the last exactly as long as the first, the last no longer, within
/// `GSO_MAX_BYTES`.
fn gso_run(queue: &[Queued], addrs: &[Option<SockaddrStorage>], from: usize) -> usize {
    let Some(first) = queue.get(from) else {
        return 0;
    };
    let seg = first.end.saturating_sub(first.start);
    if seg == 0 {
        return 1;
    }
    let mut run = 1;
    let mut total = seg;
    for (e, addr) in queue.iter().zip(addrs).skip(from + 1) {
        let len = e.end.saturating_sub(e.start);
        if addr != &addrs[from] || len == 0 || len > seg || total + len > GSO_MAX_BYTES {
            break;
        }
        run += 1;
        total += len;
        if len < seg {
            break;
        }
    }
    run
}

/// One sendmsg(2) of `run`'s datagrams to `dest` with `UDP_SEGMENT` set to the first one's
/// length.
fn send_gso(
    sock: &UdpSocket,
    bufs: &[u8],
    slot_len: usize,
    run: &[Queued],
    dest: &Option<SockaddrStorage>,
) -> io::Result<()> {
    let (Some(first), Some(dest)) = (run.first(), dest) else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    let Ok(seg) = u16::try_from(first.end.saturating_sub(first.start)) else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    let mut iovs: [IoSlice<'_>; SLOTS] = std::array::from_fn(|_| IoSlice::new(&[]));
    for (iov, e) in iovs.iter_mut().zip(run) {
        *iov = IoSlice::new(e.bytes(bufs, slot_len));
    }
    let iovs = iovs.get(..run.len()).unwrap_or_default();
    let fd = sock.as_raw_fd();
    sock.try_io(Interest::WRITABLE, || {
        sendmsg(
            fd,
            iovs,
            &[ControlMessage::UdpGsoSegments(&seg)],
            MsgFlags::empty(),
            Some(dest),
        )
        .map(drop)
        .map_err(io::Error::from)
    })
}

fn to_std(a: SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    a.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn bound(ip: &str) -> UdpSocket {
        UdpSocket::bind(format!("{ip}:0")).await.unwrap()
    }

    /// Receives until `want` datagrams arrived in one call or the deadline passes.
    async fn recv_all(b: &mut Batch, sock: &UdpSocket, v4: bool, offset: usize, want: usize) {
        let work = async {
            loop {
                sock.readable().await.unwrap();
                match b.recv(sock, v4, offset) {
                    Ok(n) if n == want => return,
                    Ok(n) => panic!("got {n} of {want} datagrams in one call"),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("recv: {e}"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), work)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn one_receive_takes_every_waiting_datagram_with_its_source() {
        let rx = bound("127.0.0.1").await;
        let (a, c) = (bound("127.0.0.1").await, bound("127.0.0.1").await);
        let to = rx.local_addr().unwrap();
        for (i, s) in [&a, &c, &a, &c, &a].iter().enumerate() {
            s.send_to(&vec![i as u8; i + 1], to).await.unwrap();
        }
        let mut b = Batch::new(64);
        recv_all(&mut b, &rx, true, 8, 5).await;
        for (i, s) in [&a, &c, &a, &c, &a].iter().enumerate() {
            let (len, from) = b.got(i);
            assert_eq!((len, from), (i + 1, Some(s.local_addr().unwrap())));
            assert_eq!(&b.slot(i)[8..8 + len], vec![i as u8; i + 1].as_slice());
        }
    }

    #[tokio::test]
    async fn ipv4_and_ipv6_receives_keep_their_own_addresses() {
        let Ok(rx6) = UdpSocket::bind("[::1]:0").await else {
            return; // no IPv6 loopback here
        };
        let tx6 = bound("[::1]").await;
        let (rx4, tx4) = (bound("127.0.0.1").await, bound("127.0.0.1").await);
        let mut b = Batch::new(64);
        for _ in 0..2 {
            tx4.send_to(b"4", rx4.local_addr().unwrap()).await.unwrap();
            recv_all(&mut b, &rx4, true, 0, 1).await;
            assert_eq!(b.got(0), (1, Some(tx4.local_addr().unwrap())));
            tx6.send_to(b"66", rx6.local_addr().unwrap()).await.unwrap();
            recv_all(&mut b, &rx6, false, 0, 1).await;
            assert_eq!(b.got(0), (2, Some(tx6.local_addr().unwrap())));
        }
    }

    #[tokio::test]
    async fn flush_sends_the_queue_in_order_and_counts_payload_bytes() {
        let (tx, rx) = (bound("127.0.0.1").await, bound("127.0.0.1").await);
        let to = rx.local_addr().unwrap();
        let mut b = Batch::new(16);
        for i in 0..3 {
            b.slot_mut(i).copy_from_slice(&[b'a' + i as u8; 16]);
            assert!(b.queue(1, i, 2..4 + i, to, 1 + i));
        }
        tx.writable().await.unwrap();
        let sent = b.flush(1, Some(&tx));
        assert_eq!(
            sent,
            Sent {
                dgrams: 3,
                bytes: 6,
                failed: 0
            }
        );
        let mut buf = [0u8; 32];
        for i in 0..3 {
            let (n, from) = rx.recv_from(&mut buf).await.unwrap();
            assert_eq!(from, tx.local_addr().unwrap());
            assert_eq!(&buf[..n], vec![b'a' + i as u8; 2 + i].as_slice());
        }
        assert_eq!(b.flush(1, Some(&tx)), Sent::default());
    }

    #[tokio::test]
    async fn equal_datagrams_to_one_peer_still_arrive_one_by_one_in_order() {
        let (tx, rx) = (bound("127.0.0.1").await, bound("127.0.0.1").await);
        let (to, other) = (rx.local_addr().unwrap(), bound("127.0.0.1").await);
        let lens = [40, 40, 40, 40, 7, 40, 40, 3, 40];
        let mut b = Batch::new(64);
        for (i, len) in lens.iter().enumerate() {
            b.slot_mut(i).fill(b'a' + i as u8);
            let dest = if i == 6 {
                other.local_addr().unwrap()
            } else {
                to
            };
            assert!(b.queue(0, i, 4..4 + len, dest, *len));
        }
        tx.writable().await.unwrap();
        let sent = b.flush(0, Some(&tx));
        assert_eq!(sent.dgrams, lens.len() as u64);
        assert_eq!(sent.bytes, lens.iter().sum::<usize>() as u64);
        let mut buf = [0u8; 128];
        for (i, len) in lens.iter().enumerate() {
            let peer = if i == 6 { &other } else { &rx };
            let (n, _) = peer.recv_from(&mut buf).await.unwrap();
            assert_eq!(
                &buf[..n],
                vec![b'a' + i as u8; *len].as_slice(),
                "datagram {i}"
            );
        }
    }

    #[test]
    fn a_gso_run_is_one_size_to_one_peer_ending_at_a_shorter_datagram() {
        let (a, c): (SocketAddr, SocketAddr) = (
            "127.0.0.1:9".parse().unwrap(),
            "127.0.0.2:9".parse().unwrap(),
        );
        let mut b = Batch::new(2048);
        for (i, (len, dest)) in [(100, a), (100, a), (60, a), (100, a), (100, c), (100, c)]
            .into_iter()
            .enumerate()
        {
            assert!(b.queue(0, i, 0..len, dest, len));
        }
        let runs: Vec<usize> = [0, 2, 3, 4, 5]
            .iter()
            .map(|&from| gso_run(&b.queues[0], &b.dests[0], from))
            .collect();
        assert_eq!(runs, [3, 1, 1, 2, 1]);
        // A run stops before it would pass the GSO size limit.
        let mut big = Batch::new(30_000);
        for i in 0..4 {
            assert!(big.queue(0, i, 0..25_000, a, 25_000));
        }
        assert_eq!(gso_run(&big.queues[0], &big.dests[0], 0), 2);
    }

    #[test]
    fn a_full_queue_refuses_more() {
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut b = Batch::new(16);
        for i in 0..SLOTS {
            assert!(b.queue(1, i, 0..1, to, 1));
        }
        assert!(!b.queue(1, 0, 0..1, to, 1));
        assert_eq!(b.flush(1, None).failed, SLOTS as u64);
    }

    #[tokio::test]
    async fn flush_without_a_socket_fails_the_whole_queue() {
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut b = Batch::new(16);
        assert!(b.queue(0, 0, 0..4, to, 4));
        assert!(b.queue(0, 1, 0..4, to, 4));
        let sent = b.flush(0, None);
        assert_eq!(sent.failed, 2);
        assert_eq!(sent.dgrams, 0);
        assert_eq!(b.flush(0, None), Sent::default());
    }

    #[tokio::test]
    async fn a_refused_datagram_is_skipped_and_the_rest_still_go() {
        // A v4 socket cannot send to an IPv6 address: that one fails on its own.
        let (tx, rx) = (bound("127.0.0.1").await, bound("127.0.0.1").await);
        let to = rx.local_addr().unwrap();
        let bad: SocketAddr = "[::1]:9".parse().unwrap();
        let mut b = Batch::new(16);
        b.slot_mut(0)[0] = b'x';
        b.slot_mut(1)[0] = b'y';
        for (i, dest) in [(0, to), (1, bad), (1, to)] {
            assert!(b.queue(0, i, 0..1, dest, 1));
        }
        tx.writable().await.unwrap();
        let sent = b.flush(0, Some(&tx));
        assert_eq!(
            sent,
            Sent {
                dgrams: 2,
                bytes: 2,
                failed: 1
            }
        );
        let mut buf = [0u8; 4];
        for want in [b'x', b'y'] {
            let (n, _) = rx.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &[want]);
        }
    }
}

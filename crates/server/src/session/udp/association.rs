//! The association's relay loop: one task watches the TCP control connection, the
//! client-side socket and the (lazily created) outgoing sockets, and moves datagrams both
//! ways until the control connection closes, `timeout.io.udp` passes, or the server stops.
//!
//! Memory stays flat under a flood: datagrams are read in batches into fixed buffers per
//! worker thread (nothing is held across an await except the rest of a batch waiting for a
//! name to resolve), caches are bounded, and everything dropped is only counted.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::time::Duration;

use hasocks_conf::sockd::{Command, SocksVersion, Verdict};
use hasocks_socks_wire::udp::UdpHeader;
use hasocks_socks_wire::TargetAddr;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use super::batch::Batch;
use super::cache::Bounded;
use super::source::Expected;
use crate::generation::secs;
use crate::logger::Level;
use crate::rules::{socks_rule_matches, CompiledRule, RequestFacts};
use crate::session::{resolve, Session};

/// Room before a reply's payload for the SOCKS UDP header (IPv6: 22 bytes).
const HEAD: usize = 24;
/// The largest datagram plus that room.
const BUF_LEN: usize = HEAD + 65536;
/// Datagrams handled per wake-up before the other sockets get their turn (a multiple of
/// `batch::SLOTS`).
const BATCH: usize = 64;
/// Entries per cache (names, verdicts per destination, verdicts per replying peer).
const CACHE_CAP: usize = 256;
/// Longest wait for a name in a datagram (the association stalls meanwhile).
const RESOLVE_LIMIT: Duration = Duration::from_secs(10);

thread_local! {
    // One set of batch buffers per worker thread: a batch is read, handled and sent without
    // an await in between, so no association ever needs buffers of its own.
    static BUF: RefCell<Batch> = RefCell::new(Batch::new(BUF_LEN));
}

/// Why an association ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The client closed its TCP control connection.
    ControlClosed,
    /// The control connection failed.
    ControlError,
    /// Nothing moved for `timeout.io.udp`.
    IdleTimeout,
    /// The server is stopping.
    Cancelled,
    /// The client-side UDP socket failed.
    SocketError,
    /// The upstream of a chained association closed its control connection.
    UpstreamClosed,
}

/// What an association moved and dropped.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stats {
    /// Datagrams relayed client -> remote.
    pub up_dgrams: u64,
    /// Payload bytes relayed client -> remote.
    pub up_bytes: u64,
    /// Datagrams relayed remote -> client.
    pub down_dgrams: u64,
    /// Payload bytes relayed remote -> client.
    pub down_bytes: u64,
    /// From a source other than the client's.
    pub wrong_source: u64,
    /// Truncated or malformed SOCKS UDP header.
    pub malformed: u64,
    /// FRAG != 0 (no reassembly, as in Dante).
    pub fragmented: u64,
    /// Blocked by the socks rules (client -> remote).
    pub blocked: u64,
    /// Target name that does not resolve.
    pub unresolved: u64,
    /// No outgoing socket or send failure (either way).
    pub undeliverable: u64,
    /// Replies blocked by the `udpreply` rules.
    pub reply_blocked: u64,
}

impl Stats {
    /// The figures the server's counters add up.
    pub(crate) fn totals(&self) -> crate::stats::UdpTotals {
        crate::stats::UdpTotals {
            up_dgrams: self.up_dgrams,
            up_bytes: self.up_bytes,
            down_dgrams: self.down_dgrams,
            down_bytes: self.down_bytes,
            drops: [
                self.wrong_source,
                self.malformed,
                self.fragmented,
                self.blocked,
                self.unresolved,
                self.undeliverable,
                self.reply_blocked,
            ],
        }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} datagrams ({} bytes) up, {} datagrams ({} bytes) down; dropped:",
            self.up_dgrams, self.up_bytes, self.down_dgrams, self.down_bytes,
        )?;
        let words = [
            "wrong source",
            "malformed",
            "fragmented",
            "blocked",
            "unresolvable",
            "undeliverable",
            "replies blocked",
        ];
        let drops = self.totals().drops;
        for (i, (n, w)) in drops.iter().zip(words).enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{n} {w}")?;
        }
        Ok(())
    }
}

/// What a datagram waits for before it can be sent.
pub(crate) enum Defer {
    /// Its target name must be resolved.
    Resolve(String, u16),
    /// The outgoing socket of this address's family must be opened.
    Open(IpAddr),
}

/// An outgoing socket slot: not yet opened, open (with whether it is an IPv4 socket), or
/// known not to work (logged once).
enum Out {
    Unopened,
    Open(UdpSocket, bool),
    Failed,
}

/// What becomes of a datagram from the client.
enum Step {
    /// Dropped (and counted) or nothing more to do.
    Done,
    /// It must wait for this first.
    Defer(Defer),
    /// Its payload (from this offset) goes to this address.
    Send(usize, SocketAddr),
    /// The whole datagram, header and all, goes to a chained upstream's relay; the number
    /// is where its payload starts (what the counters count).
    Forward(usize, SocketAddr),
}

/// Why an outgoing UDP socket could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BindOutError {
    /// No source address fits.
    #[error(transparent)]
    Source(#[from] crate::generation::SourceError),
    /// The socket calls failed.
    #[error("bind {src}: {source}")]
    Socket {
        /// The source address.
        src: IpAddr,
        /// The OS error.
        source: io::Error,
    },
}

/// One association's state.
pub(crate) struct Association<'a> {
    sess: &'a Session,
    rule: &'a CompiledRule,
    prefix: String,
    client_sock: UdpSocket,
    /// Whether the client-side socket is an IPv4 one.
    client_v4: bool,
    expected: Expected,
    /// The client's UDP address as the socket reports it (for sending back).
    client: Option<SocketAddr>,
    out4: Out,
    out6: Out,
    names: Bounded<String, Option<IpAddr>>,
    verdicts: Bounded<TargetAddr, bool>,
    reply_verdicts: Bounded<SocketAddr, bool>,
    last_verdict: Option<(SocketAddr, bool)>,
    last_reply_verdict: Option<(SocketAddr, bool)>,
    stats: Stats,
    /// Datagrams (back to back) waiting for the first one's target name or socket.
    stash: Vec<u8>,
    /// Length and source of each stashed datagram.
    stashed: Vec<(usize, SocketAddr)>,
    /// Something was relayed since the flag was last cleared.
    active: bool,
    /// Bytes already paid for in the rules' `bandwidth:` buckets.
    paid: u64,
    /// A chained association's upstream relay (its socket is in `out4` or `out6`).
    chain_relay: Option<SocketAddr>,
    /// A chained association's upstream control connection, until `run` takes it.
    chain_control: Option<TcpStream>,
    /// After `gssapi` with per-message protection: every datagram is encapsulated.
    protect: Option<std::sync::Arc<crate::session::encap::Protect>>,
}

impl<'a> Association<'a> {
    /// An association around its client-side socket.
    pub fn new(
        sess: &'a Session,
        rule: &'a CompiledRule,
        client_sock: UdpSocket,
        expected: Expected,
        prefix: String,
    ) -> Self {
        let client_v4 = client_sock
            .local_addr()
            .map_or(sess.internal.is_ipv4(), |a| a.is_ipv4());
        Self {
            sess,
            rule,
            prefix,
            client_sock,
            client_v4,
            expected,
            client: None,
            out4: Out::Unopened,
            out6: Out::Unopened,
            names: Bounded::new(CACHE_CAP),
            verdicts: Bounded::new(CACHE_CAP),
            reply_verdicts: Bounded::new(CACHE_CAP),
            last_verdict: None,
            last_reply_verdict: None,
            stats: Stats::default(),
            stash: Vec::new(),
            stashed: Vec::new(),
            active: false,
            paid: 0,
            chain_relay: None,
            chain_control: None,
            protect: crate::session::gssapi::protected(),
        }
    }

    /// Makes this a chained association: datagrams go to and come from `up`'s relay.
    pub fn chained(mut self, up: super::chained::Upstream) -> Self {
        let v4 = up.relay.is_ipv4();
        *self.slot(v4) = Out::Open(up.socket, v4);
        self.chain_relay = Some(up.relay);
        self.chain_control = Some(up.control);
        self
    }

    /// Relays until the association ends; every socket is dropped on return.
    pub async fn run(mut self, mut control: TcpStream, idle: Option<Duration>) -> (Stats, End) {
        let mut ctl = [0u8; 256];
        let mut up_ctl = [0u8; 256];
        let mut upstream = self.chain_control.take();
        let hard_stop = self.sess.hard_stop.clone();
        let idle_span = idle.unwrap_or(Duration::from_secs(86_400));
        let mut last = Instant::now();
        // One timer for the whole association, re-armed only when it fires early.
        let sleep = tokio::time::sleep_until(last + idle_span);
        tokio::pin!(sleep);
        // Registered once: a fresh `cancelled()` per loop turn would lock the token's waiter
        // list on every wake-up of a busy association.
        let stopped = hard_stop.cancelled();
        tokio::pin!(stopped);
        let end = loop {
            tokio::select! {
                r = control.read(&mut ctl) => match r {
                    // Bytes on the control connection mean nothing after the reply; ignored.
                    Ok(0) => break End::ControlClosed,
                    Ok(_) => {}
                    Err(_) => break End::ControlError,
                },
                r = self.client_sock.readable() => {
                    if r.is_err() {
                        break End::SocketError;
                    }
                    match self.drain_client() {
                        Ok(Some(defer)) => self.settle(defer).await,
                        Ok(None) => {}
                        Err(_) => break End::SocketError,
                    }
                }
                r = read_upstream(&mut upstream, &mut up_ctl) => match r {
                    Ok(0) | Err(_) => break End::UpstreamClosed,
                    Ok(_) => {}
                },
                r = readable(&self.out4) => if r.is_ok() { self.drain_out(true) },
                r = readable(&self.out6) => if r.is_ok() { self.drain_out(false) },
                () = &mut sleep, if idle.is_some() => {
                    let due = last + idle_span;
                    if due <= Instant::now() {
                        break End::IdleTimeout;
                    }
                    sleep.as_mut().reset(due);
                }
                () = &mut stopped => break End::Cancelled,
            }
            if std::mem::take(&mut self.active) {
                last = Instant::now();
                self.pay_bandwidth().await;
            }
        };
        (self.stats, end)
    }

    /// Pays for what moved since the last call in the rules' `bandwidth:` buckets; the wait
    /// stops reading, so datagrams beyond the rate wait in (or overflow) the kernel's
    /// buffers, as on a slower link.
    async fn pay_bandwidth(&mut self) {
        let Some(states) = self.sess.buckets.get().filter(|b| !b.is_empty()) else {
            return;
        };
        let moved = self.stats.up_bytes + self.stats.down_bytes;
        let n = moved.saturating_sub(self.paid);
        self.paid = moved;
        if n > 0 {
            crate::session::throttle::pay(states, usize::try_from(n).unwrap_or(usize::MAX)).await;
        }
    }

    /// Reads client datagrams in batches and sends what passes. Stops early when a datagram
    /// needs an await first (it and the rest of its batch wait in `stash`).
    fn drain_client(&mut self) -> io::Result<Option<Defer>> {
        BUF.with(|cell| {
            let Ok(mut b) = cell.try_borrow_mut() else {
                return Ok(None);
            };
            let mut handled = 0;
            while handled < BATCH {
                let n = match b.recv(&self.client_sock, self.client_v4, 0) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // ICMP errors for earlier sends surface here on some systems: not fatal.
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                        ) =>
                    {
                        handled += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                handled += n;
                // Encapsulated datagrams are unwrapped in their slots first.
                let lens = self.protect.as_ref().map(|p| open_batch(p, &mut b, n));
                for i in 0..n {
                    let (len, src) = b.got(i);
                    let len = lens
                        .as_ref()
                        .map_or(len, |l| l.get(i).copied().unwrap_or(0));
                    let Some(src) = src else {
                        continue;
                    };
                    let dg = b.slot(i).get(..len).unwrap_or_default();
                    match self.classify(dg, src) {
                        Step::Done => {}
                        Step::Send(off, dest) => {
                            let q = usize::from(!dest.is_ipv4());
                            if !b.queue(q, i, off..len, dest, len.saturating_sub(off)) {
                                self.stats.undeliverable += 1;
                            }
                        }
                        Step::Forward(off, relay) => {
                            let q = usize::from(!relay.is_ipv4());
                            if !b.queue(q, i, 0..len, relay, len.saturating_sub(off)) {
                                self.stats.undeliverable += 1;
                            }
                        }
                        Step::Defer(defer) => {
                            // What came before goes first; the rest waits for the await.
                            self.flush_up(&mut b);
                            self.stash.clear();
                            self.stashed.clear();
                            for j in i..n {
                                let (len, src) = b.got(j);
                                let len = lens
                                    .as_ref()
                                    .map_or(len, |l| l.get(j).copied().unwrap_or(0));
                                if let Some(src) = src {
                                    let dg = b.slot(j).get(..len).unwrap_or_default();
                                    self.stash.extend_from_slice(dg);
                                    self.stashed.push((dg.len(), src));
                                }
                            }
                            return Ok(Some(defer));
                        }
                    }
                }
                self.flush_up(&mut b);
            }
            Ok(None)
        })
    }

    /// Sends what a client batch queued, per outgoing socket, and counts it.
    fn flush_up(&mut self, b: &mut Batch) {
        let up4 = b.flush(0, open(&self.out4));
        let up6 = b.flush(1, open(&self.out6));
        for sent in [up4, up6] {
            self.stats.up_dgrams += sent.dgrams;
            self.stats.up_bytes += sent.bytes;
            self.stats.undeliverable += sent.failed;
            self.active |= sent.dgrams > 0;
        }
    }

    /// Handles one datagram from the client-side socket, sending it on its own. Returns what
    /// must be awaited before it can go (the caller keeps the datagram and calls again
    /// afterwards).
    fn on_client_datagram(&mut self, dg: &[u8], src: SocketAddr) -> Option<Defer> {
        match self.classify(dg, src) {
            Step::Done => None,
            Step::Defer(d) => Some(d),
            Step::Send(off, dest) => {
                self.send_out(dg.get(off..).unwrap_or_default(), dest);
                None
            }
            Step::Forward(_, relay) => {
                self.send_out(dg, relay);
                None
            }
        }
    }

    /// Checks one datagram from the client: drops (and counts) what must not pass, and says
    /// where the rest goes or what it waits for.
    fn classify(&mut self, dg: &[u8], src: SocketAddr) -> Step {
        if !self.expected.accepts(src) {
            self.stats.wrong_source += 1;
            return Step::Done;
        }
        let Ok((hdr, len)) = UdpHeader::decode(dg) else {
            self.stats.malformed += 1;
            return Step::Done;
        };
        if hdr.frag != 0 {
            self.stats.fragmented += 1;
            return Step::Done;
        }
        self.expected.learn(src);
        self.client = Some(src);
        let dest = match &hdr.target {
            TargetAddr::Ip(a) => *a,
            TargetAddr::Domain(name, port) => match self.names.get(name.as_str()) {
                Some(Some(ip)) => SocketAddr::new(ip, *port),
                Some(None) => {
                    self.stats.unresolved += 1;
                    return Step::Done;
                }
                None => return Step::Defer(Defer::Resolve(name.clone(), *port)),
            },
        };
        if !self.allowed(&hdr.target, dest.ip(), src) {
            self.stats.blocked += 1;
            return Step::Done;
        }
        if let Some(relay) = self.chain_relay {
            return Step::Forward(len.min(dg.len()), relay);
        }
        if matches!(self.slot(dest.is_ipv4()), Out::Unopened) {
            return Step::Defer(Defer::Open(dest.ip()));
        }
        Step::Send(len.min(dg.len()), dest)
    }

    /// Does what the first stashed datagram waits for, then delivers the stash in order.
    async fn settle(&mut self, defer: Defer) {
        let stash = std::mem::take(&mut self.stash);
        let stashed = std::mem::take(&mut self.stashed);
        let mut at = 0;
        let mut first = Some(defer);
        for &(len, src) in &stashed {
            let dg = stash.get(at..at + len).unwrap_or_default();
            at += len;
            let mut next = match first.take() {
                Some(d) => Some(d),
                None => self.on_client_datagram(dg, src),
            };
            // At most one name and one socket stand between a datagram and its sending.
            for _ in 0..3 {
                let Some(d) = next else {
                    break;
                };
                match d {
                    Defer::Resolve(name, port) => self.resolve_name(name, port, src).await,
                    Defer::Open(dest) => self.open_out(dest).await,
                }
                next = self.on_client_datagram(dg, src);
            }
        }
        // Kept for the next time unless a large batch made it big.
        if stash.capacity() <= BUF_LEN {
            self.stash = stash;
            self.stash.clear();
        }
        self.stashed = stashed;
        self.stashed.clear();
    }

    /// Resolves a datagram's target name; the answer is cached, also when there is none.
    async fn resolve_name(&mut self, name: String, port: u16, src: SocketAddr) {
        let limit = secs(self.sess.rt.timeouts.connect)
            .unwrap_or(RESOLVE_LIMIT)
            .min(RESOLVE_LIMIT);
        let prefer_v4 = self.sess.internal.is_ipv4();
        let ip = match resolve(&name, port, limit).await {
            // Prefer the family of the address the client reached us on ("localhost" may
            // list ::1 first while the client speaks IPv4).
            Ok(ips) => ips
                .iter()
                .copied()
                .find(|ip| ip.is_ipv4() == prefer_v4)
                .or(ips.first().copied()),
            Err(e) => {
                self.sess.log_if(self.rule.log.error, Level::Info, || {
                    format!("{} -: udp from {src}: {e}", self.prefix)
                });
                None
            }
        };
        self.names.insert(name, ip);
    }

    /// Whether the socks rules let the client (`src`) send to `target` (verdict cached; the
    /// source is fixed once learnt).
    fn allowed(&mut self, target: &TargetAddr, ip: IpAddr, src: SocketAddr) -> bool {
        if let (TargetAddr::Ip(a), Some((last, v))) = (target, self.last_verdict) {
            if *a == last {
                return v;
            }
        }
        if let Some(v) = self.verdicts.get(target) {
            self.remember(target, v);
            return v;
        }
        let (target_ip, target_name) = match target {
            TargetAddr::Ip(a) => (Some(a.ip()), None),
            TargetAddr::Domain(n, _) => (None, Some(n.as_str())),
        };
        let facts = RequestFacts {
            client: src,
            command: Command::UdpAssociate,
            version: SocksVersion::V5,
            target_ip,
            target_name,
            target_port: target.port(),
        };
        let resolved = [ip];
        let rule = self.first_rule(&facts, &resolved);
        let pass = rule.verdict == Verdict::Pass;
        if !pass {
            self.sess
                .log_if(rule.log.connect || rule.log.error, Level::Info, || {
                    format!(
                        "{} {}: udp from {src} to {target}: blocked",
                        rule.label(),
                        "socks5/udpassociate"
                    )
                });
        }
        self.verdicts.insert(target.clone(), pass);
        self.remember(target, pass);
        pass
    }

    /// Keeps the last IP destination's verdict at hand: most associations talk to one peer,
    /// and this skips hashing for them.
    fn remember(&mut self, target: &TargetAddr, pass: bool) {
        if let TargetAddr::Ip(a) = target {
            self.last_verdict = Some((*a, pass));
        }
    }

    /// Whether the `udpreply` rules let `from` answer the client (`from:` = the replying
    /// peer, `to:` = the client, as Dante evaluates replies).
    fn reply_allowed(&mut self, from: SocketAddr, client: SocketAddr) -> bool {
        if let Some((last, v)) = self.last_reply_verdict {
            if last == from {
                return v;
            }
        }
        if let Some(v) = self.reply_verdicts.get(&from) {
            self.last_reply_verdict = Some((from, v));
            return v;
        }
        let facts = RequestFacts {
            client: from,
            command: Command::UdpReply,
            version: SocksVersion::V5,
            target_ip: Some(client.ip()),
            target_name: None,
            target_port: client.port(),
        };
        let rule = self.first_rule(&facts, &[]);
        let pass = rule.verdict == Verdict::Pass;
        if !pass {
            self.sess
                .log_if(rule.log.connect || rule.log.error, Level::Info, || {
                    format!(
                        "{} socks5/udpreply: udp from {from} to {client}: blocked",
                        rule.label()
                    )
                });
        }
        self.reply_verdicts.insert(from, pass);
        self.last_reply_verdict = Some((from, pass));
        pass
    }

    fn first_rule(&self, facts: &RequestFacts<'_>, resolved: &[IpAddr]) -> &'a CompiledRule {
        let sess: &'a Session = self.sess;
        let rt: &'a crate::generation::Generation = &sess.rt;
        rt.socks_rules
            .iter()
            .find(|r| {
                socks_rule_matches(r, facts, Some(resolved)).unwrap_or(false)
                    && sess.auth.get().map_or(!r.wants_name(), |a| {
                        crate::session::identity::known_accepts(r, a)
                    })
            })
            .unwrap_or(&rt.default_rule)
    }

    /// Sends a payload to the remote from the outgoing socket of its family.
    fn send_out(&mut self, payload: &[u8], dest: SocketAddr) {
        let sent = match self.slot(dest.is_ipv4()) {
            Out::Open(sock, _) => sock.try_send_to(payload, dest).is_ok(),
            _ => false,
        };
        if sent {
            self.stats.up_dgrams += 1;
            self.stats.up_bytes += payload.len() as u64;
            self.active = true;
        } else {
            self.stats.undeliverable += 1;
        }
    }

    /// Opens the outgoing socket for `dest`'s family, bound per `external.rotation` (as
    /// Dante binds it only after the first client datagram), and waits until the reactor
    /// reports it writable (tokio's `try_send_to` refuses before that). A failure is logged
    /// once and remembered.
    async fn open_out(&mut self, dest: IpAddr) {
        let opened = match self.bind_out(dest) {
            Ok((s, v4)) => {
                let _ = tokio::time::timeout(Duration::from_secs(1), s.writable()).await;
                Out::Open(s, v4)
            }
            Err(e) => {
                self.sess.log_if(
                    self.rule.log.error || self.rule.log.connect,
                    Level::Warn,
                    || {
                        format!(
                            "{} -: client {}: no outgoing UDP socket for {dest}: {e}",
                            self.prefix,
                            self.sess.peer()
                        )
                    },
                );
                Out::Failed
            }
        };
        *self.slot(dest.is_ipv4()) = opened;
    }

    fn slot(&mut self, v4: bool) -> &mut Out {
        if v4 {
            &mut self.out4
        } else {
            &mut self.out6
        }
    }

    /// A nonblocking socket for `dest`, and whether it is an IPv4 one.
    fn bind_out(&self, dest: IpAddr) -> Result<(UdpSocket, bool), BindOutError> {
        let src = self.sess.rt.udp_source(dest, self.sess.internal)?;
        let socket = |source| BindOutError::Socket { src, source };
        let s = StdUdpSocket::bind(SocketAddr::new(src, 0)).map_err(socket)?;
        s.set_nonblocking(true).map_err(socket)?;
        let s = UdpSocket::from_std(s).map_err(socket)?;
        Ok((s, src.is_ipv4()))
    }

    /// Reads replies in batches on one outgoing socket and sends them to the client wrapped
    /// in the SOCKS UDP header naming the replying peer.
    fn drain_out(&mut self, v4: bool) {
        BUF.with(|cell| {
            let Ok(mut b) = cell.try_borrow_mut() else {
                return;
            };
            let mut handled = 0;
            while handled < BATCH {
                let Out::Open(sock, fam4) = (if v4 { &self.out4 } else { &self.out6 }) else {
                    return;
                };
                let n = match b.recv(sock, *fam4, HEAD) {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(_) => {
                        self.stats.undeliverable += 1;
                        return;
                    }
                };
                handled += n;
                for i in 0..n {
                    if let (len, Some(from)) = b.got(i) {
                        self.on_reply(&mut b, i, len, from);
                    }
                }
                let sent = b.flush(0, Some(&self.client_sock));
                self.stats.down_dgrams += sent.dgrams;
                self.stats.down_bytes += sent.bytes;
                self.stats.undeliverable += sent.failed;
                self.active |= sent.dgrams > 0;
            }
        });
    }

    /// Sends one reply datagram (header and `n` payload bytes) to the client encapsulated.
    fn send_wrapped(&mut self, dg: &[u8], client: SocketAddr, n: usize) {
        let mut out = Vec::with_capacity(dg.len() + 128);
        let sent = self.protect.as_ref().is_some_and(|p| {
            p.wrap(dg, &mut out).is_ok() && self.client_sock.try_send_to(&out, client).is_ok()
        });
        if sent {
            self.stats.down_dgrams += 1;
            self.stats.down_bytes += n as u64;
            self.active = true;
        } else {
            self.stats.undeliverable += 1;
        }
    }

    /// Handles one reply held at `HEAD..HEAD + n` in slot `i`: queues it for the client.
    fn on_reply(&mut self, b: &mut Batch, i: usize, n: usize, from: SocketAddr) {
        let Some(client) = self.client else {
            self.stats.undeliverable += 1;
            return;
        };
        if self.chain_relay.is_some() {
            return self.on_chained_reply(b, i, n, client);
        }
        if !self.reply_allowed(from, client) {
            self.stats.reply_blocked += 1;
            return;
        }
        let from = SocketAddr::new(from.ip().to_canonical(), from.port());
        let slot = b.slot_mut(i);
        match put_header(slot, from).filter(|_| HEAD + n <= slot.len()) {
            Some(start) if self.protect.is_some() => {
                let dg = slot.get(start..HEAD + n).unwrap_or_default();
                self.send_wrapped(dg, client, n);
            }
            Some(start) if b.queue(0, i, start..HEAD + n, client, n) => {}
            _ => self.stats.undeliverable += 1,
        }
    }
}

impl Association<'_> {
    /// A chained upstream's datagram held at `HEAD..HEAD + n` in slot `i`: its header names
    /// the replying peer (judged by the `udpreply` rules); it goes to the client as it is.
    fn on_chained_reply(&mut self, b: &mut Batch, i: usize, n: usize, client: SocketAddr) {
        let dg = b.slot(i).get(HEAD..HEAD + n).unwrap_or_default();
        let Ok((hdr, len)) = UdpHeader::decode(dg) else {
            self.stats.malformed += 1;
            return;
        };
        let TargetAddr::Ip(peer) = hdr.target else {
            self.stats.malformed += 1;
            return;
        };
        if !self.reply_allowed(peer, client) {
            self.stats.reply_blocked += 1;
            return;
        }
        // Under GSS-API protection the client gets it wrapped, as any reply.
        if self.protect.is_some() {
            let dg = b.slot(i).get(HEAD..HEAD + n).unwrap_or_default();
            return self.send_wrapped(dg, client, n.saturating_sub(len));
        }
        if !b.queue(0, i, HEAD..HEAD + n, client, n.saturating_sub(len)) {
            self.stats.undeliverable += 1;
        }
    }
}

/// Reads a chained association's upstream control connection (never ready without one).
async fn read_upstream(ctl: &mut Option<TcpStream>, buf: &mut [u8]) -> io::Result<usize> {
    match ctl {
        Some(s) => s.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Unwraps the `n` encapsulated datagrams of a batch in their slots; returns each one's
/// plain length (0: not a valid message, dropped and counted by `classify` as too short).
fn open_batch(p: &crate::session::encap::Protect, b: &mut Batch, n: usize) -> Vec<usize> {
    let mut plain = Vec::new();
    (0..n)
        .map(|i| {
            let (len, _) = b.got(i);
            let slot = b.slot_mut(i);
            plain.clear();
            let opened = slot
                .get_mut(..len)
                .is_some_and(|dg| p.unwrap_datagram(dg, &mut plain));
            // The plain datagram is shorter than its message: it fits where that was.
            match slot.get_mut(..plain.len()) {
                Some(s) if opened => {
                    s.copy_from_slice(&plain);
                    plain.len()
                }
                _ => 0,
            }
        })
        .collect()
}

/// Writes `RSV RSV FRAG ATYP ADDR PORT` for `from` just before `buf[HEAD]`; returns where
/// the datagram starts.
fn put_header(buf: &mut [u8], from: SocketAddr) -> Option<usize> {
    let mut h = [0u8; 22];
    let len = match from {
        SocketAddr::V4(a) => {
            h[3] = 1;
            h[4..8].copy_from_slice(&a.ip().octets());
            h[8..10].copy_from_slice(&a.port().to_be_bytes());
            10
        }
        SocketAddr::V6(a) => {
            h[3] = 4;
            h[4..20].copy_from_slice(&a.ip().octets());
            h[20..22].copy_from_slice(&a.port().to_be_bytes());
            22
        }
    };
    let start = HEAD.checked_sub(len)?;
    buf.get_mut(start..HEAD)?.copy_from_slice(h.get(..len)?);
    Some(start)
}

/// The socket of an open slot.
fn open(out: &Out) -> Option<&UdpSocket> {
    match out {
        Out::Open(s, _) => Some(s),
        _ => None,
    }
}

async fn readable(out: &Out) -> io::Result<()> {
    match out {
        Out::Open(s, _) => s.readable().await,
        _ => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_header_matches_the_codec() {
        for from in ["192.0.2.1:53", "[2001:db8::1]:5353"] {
            let from: SocketAddr = from.parse().unwrap();
            let mut buf = vec![0u8; HEAD + 3];
            buf[HEAD..].copy_from_slice(b"abc");
            let start = put_header(&mut buf, from).unwrap();
            let (h, len) = UdpHeader::decode(&buf[start..]).unwrap();
            assert_eq!(h, UdpHeader::new(TargetAddr::Ip(from)));
            assert_eq!(&buf[start + len..], b"abc");
        }
    }

    #[test]
    fn stats_line_names_every_counter() {
        let s = Stats {
            up_dgrams: 1,
            wrong_source: 2,
            fragmented: 3,
            ..Stats::default()
        };
        let line = s.to_string();
        assert!(line.contains("1 datagrams (0 bytes) up"));
        assert!(line.contains("2 wrong source"));
        assert!(line.contains("3 fragmented"));
    }
}

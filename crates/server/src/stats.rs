//! The server's counters: long-lived (they survive reloads, which swap only the rules),
//! atomic (no lock per session or per copy), and read as a plain snapshot for metrics and
//! the status page.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// SOCKS versions as counted (4a apart from 4).
pub const VERSIONS: [&str; 3] = ["socks4", "socks4a", "socks5"];
/// Commands as counted.
pub const COMMANDS: [&str; 3] = ["connect", "bind", "udpassociate"];
/// Why a negotiation failed.
pub const NEGOTIATION_FAILURES: [&str; 7] = [
    "timeout",
    "closed",
    "bad_version",
    "no_method",
    "auth",
    "protocol",
    "evicted",
];
/// Why a UDP datagram was dropped.
pub const UDP_DROPS: [&str; 7] = [
    "wrong_source",
    "malformed",
    "fragmented",
    "blocked",
    "unresolved",
    "undeliverable",
    "reply_blocked",
];
/// Rule numbers counted one by one; higher ones share the last slot.
pub const RULES_COUNTED: usize = 255;
/// Blocks remembered for the status page.
const RECENT_BLOCKS: usize = 20;

fn counters(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

fn add(c: &[AtomicU64], i: usize, n: u64) {
    if let Some(x) = c.get(i) {
        x.fetch_add(n, Ordering::Relaxed);
    }
}

fn read(c: &[AtomicU64]) -> Vec<u64> {
    c.iter().map(|x| x.load(Ordering::Relaxed)).collect()
}

/// Which kind of rule blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// A `client` rule.
    Client,
    /// A `socks` rule.
    Socks,
}

/// One block, for the status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Client or socks rule.
    pub kind: RuleKind,
    /// Rule number (0 = no rule matched).
    pub rule: u32,
    /// The client.
    pub client: SocketAddr,
    /// What it asked for (empty for a client rule).
    pub target: String,
}

/// What a UDP association moved and dropped, added to the totals when it ends.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct UdpTotals {
    pub up_dgrams: u64,
    pub up_bytes: u64,
    pub down_dgrams: u64,
    pub down_bytes: u64,
    /// In the order of [`UDP_DROPS`].
    pub drops: [u64; 7],
}

/// Counters of a running server.
#[derive(Debug)]
pub struct Stats {
    accepted: AtomicU64,
    /// [version * 3 + command].
    sessions_total: Box<[AtomicU64]>,
    sessions_open: Box<[AtomicU64]>,
    client_blocks: Box<[AtomicU64]>,
    socks_blocks: Box<[AtomicU64]>,
    negotiation_failures: Box<[AtomicU64]>,
    /// By reply code 0..=255.
    connect_failures: Box<[AtomicU64]>,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    udp: Box<[AtomicU64]>,
    udp_drops: Box<[AtomicU64]>,
    recent: Mutex<VecDeque<Block>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            accepted: AtomicU64::new(0),
            sessions_total: counters(9),
            sessions_open: counters(9),
            client_blocks: counters(RULES_COUNTED + 1),
            socks_blocks: counters(RULES_COUNTED + 1),
            negotiation_failures: counters(NEGOTIATION_FAILURES.len()),
            connect_failures: counters(256),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            udp: counters(4),
            udp_drops: counters(UDP_DROPS.len()),
            recent: Mutex::default(),
        }
    }
}

/// A plain copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Connections accepted.
    pub accepted: u64,
    /// Sessions by version and command (rows [`VERSIONS`], columns [`COMMANDS`]).
    pub sessions_total: Vec<Vec<u64>>,
    /// Sessions open now, the same way.
    pub sessions_open: Vec<Vec<u64>>,
    /// (rule number, blocks) of client rules with any block; the number of the last slot
    /// stands for it and every rule above.
    pub client_blocks: Vec<(u32, u64)>,
    /// The same for socks rules.
    pub socks_blocks: Vec<(u32, u64)>,
    /// By [`NEGOTIATION_FAILURES`].
    pub negotiation_failures: Vec<u64>,
    /// (reply code, count) of failed connects.
    pub connect_failures: Vec<(u8, u64)>,
    /// Bytes client -> target of finished sessions.
    pub bytes_up: u64,
    /// Bytes target -> client of finished sessions.
    pub bytes_down: u64,
    /// UDP datagrams and bytes of finished associations: up datagrams, up bytes, down
    /// datagrams, down bytes.
    pub udp: [u64; 4],
    /// UDP drops by [`UDP_DROPS`].
    pub udp_drops: Vec<u64>,
    /// The last blocks, newest last.
    pub recent_blocks: Vec<Block>,
}

/// Decrements a session's open count when the session ends.
pub(crate) struct OpenSession<'a>(&'a AtomicU64);

impl Drop for OpenSession<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Stats {
    /// Counts an accepted connection.
    pub(crate) fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections accepted since start.
    pub fn accepted_total(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Counts a session of `version` (index into [`VERSIONS`]) and `command` (into
    /// [`COMMANDS`]) as started and open until the guard drops.
    pub(crate) fn session(&self, version: usize, command: usize) -> Option<OpenSession<'_>> {
        let i = version * 3 + command;
        add(&self.sessions_total, i, 1);
        let open = self.sessions_open.get(i)?;
        open.fetch_add(1, Ordering::Relaxed);
        Some(OpenSession(open))
    }

    /// Counts a block by rule `number` of `kind`, and remembers it for the status page.
    pub(crate) fn block(&self, kind: RuleKind, number: usize, client: SocketAddr, target: &str) {
        let slot = number.min(RULES_COUNTED);
        match kind {
            RuleKind::Client => add(&self.client_blocks, slot, 1),
            RuleKind::Socks => add(&self.socks_blocks, slot, 1),
        }
        // A sample: under a flood of blocks a busy lock just skips the entry.
        if let Ok(mut r) = self.recent.try_lock() {
            if r.len() >= RECENT_BLOCKS {
                r.pop_front();
            }
            r.push_back(Block {
                at_ms: SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                kind,
                rule: u32::try_from(number).unwrap_or(u32::MAX),
                client,
                target: target.to_string(),
            });
        }
    }

    /// Counts a failed negotiation (index into [`NEGOTIATION_FAILURES`]).
    pub(crate) fn negotiation_failed(&self, reason: usize) {
        add(&self.negotiation_failures, reason, 1);
    }

    /// Counts a connect that failed with reply `code`.
    pub(crate) fn connect_failed(&self, code: u8) {
        add(&self.connect_failures, usize::from(code), 1);
    }

    /// Adds a finished TCP session's bytes.
    pub(crate) fn bytes(&self, up: u64, down: u64) {
        self.bytes_up.fetch_add(up, Ordering::Relaxed);
        self.bytes_down.fetch_add(down, Ordering::Relaxed);
    }

    /// Adds a finished UDP association's figures.
    pub(crate) fn udp(&self, t: &UdpTotals) {
        for (i, n) in [t.up_dgrams, t.up_bytes, t.down_dgrams, t.down_bytes]
            .into_iter()
            .enumerate()
        {
            add(&self.udp, i, n);
        }
        for (i, n) in t.drops.iter().enumerate() {
            add(&self.udp_drops, i, *n);
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let grid = |c: &[AtomicU64]| read(c).chunks(3).map(<[u64]>::to_vec).collect();
        let rules = |c: &[AtomicU64]| {
            read(c)
                .into_iter()
                .enumerate()
                .filter(|(_, n)| *n > 0)
                .map(|(i, n)| (u32::try_from(i).unwrap_or(u32::MAX), n))
                .collect()
        };
        let udp = read(&self.udp);
        StatsSnapshot {
            accepted: self.accepted_total(),
            sessions_total: grid(&self.sessions_total),
            sessions_open: grid(&self.sessions_open),
            client_blocks: rules(&self.client_blocks),
            socks_blocks: rules(&self.socks_blocks),
            negotiation_failures: read(&self.negotiation_failures),
            connect_failures: read(&self.connect_failures)
                .into_iter()
                .enumerate()
                .filter(|(_, n)| *n > 0)
                .map(|(i, n)| (u8::try_from(i).unwrap_or(u8::MAX), n))
                .collect(),
            bytes_up: self.bytes_up.load(Ordering::Relaxed),
            bytes_down: self.bytes_down.load(Ordering::Relaxed),
            udp: [
                udp.first().copied().unwrap_or(0),
                udp.get(1).copied().unwrap_or(0),
                udp.get(2).copied().unwrap_or(0),
                udp.get(3).copied().unwrap_or(0),
            ],
            udp_drops: read(&self.udp_drops),
            recent_blocks: self
                .recent
                .lock()
                .map(|r| r.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }
}

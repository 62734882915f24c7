//! Admission: which accepted connections the server keeps while they negotiate, so that one
//! source's silent connections cannot starve everyone else of descriptors.
//!
//! Three caps, all derived from the descriptor limit unless set:
//! - all connections (`hasocks.maxconn`): at the cap the accept loops wait and the kernel's
//!   backlog holds the rest (hasocks_net::admission), and the reserve stays free for outgoing
//!   connections of admitted sessions, UDP sockets, the admin and control listeners and the
//!   password helper;
//! - connections still negotiating (`hasocks.maxconn.negotiating`): when the set is full, a
//!   new connection evicts the oldest one in it, so a slow flood cannot lock out clients that
//!   speak promptly (nginx closes its idle keep-alive connections first in the same spot);
//! - connections still negotiating from one address (`hasocks.maxconn.negotiating.source`):
//!   over it a new one is closed at once. Connections from `hasocks.proxyprotocol.from` peers
//!   count against the address in their PROXY header once it is read.
//!
//! Cost per session: one short lock at accept and one when negotiation ends.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub use hasocks_ctl_proto::server::{AdmissionStatus, Caps};
use hasocks_net::admission::{cap_for, Slot, Slots};
use hasocks_net::ratelog::{more, Folded};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// Descriptors kept for everything that is not a session: listeners, log files, the control
/// socket, the admin listener, the password helper's pipes, the files a shadow check opens.
const RESERVE: u64 = 64;
/// Of the descriptor limit, the share kept for the sockets beyond two a session may hold
/// (a UDP association's datagram sockets, a BIND's listening socket): one in eight.
const EXTRA_SHARE: u64 = 8;
/// Descriptors PAM may hold when it runs in this process (a few files per check).
const PAM_RESERVE: u64 = 2 * crate::session::auth::PAM_SLOTS as u64;

/// What the descriptor limit needs kept aside from sessions.
fn reserve(nofile: u64, admin_connections: u64, pam_in_process: bool) -> u64 {
    let pam = if pam_in_process { PAM_RESERVE } else { 0 };
    // The admin listener's own connection cap, but never more than a sixteenth of the
    // limit: with a small limit its clients wait in its backlog instead.
    RESERVE + nofile / EXTRA_SHARE + admin_connections.min(nofile / 16) + pam
}

/// The caps derived from a descriptor limit, and configured values over them.
pub trait Derive: Sized {
    /// The defaults for a descriptor limit.
    fn derived(nofile: u64, admin_connections: u64, pam_in_process: bool) -> Self;
    /// The configured values where set, the derived ones elsewhere.
    fn with(self, total: Option<u32>, negotiating: Option<u32>, per_source: Option<u32>) -> Self;
}

impl Derive for Caps {
    /// The defaults for a descriptor limit: all connections as the limit allows after the
    /// reserve (two descriptors each), half of them negotiating, an eighth of those from one
    /// address.
    fn derived(nofile: u64, admin_connections: u64, pam_in_process: bool) -> Caps {
        let total = cap_for(nofile, reserve(nofile, admin_connections, pam_in_process));
        let negotiating = (total / 2).max(1);
        Caps {
            total,
            negotiating,
            negotiating_per_source: (negotiating / 8).max(1),
        }
    }

    /// The configured values where set, the derived ones elsewhere; a negotiating cap never
    /// above the total.
    fn with(self, total: Option<u32>, negotiating: Option<u32>, per_source: Option<u32>) -> Caps {
        let total_v = total.unwrap_or(self.total).max(1);
        let negotiating_v = negotiating
            .unwrap_or(if total.is_some() {
                (total_v / 2).max(1)
            } else {
                self.negotiating
            })
            .clamp(1, total_v);
        let per_source_v = per_source.unwrap_or(if negotiating.is_some() || total.is_some() {
            (negotiating_v / 8).max(1)
        } else {
            self.negotiating_per_source
        });
        Caps {
            total: total_v,
            negotiating: negotiating_v,
            negotiating_per_source: per_source_v,
        }
    }
}

/// The negotiating set: oldest first, and a count per source.
#[derive(Debug, Default)]
struct Negotiating {
    next: u64,
    /// By admission order: the source counted (None: not counted yet, a proxy peer) and
    /// the token that evicts it.
    order: BTreeMap<u64, (Option<IpAddr>, CancellationToken)>,
    by_source: HashMap<IpAddr, u32>,
}

impl Negotiating {
    fn uncount(&mut self, ip: IpAddr) {
        if let Some(n) = self.by_source.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.by_source.remove(&ip);
            }
        }
    }

    /// Counts one more from `ip` unless it is at `limit` (0 = none).
    fn count(&mut self, ip: IpAddr, limit: u32) -> bool {
        let n = self.by_source.entry(ip).or_insert(0);
        if limit > 0 && *n >= limit {
            return false;
        }
        *n += 1;
        true
    }
}

/// The caps and who holds what. Long-lived: a reload changes the caps, not the holders.
#[derive(Debug)]
pub struct Admission {
    /// All connections.
    pub slots: Slots,
    negotiating_cap: AtomicU32,
    per_source: AtomicU32,
    set: Mutex<Negotiating>,
    refused: AtomicU64,
    evicted: AtomicU64,
    refused_log: Folded,
    evicted_log: Folded,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{ip} has {limit} connections negotiating already (hasocks.maxconn.negotiating.source)")]
pub struct Refused {
    /// The address at its cap.
    pub ip: IpAddr,
    /// The cap.
    pub limit: u32,
}

/// A connection's hold: a slot for its whole life, and a place in the negotiating set until
/// it has negotiated (or is evicted).
#[derive(Debug)]
pub struct Ticket {
    _slot: Slot,
    admission: Arc<Admission>,
    /// Its key in the negotiating set while it is there.
    key: Option<u64>,
    evict: CancellationToken,
}

impl Admission {
    /// An admission with `caps`.
    pub fn new(caps: Caps) -> Arc<Admission> {
        Arc::new(Admission {
            slots: Slots::new(caps.total, "hasocks.maxconn"),
            negotiating_cap: AtomicU32::new(caps.negotiating),
            per_source: AtomicU32::new(caps.negotiating_per_source),
            set: Mutex::default(),
            refused: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            refused_log: Folded::default(),
            evicted_log: Folded::default(),
        })
    }

    /// New caps (a reload). Lower ones take effect as connections end or negotiate.
    pub fn set_caps(&self, caps: Caps) {
        self.slots.set(caps.total);
        self.negotiating_cap
            .store(caps.negotiating, Ordering::Relaxed);
        self.per_source
            .store(caps.negotiating_per_source, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, Negotiating> {
        // The set's counts stay consistent between statements: a poisoned lock is usable.
        self.set.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection from `ip` holding `slot` into the negotiating set. `counted`:
    /// whether `ip` is the client (false for a PROXY protocol peer, counted by
    /// [`Ticket::source`] once its header is read). When the set is full, the oldest
    /// connection in it is evicted.
    pub fn admit(
        self: &Arc<Self>,
        slot: Slot,
        ip: IpAddr,
        counted: bool,
    ) -> Result<Ticket, Refused> {
        let ip = ip.to_canonical();
        let limit = self.per_source.load(Ordering::Relaxed);
        let cap = self.negotiating_cap.load(Ordering::Relaxed) as usize;
        let evict = CancellationToken::new();
        let mut set = self.lock();
        if counted && !set.count(ip, limit) {
            drop(set);
            self.refused(ip, limit);
            return Err(Refused { ip, limit });
        }
        let mut evicted = 0u64;
        while set.order.len() >= cap {
            let Some((_, (src, token))) = set.order.pop_first() else {
                break;
            };
            if let Some(s) = src {
                set.uncount(s);
            }
            token.cancel();
            evicted += 1;
        }
        let key = set.next;
        set.next += 1;
        set.order
            .insert(key, (counted.then_some(ip), evict.clone()));
        drop(set);
        if evicted > 0 {
            self.evicted.fetch_add(evicted, Ordering::Relaxed);
            if let Some(n) = self.evicted_log.hit() {
                tracing::warn!(
                    "{cap} connections are negotiating (hasocks.maxconn.negotiating): closed the oldest to admit new ones{}",
                    more(n)
                );
            }
        }
        Ok(Ticket {
            _slot: slot,
            admission: self.clone(),
            key: Some(key),
            evict,
        })
    }

    fn refused(&self, ip: IpAddr, limit: u32) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        if let Some(n) = self.refused_log.hit() {
            tracing::warn!(
                "client {ip} has {limit} connections negotiating (hasocks.maxconn.negotiating.source): closed a new one{}",
                more(n)
            );
        }
    }

    /// The figures now.
    pub fn status(&self) -> AdmissionStatus {
        let negotiating = u32::try_from(self.lock().order.len()).unwrap_or(u32::MAX);
        AdmissionStatus {
            caps: Caps {
                total: self.slots.cap(),
                negotiating: self.negotiating_cap.load(Ordering::Relaxed),
                negotiating_per_source: self.per_source.load(Ordering::Relaxed),
            },
            connections: self.slots.in_use(),
            negotiating,
            refused_per_source: self.refused.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            waits_at_cap: self.slots.waits(),
        }
    }
}

impl Ticket {
    /// Resolves when the connection is evicted from the negotiating set.
    pub fn evicted(&self) -> WaitForCancellationFuture<'_> {
        self.evict.cancelled()
    }

    /// Counts the connection against `ip`, the client its PROXY header names; refused when
    /// that address has too many negotiating already.
    pub fn source(&mut self, ip: IpAddr) -> Result<(), Refused> {
        let Some(key) = self.key else { return Ok(()) };
        let a = &self.admission;
        let ip = ip.to_canonical();
        let limit = a.per_source.load(Ordering::Relaxed);
        let mut set = a.lock();
        let Some(entry) = set.order.get(&key) else {
            return Ok(()); // evicted meanwhile: the session ends on its own
        };
        if entry.0.is_some() {
            return Ok(());
        }
        if !set.count(ip, limit) {
            drop(set);
            a.refused(ip, limit);
            return Err(Refused { ip, limit });
        }
        if let Some(e) = set.order.get_mut(&key) {
            e.0 = Some(ip);
        }
        Ok(())
    }

    /// Leaves the negotiating set (the request is read); the slot is kept.
    pub fn negotiated(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut set = self.admission.lock();
        if let Some((Some(ip), _)) = set.order.remove(&key) {
            set.uncount(ip);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.negotiated();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    fn caps(total: u32, negotiating: u32, per_source: u32) -> Caps {
        Caps {
            total,
            negotiating,
            negotiating_per_source: per_source,
        }
    }

    async fn admit(a: &Arc<Admission>, from: IpAddr) -> Result<Ticket, Refused> {
        a.admit(a.slots.slot().await.unwrap(), from, true)
    }

    #[test]
    fn defaults_keep_a_reserve_and_leave_room_for_sessions_beside_negotiations() {
        let c = Caps::derived(256, 0, false);
        assert_eq!(c.total, (256 - 64 - 32) / 2);
        assert_eq!(c.negotiating, c.total / 2);
        assert_eq!(c.negotiating_per_source, c.negotiating / 8);
        let big = Caps::derived(20_000, 1024, true);
        assert_eq!(big.total, ((20_000 - 64 - 2500 - 1024 - 128) / 2) as u32);
        assert!(
            Caps::derived(10, 1024, true).negotiating_per_source >= 1,
            "never zero"
        );
    }

    #[test]
    fn a_configured_total_derives_the_others_from_it_and_negotiating_never_exceeds_it() {
        let c = Caps::derived(20_000, 0, false).with(Some(100), None, None);
        assert_eq!(c, caps(100, 50, 6));
        let c = Caps::derived(20_000, 0, false).with(Some(10), Some(50), Some(0));
        assert_eq!(c, caps(10, 10, 0));
    }

    #[tokio::test]
    async fn one_address_over_its_cap_is_refused_and_others_are_admitted() {
        let a = Admission::new(caps(100, 50, 2));
        let one = admit(&a, ip(1)).await.unwrap();
        let _two = admit(&a, ip(1)).await.unwrap();
        assert!(admit(&a, ip(1)).await.is_err());
        assert!(admit(&a, ip(2)).await.is_ok());
        assert_eq!(a.status().refused_per_source, 1);
        drop(one);
        assert!(admit(&a, ip(1)).await.is_ok(), "a place came back");
    }

    #[tokio::test]
    async fn a_full_negotiating_set_evicts_its_oldest_member_for_a_new_one() {
        let a = Admission::new(caps(100, 2, 0));
        let oldest = admit(&a, ip(1)).await.unwrap();
        let middle = admit(&a, ip(2)).await.unwrap();
        assert!(!oldest.evict.is_cancelled());
        let _new = admit(&a, ip(3)).await.unwrap();
        assert!(oldest.evict.is_cancelled(), "the oldest goes");
        assert!(!middle.evict.is_cancelled(), "the others stay");
        let s = a.status();
        assert_eq!((s.negotiating, s.evicted), (2, 1));
    }

    #[tokio::test]
    async fn a_negotiated_connection_is_out_of_reach_of_eviction_and_keeps_its_slot() {
        let a = Admission::new(caps(100, 1, 0));
        let mut done = admit(&a, ip(1)).await.unwrap();
        done.negotiated();
        let _next = admit(&a, ip(2)).await.unwrap();
        assert!(!done.evict.is_cancelled());
        let s = a.status();
        assert_eq!((s.connections, s.negotiating), (2, 1));
    }

    #[tokio::test]
    async fn a_proxy_peer_counts_against_the_client_its_header_names() {
        let a = Admission::new(caps(100, 50, 1));
        let relay = ip(9);
        let mut first = a
            .admit(a.slots.slot().await.unwrap(), relay, false)
            .unwrap();
        let mut second = a
            .admit(a.slots.slot().await.unwrap(), relay, false)
            .unwrap();
        first.source(ip(1)).unwrap();
        assert!(second.source(ip(1)).is_err(), "the same client twice");
        let mut third = a
            .admit(a.slots.slot().await.unwrap(), relay, false)
            .unwrap();
        third
            .source(ip(2))
            .expect("another client through the same relay");
    }

    #[tokio::test]
    async fn an_evicted_connection_leaves_its_source_count() {
        let a = Admission::new(caps(100, 1, 1));
        let _old = admit(&a, ip(1)).await.unwrap();
        let _new = admit(&a, ip(2)).await.unwrap();
        admit(&a, ip(1))
            .await
            .expect("ip 1's evicted connection no longer counts");
    }
}

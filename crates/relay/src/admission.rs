//! Admission of connections, HAProxy's `maxconn` better aimed: a global cap on concurrent
//! sessions (at the cap the accept loops wait and the kernel's backlog holds the rest: nothing
//! is accepted and dropped), and a cap per client address (one client or scanner cannot take
//! every slot; a connection over it is closed at once). The global cap defaults to what the
//! descriptor limit allows after a reserve for checks, listeners and the admin port.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use net::ratelog::{more, Folded};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Descriptors kept for everything that is not a session: listeners, the control socket,
/// logs, the admin port's own budget is added on top.
const RESERVE: u64 = 64;
/// Descriptors kept per host for its checks (a check socket, a check script's pipes).
const RESERVE_PER_HOST: u64 = 4;
/// Shards of the per-source table (a session takes one shard's lock at start and end).
const SHARDS: usize = 16;

/// The global cap a descriptor limit allows: each session holds two descriptors (client and
/// host), after the reserve.
pub(crate) fn default_cap(nofile: u64, hosts: usize, admin_conns: usize) -> u32 {
    let reserve = RESERVE + RESERVE_PER_HOST * hosts as u64 + admin_conns as u64;
    u32::try_from(nofile.saturating_sub(reserve) / 2)
        .unwrap_or(u32::MAX)
        .max(1)
}

/// The per-source cap when none is configured: a quarter of the global cap.
pub(crate) fn default_per_source(cap: u32) -> u32 {
    (cap / 4).max(1)
}

/// Admission figures, for status and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionStatus {
    /// Concurrent sessions at most.
    pub cap: u32,
    /// Sessions holding a slot now.
    pub in_use: u32,
    /// Concurrent connections from one address at most (0 = no limit).
    pub per_source: u32,
    /// Connections closed at once because their address was at its cap.
    pub refused_per_source: u64,
    /// Times an accept loop found every slot taken and waited.
    pub waits_at_cap: u64,
}

/// The caps and who holds what.
#[derive(Debug)]
pub(crate) struct Admission {
    slots: Arc<Semaphore>,
    cap: AtomicU32,
    per_source: AtomicU32,
    sources: Vec<Mutex<HashMap<IpAddr, u32>>>,
    refused: AtomicU64,
    waits: AtomicU64,
    refused_log: Folded,
    cap_log: Folded,
    /// Sessions holding a slot.
    in_use: AtomicUsize,
}

/// A session's hold on a global slot and on its address's count.
#[derive(Debug)]
pub(crate) struct Admitted {
    _slot: OwnedSemaphorePermit,
    admission: Arc<Admission>,
    source: Option<IpAddr>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.admission.in_use.fetch_sub(1, Ordering::Relaxed);
        if let Some(ip) = self.source {
            self.admission.release(ip);
        }
    }
}

impl Admission {
    /// Caps `cap` and `per_source` (0 = no per-source limit).
    pub fn new(cap: u32, per_source: u32) -> Arc<Admission> {
        Arc::new(Admission {
            slots: Arc::new(Semaphore::new(cap as usize)),
            cap: AtomicU32::new(cap),
            per_source: AtomicU32::new(per_source),
            sources: (0..SHARDS).map(|_| Mutex::default()).collect(),
            refused: AtomicU64::new(0),
            waits: AtomicU64::new(0),
            refused_log: Folded::default(),
            cap_log: Folded::default(),
            in_use: AtomicUsize::new(0),
        })
    }

    /// New caps (a reload). A smaller global cap takes effect as sessions end.
    pub fn set(&self, cap: u32, per_source: u32) {
        self.per_source.store(per_source, Ordering::Relaxed);
        let old = self.cap.swap(cap, Ordering::Relaxed);
        if cap > old {
            self.slots.add_permits((cap - old) as usize);
        } else if cap < old {
            let (slots, n) = (self.slots.clone(), old - cap);
            tokio::spawn(async move {
                if let Ok(p) = slots.acquire_many_owned(n).await {
                    p.forget();
                }
            });
        }
    }

    /// Waits while every slot is taken, without taking one: an accept loop calls it before
    /// accepting, so that at the cap connections wait in the listen backlog. (Taking the slot
    /// before accepting would let idle accept loops hold slots no session uses.)
    pub async fn wait_free(&self) {
        if self.slots.available_permits() > 0 {
            return;
        }
        self.waits.fetch_add(1, Ordering::Relaxed);
        if let Some(n) = self.cap_log.hit() {
            tracing::warn!(
                "at the session cap ({} sessions, hasocks.maxconn): new connections wait in the listen backlog{}",
                self.cap.load(Ordering::Relaxed),
                more(n)
            );
        }
        drop(self.slots.acquire().await);
    }

    /// A global slot for a connection just accepted: at once, unless another accept loop took
    /// the last free one meanwhile (then it waits; at most one connection per accept loop
    /// waits so). None once the semaphore is closed.
    pub async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().acquire_owned().await.ok()
    }

    /// Admits a connection from `ip` holding `slot`, or refuses it (None) when its address is
    /// at its cap.
    pub fn admit(self: &Arc<Self>, slot: OwnedSemaphorePermit, ip: IpAddr) -> Option<Admitted> {
        let ip = ip.to_canonical();
        let limit = self.per_source.load(Ordering::Relaxed);
        if limit > 0 {
            let mut shard = self.shard(ip);
            let n = shard.entry(ip).or_insert(0);
            if *n >= limit {
                drop(shard);
                self.refused.fetch_add(1, Ordering::Relaxed);
                if let Some(k) = self.refused_log.hit() {
                    tracing::warn!(
                        "client {ip} is at its cap of {limit} connections (hasocks.maxconn.source): closed a new one{}",
                        more(k)
                    );
                }
                return None;
            }
            *n += 1;
        }
        self.in_use.fetch_add(1, Ordering::Relaxed);
        Some(Admitted {
            _slot: slot,
            admission: self.clone(),
            source: (limit > 0).then_some(ip),
        })
    }

    fn shard(&self, ip: IpAddr) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u32>> {
        let h = match ip {
            IpAddr::V4(v4) => u32::from(v4) as usize,
            IpAddr::V6(v6) => (u128::from(v6) as usize) ^ ((u128::from(v6) >> 64) as usize),
        };
        let i = h.wrapping_mul(0x9E37_79B9) % SHARDS;
        // Every shard exists (SHARDS of them); a poisoned one still holds valid counts.
        self.sources[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn release(&self, ip: IpAddr) {
        let mut shard = self.shard(ip);
        if let Some(n) = shard.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                shard.remove(&ip);
            }
        }
    }

    /// The figures now.
    pub fn status(&self) -> AdmissionStatus {
        AdmissionStatus {
            cap: self.cap.load(Ordering::Relaxed),
            in_use: u32::try_from(self.in_use.load(Ordering::Relaxed)).unwrap_or(u32::MAX),
            per_source: self.per_source.load(Ordering::Relaxed),
            refused_per_source: self.refused.load(Ordering::Relaxed),
            waits_at_cap: self.waits.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn the_default_cap_leaves_a_reserve_and_counts_two_descriptors_a_session() {
        assert_eq!(default_cap(256, 2, 0), (256 - 64 - 8) / 2);
        assert_eq!(default_cap(20_000, 2, 1024), (20_000 - 64 - 8 - 1024) / 2);
        assert_eq!(default_cap(10, 2, 0), 1, "never zero");
        assert_eq!(default_per_source(1000), 250);
    }

    #[tokio::test]
    async fn an_address_at_its_cap_is_refused_and_others_are_not() {
        let a = Admission::new(10, 2);
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let one = a.admit(a.slot().await.unwrap(), ip).expect("first");
        let two = a.admit(a.slot().await.unwrap(), ip).expect("second");
        assert!(
            a.admit(a.slot().await.unwrap(), ip).is_none(),
            "third from the same address"
        );
        assert!(
            a.admit(a.slot().await.unwrap(), other).is_some(),
            "another address"
        );
        assert_eq!(a.status().refused_per_source, 1);
        drop(one);
        assert!(
            a.admit(a.slot().await.unwrap(), ip).is_some(),
            "a slot came back"
        );
        drop(two);
    }

    #[tokio::test]
    async fn at_the_global_cap_a_slot_waits_until_a_session_ends() {
        let a = Admission::new(1, 0);
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let held = a.admit(a.slot().await.unwrap(), ip).unwrap();
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), a.wait_free()).await;
        assert!(waiting.is_err(), "no free slot while the only one is held");
        assert_eq!(a.status().waits_at_cap, 1);
        drop(held);
        a.wait_free().await;
        assert!(
            a.slot().await.is_some(),
            "waiting for a free slot did not take it"
        );
    }
}

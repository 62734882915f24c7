//! Admission of connections, HAProxy's `maxconn` better aimed: a global cap on concurrent
//! sessions (at the cap the accept loops wait and the kernel's backlog holds the rest: nothing
//! is accepted and dropped), and a cap per client address (one client or scanner cannot take
//! every slot; a connection over it is closed at once). The global cap defaults to what the
//! descriptor limit allows after a reserve for checks, listeners and the admin port.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hasocks_net::admission::{cap_for, Slot, Slots};
use hasocks_net::ratelog::{more, Folded};

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
    cap_for(
        nofile,
        RESERVE + RESERVE_PER_HOST * hosts as u64 + admin_conns as u64,
    )
}

/// The per-source cap when none is configured: a quarter of the global cap.
pub(crate) fn default_per_source(cap: u32) -> u32 {
    (cap / 4).max(1)
}

pub use hasocks_ctl_proto::relay::AdmissionStatus;

/// The caps and who holds what.
#[derive(Debug)]
pub(crate) struct Admission {
    /// The global cap (shared with the server's admission: hasocks_net::admission).
    pub slots: Slots,
    per_source: AtomicU32,
    sources: Vec<Mutex<HashMap<IpAddr, u32>>>,
    refused: AtomicU64,
    refused_log: Folded,
}

/// A session's hold on a global slot and on its address's count.
#[derive(Debug)]
pub(crate) struct Admitted {
    _slot: Slot,
    admission: Arc<Admission>,
    source: Option<IpAddr>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some(ip) = self.source {
            self.admission.release(ip);
        }
    }
}

impl Admission {
    /// Caps `cap` and `per_source` (0 = no per-source limit).
    pub fn new(cap: u32, per_source: u32) -> Arc<Admission> {
        Arc::new(Admission {
            slots: Slots::new(cap, "hasocks.maxconn"),
            per_source: AtomicU32::new(per_source),
            sources: (0..SHARDS).map(|_| Mutex::default()).collect(),
            refused: AtomicU64::new(0),
            refused_log: Folded::default(),
        })
    }

    /// New caps (a reload). A smaller global cap takes effect as sessions end.
    pub fn set(&self, cap: u32, per_source: u32) {
        self.per_source.store(per_source, Ordering::Relaxed);
        self.slots.set(cap);
    }

    /// Admits a connection from `ip` holding `slot`, or refuses it (None) when its address is
    /// at its cap.
    pub fn admit(self: &Arc<Self>, slot: Slot, ip: IpAddr) -> Option<Admitted> {
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
            cap: self.slots.cap(),
            in_use: self.slots.in_use(),
            per_source: self.per_source.load(Ordering::Relaxed),
            refused_per_source: self.refused.load(Ordering::Relaxed),
            waits_at_cap: self.slots.waits(),
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
        let one = a.admit(a.slots.slot().await.unwrap(), ip).expect("first");
        let two = a.admit(a.slots.slot().await.unwrap(), ip).expect("second");
        assert!(
            a.admit(a.slots.slot().await.unwrap(), ip).is_none(),
            "third from the same address"
        );
        assert!(
            a.admit(a.slots.slot().await.unwrap(), other).is_some(),
            "another address"
        );
        assert_eq!(a.status().refused_per_source, 1);
        drop(one);
        assert!(
            a.admit(a.slots.slot().await.unwrap(), ip).is_some(),
            "a slot came back"
        );
        drop(two);
    }
}

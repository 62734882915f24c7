//! The global cap of an accept loop, HAProxy's `maxconn` better aimed: at the cap the accept
//! loops wait and the kernel's listen backlog holds the rest, so nothing is accepted only to
//! be dropped, and the descriptors kept in reserve stay free for the work that must go on.
//! Both daemons build their admission (per source, negotiating) on top of it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::ratelog::{more, Folded};

/// The cap a descriptor limit allows: each connection holds two descriptors (the client's
/// and its outgoing one), after `reserve`. Never zero.
pub fn cap_for(nofile: u64, reserve: u64) -> u32 {
    u32::try_from(nofile.saturating_sub(reserve) / 2)
        .unwrap_or(u32::MAX)
        .max(1)
}

/// The process's current descriptor limit (`RLIMIT_NOFILE`, soft).
pub fn nofile() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX)
}

/// Concurrent connections at most, shared by every accept loop of a daemon.
#[derive(Debug)]
pub struct Slots {
    sem: Arc<Semaphore>,
    cap: AtomicU32,
    /// Connections holding a slot.
    in_use: Arc<AtomicUsize>,
    waits: AtomicU64,
    log: Folded,
    /// The keyword that sets the cap, for the log line.
    keyword: &'static str,
}

/// A connection's hold on a slot; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    in_use: Arc<AtomicUsize>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.in_use.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Slots {
    /// `cap` slots; `keyword` is the setting that changes it (named in the warning at the cap).
    pub fn new(cap: u32, keyword: &'static str) -> Self {
        Slots {
            sem: Arc::new(Semaphore::new(cap as usize)),
            cap: AtomicU32::new(cap),
            in_use: Arc::default(),
            waits: AtomicU64::new(0),
            log: Folded::default(),
            keyword,
        }
    }

    /// A new cap (a reload). A smaller one takes effect as connections end.
    pub fn set(&self, cap: u32) {
        let old = self.cap.swap(cap, Ordering::Relaxed);
        if cap > old {
            self.sem.add_permits((cap - old) as usize);
        } else if cap < old {
            let (sem, n) = (self.sem.clone(), old - cap);
            tokio::spawn(async move {
                if let Ok(p) = sem.acquire_many_owned(n).await {
                    p.forget();
                }
            });
        }
    }

    /// Waits while every slot is taken, without taking one: an accept loop calls it before
    /// accepting, so that at the cap connections wait in the listen backlog. (Taking the slot
    /// before accepting would let idle accept loops hold slots no connection uses.)
    pub async fn wait_free(&self) {
        if self.sem.available_permits() > 0 {
            return;
        }
        self.waits.fetch_add(1, Ordering::Relaxed);
        if let Some(n) = self.log.hit() {
            tracing::warn!(
                "at the connection cap ({} connections, {}): new connections wait in the listen backlog{}",
                self.cap.load(Ordering::Relaxed),
                self.keyword,
                more(n)
            );
        }
        drop(self.sem.acquire().await);
    }

    /// A slot for a connection just accepted: at once, unless another accept loop took the
    /// last free one meanwhile (then it waits; at most one connection per accept loop waits
    /// so). None once the slots are closed.
    pub async fn slot(&self) -> Option<Slot> {
        let permit = self.sem.clone().acquire_owned().await.ok()?;
        self.in_use.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            _permit: permit,
            in_use: self.in_use.clone(),
        })
    }

    /// The next connection of `acceptor` with its slot: waits for a free slot first (at the
    /// cap the backlog holds the rest), then accepts. None when `stop` fires or the listener
    /// is gone.
    pub async fn accept(
        &self,
        acceptor: &mut crate::listen::Acceptor,
        stop: &CancellationToken,
    ) -> Option<(TcpStream, SocketAddr, Slot)> {
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = self.wait_free() => {}
        }
        let (stream, peer) = acceptor.accept(stop).await?;
        // An accepted connection is never dropped for a stop that comes now (a successor took
        // over: the client reached us and must be served). At most one connection per accept
        // loop waits here, and slots come back as sessions end or are cut.
        let slot = self.slot().await?;
        Some((stream, peer, slot))
    }

    /// The cap.
    pub fn cap(&self) -> u32 {
        self.cap.load(Ordering::Relaxed)
    }

    /// Connections holding a slot now.
    pub fn in_use(&self) -> u32 {
        u32::try_from(self.in_use.load(Ordering::Relaxed)).unwrap_or(u32::MAX)
    }

    /// Times an accept loop found every slot taken and waited.
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_cap_leaves_the_reserve_and_counts_two_descriptors_a_connection() {
        assert_eq!(cap_for(256, 64), 96);
        assert_eq!(cap_for(10, 64), 1, "never zero");
    }

    #[tokio::test]
    async fn at_the_cap_waiting_for_a_free_slot_waits_until_one_is_given_back() {
        let s = Slots::new(1, "hasocks.maxconn");
        let held = s.slot().await.unwrap();
        assert_eq!(s.in_use(), 1);
        let waiting = tokio::time::timeout(Duration::from_millis(50), s.wait_free()).await;
        assert!(waiting.is_err(), "no free slot while the only one is held");
        assert_eq!(s.waits(), 1);
        drop(held);
        assert_eq!(s.in_use(), 0);
        s.wait_free().await;
        assert!(s.slot().await.is_some(), "waiting did not take the slot");
    }

    #[tokio::test]
    async fn a_raised_cap_frees_slots_at_once_and_a_lowered_one_as_they_end() {
        let s = Slots::new(1, "k");
        let a = s.slot().await.unwrap();
        s.set(2);
        let b = tokio::time::timeout(Duration::from_millis(200), s.slot())
            .await
            .expect("a raised cap gives a slot at once")
            .unwrap();
        s.set(1);
        drop(a);
        tokio::task::yield_now().await;
        let more = tokio::time::timeout(Duration::from_millis(50), s.slot()).await;
        assert!(more.is_err(), "one slot is held and the cap is one");
        drop(b);
    }
}

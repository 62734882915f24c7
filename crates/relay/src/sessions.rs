//! The registry of open sessions (`show sessions`, live byte counts per host). One shard per
//! worker thread, so that a session's insert and remove take a lock no other worker takes;
//! readers (ctl, status) lock each shard briefly. Byte counts are updated by the copy itself
//! (`hasocks_net::copy::LiveBytes`), not through the registry.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use hasocks_net::copy::LiveBytes;

use crate::records::{HostRecord, RelayRecord};
use hasocks_ctl_proto::relay::SessionStatus;

/// One open session.
#[derive(Debug)]
pub(crate) struct SessionEntry {
    pub id: u64,
    pub worker: u32,
    pub client: SocketAddr,
    pub backend: SocketAddr,
    pub relay: Arc<RelayRecord>,
    pub host: Arc<HostRecord>,
    pub started: Instant,
    pub live: LiveBytes,
}

type Shard = Mutex<HashMap<u64, Arc<SessionEntry>>>;

/// Every open session, sharded by worker.
#[derive(Debug)]
pub(crate) struct Sessions {
    shards: Vec<Shard>,
}

impl Sessions {
    /// A registry for `workers` worker threads.
    pub fn new(workers: usize) -> Sessions {
        Sessions {
            shards: (0..workers.max(1)).map(|_| Mutex::default()).collect(),
        }
    }

    fn shard(&self, worker: u32) -> Option<MutexGuard<'_, HashMap<u64, Arc<SessionEntry>>>> {
        self.shards
            .get(worker as usize)
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Adds `entry`; it is removed when the returned guard drops.
    pub fn register(self: &Arc<Self>, entry: Arc<SessionEntry>) -> Registered {
        if let Some(mut s) = self.shard(entry.worker) {
            s.insert(entry.id, entry.clone());
        }
        Registered {
            sessions: self.clone(),
            entry,
            done: None,
        }
    }

    /// A copy of every entry (cheap: the entries are shared).
    pub fn all(&self) -> Vec<Arc<SessionEntry>> {
        let mut out = Vec::new();
        for s in &self.shards {
            let s = s.lock().unwrap_or_else(|p| p.into_inner());
            out.extend(s.values().cloned());
        }
        out.sort_by_key(|e| e.id);
        out
    }
}

/// Keeps a session in the registry while it lives.
pub(crate) struct Registered {
    sessions: Arc<Sessions>,
    entry: Arc<SessionEntry>,
    /// Final byte counts, once the copy reported them.
    done: Option<(u64, u64)>,
}

impl Registered {
    /// The entry (for its live counters).
    pub fn entry(&self) -> &SessionEntry {
        &self.entry
    }

    /// Removes the session, its final byte counts going to its host.
    pub fn finish(mut self, out: u64, inb: u64) {
        self.done = Some((out, inb));
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let (out, inb) = self
            .done
            .unwrap_or((self.entry.live.a_to_b(), self.entry.live.b_to_a()));
        // Under the shard lock, so that a reader of host bytes (which holds every shard lock)
        // sees the session either open or closed, never both or neither.
        let guard = self.sessions.shard(self.entry.worker);
        if let Some(mut s) = guard {
            s.remove(&self.entry.id);
            self.entry.host.bytes_out.fetch_add(out, Ordering::Relaxed);
            self.entry.host.bytes_in.fetch_add(inb, Ordering::Relaxed);
        }
    }
}

impl SessionEntry {
    /// The plain-data view at `now` (`now_ms` on `hasocks_net::clock`).
    pub fn status(&self, now: Instant, now_ms: u64) -> SessionStatus {
        let age = now.saturating_duration_since(self.started);
        let age_ms = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
        let idle_ms = match self.live.last_active_ms() {
            Some(last) => now_ms.saturating_sub(last),
            None => age_ms,
        };
        SessionStatus {
            id: self.id,
            worker: self.worker,
            client: self.client,
            backend: self.backend,
            relay: self.relay.name.clone(),
            relay_id: self.relay.id,
            host_id: self.host.id,
            age_ms,
            idle_ms,
            bytes_out: self.live.a_to_b(),
            bytes_in: self.live.b_to_a(),
        }
    }
}

impl Sessions {
    /// Bytes each way of every host, by host id: finished sessions (the host's counters) plus
    /// open ones, read with every shard locked so that no session is counted twice or missed.
    pub fn host_bytes<'a>(
        &self,
        hosts: impl Iterator<Item = &'a HostRecord>,
    ) -> HashMap<u32, (u64, u64)> {
        let shards: Vec<_> = self
            .shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()))
            .collect();
        let mut out: HashMap<u32, (u64, u64)> = hosts
            .map(|h| {
                (
                    h.id,
                    (
                        h.bytes_out.load(Ordering::Relaxed),
                        h.bytes_in.load(Ordering::Relaxed),
                    ),
                )
            })
            .collect();
        for e in shards.iter().flat_map(|s| s.values()) {
            if let Some(b) = out.get_mut(&e.host.id) {
                b.0 += e.live.a_to_b();
                b.1 += e.live.b_to_a();
            }
        }
        out
    }
}

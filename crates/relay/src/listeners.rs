//! The relay's listening sockets by configured address: long-lived (an address that stays
//! across a reload keeps its sockets, so nothing queued is refused), plus the sockets handed in
//! by a predecessor or by socket activation that no `listen on` line has claimed yet. A reload
//! plans and binds in its prepare step ([`Listeners::prepare`]) and starts and closes in its
//! commit step.

use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::RelayError;
use crate::generation::{Generation, ListenKey, RelayGen};

/// One listening address: its sockets live in the workers' accept loops; copies are kept here
/// (for handing them to a successor process), and `stop` ends the loops.
#[derive(Debug)]
pub(crate) struct ListenerSet {
    pub bound: SocketAddr,
    pub stop: CancellationToken,
    /// The distinct sockets of the set (what a successor is handed).
    pub copies: Vec<TcpListener>,
}

/// Every listening address of the relay.
#[derive(Debug, Default)]
pub(crate) struct Listeners {
    sets: Mutex<BTreeMap<ListenKey, ListenerSet>>,
    /// Sockets from a predecessor or the service manager, not yet claimed.
    inherited: Mutex<Vec<(ListenKey, Vec<TcpListener>)>>,
}

/// What a reload does to the listeners, prepared: addresses kept, sockets bound for new
/// ones, inherited sockets to claim, addresses to close. Dropping it undoes the binds.
#[derive(Debug, Default)]
pub(crate) struct Opening {
    /// Addresses that stay.
    pub kept: usize,
    /// New addresses with sockets bound for them.
    bound: Vec<(ListenKey, Vec<TcpListener>)>,
    /// New addresses served by an inherited socket set.
    inherited: Vec<ListenKey>,
    /// Addresses no relay listens on any more.
    pub closing: Vec<ListenKey>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Listeners {
    /// No listener yet; `inherited` sockets wait to be claimed by a `listen on` line.
    pub fn new(inherited: Vec<(ListenKey, Vec<TcpListener>)>) -> Listeners {
        Listeners {
            sets: Mutex::default(),
            inherited: Mutex::new(inherited),
        }
    }

    /// The prepare step for `gen`'s addresses: which stay, which close, and sockets for the
    /// new ones (`workers` each), inherited or bound now (with IP_FREEBIND if `freebind`).
    /// Changes nothing: inherited sockets are only found, and claimed by [`take`](Self::take).
    pub fn prepare(
        &self,
        gen: &Generation,
        workers: usize,
        freebind: bool,
    ) -> Result<Opening, RelayError> {
        let wanted: HashSet<&ListenKey> = gen.by_listen.keys().collect();
        let mut out = Opening::default();
        let mut to_open: Vec<&ListenKey> = {
            let sets = lock(&self.sets);
            out.kept = sets.keys().filter(|k| wanted.contains(k)).count();
            out.closing = sets
                .keys()
                .filter(|k| !wanted.contains(k))
                .cloned()
                .collect();
            wanted
                .iter()
                .copied()
                .filter(|k| !sets.contains_key(*k))
                .collect()
        };
        to_open.sort();
        for key in to_open {
            if self.inherited_index(key).is_some() {
                out.inherited.push(key.clone());
                continue;
            }
            let (socks, free) = hasocks_net::sock::listen_tcp_group(key.addr, workers, freebind)
                .map_err(|source| RelayError::Bind {
                    relay: gen
                        .by_listen
                        .get(key)
                        .map_or_else(String::new, |r| r.record.name.clone()),
                    addr: key.addr.to_string(),
                    source,
                })?;
            if free {
                tracing::warn!(
                    "{} is not an address of this machine (yet): listening on it with IP_FREEBIND (a VRRP backup; if not, check the address)",
                    key.addr
                );
            }
            out.bound.push((key.clone(), socks));
        }
        Ok(out)
    }

    /// The commit step's sockets of `opening`: those bound, and the inherited ones claimed
    /// now. Cannot fail.
    pub fn take(&self, opening: &mut Opening) -> Vec<(ListenKey, Vec<TcpListener>)> {
        let mut out = std::mem::take(&mut opening.bound);
        for key in std::mem::take(&mut opening.inherited) {
            if let Some(i) = self.inherited_index(&key) {
                out.push((key, lock(&self.inherited).swap_remove(i).1));
            }
        }
        out
    }

    /// Where an inherited socket set for `key` is: by key (from a predecessor), or by the
    /// address it is bound to (socket activation hands plain addresses).
    fn inherited_index(&self, key: &ListenKey) -> Option<usize> {
        let pool = lock(&self.inherited);
        pool.iter().position(|(k, _)| k == key).or_else(|| {
            pool.iter().position(|(k, _)| {
                k.ephemeral.is_none() && key.ephemeral.is_none() && k.addr == key.addr
            })
        })
    }

    /// Closes the inherited sockets no `listen on` line claimed (after the first config).
    pub fn close_unclaimed(&self) {
        for (k, _) in std::mem::take(&mut *lock(&self.inherited)) {
            tracing::warn!(
                "an inherited listening socket on {} matches no listen on line; closed",
                k.addr
            );
        }
    }

    /// Records a started set (its accept loops run until `stop`).
    pub fn insert(&self, key: ListenKey, socks: &[TcpListener], stop: CancellationToken) {
        let bound = socks
            .first()
            .and_then(|s| s.local_addr().ok())
            .unwrap_or(key.addr);
        let copies = socks.iter().filter_map(|s| s.try_clone().ok()).collect();
        lock(&self.sets).insert(
            key,
            ListenerSet {
                bound,
                stop,
                copies,
            },
        );
    }

    /// Stops the accept loops of `keys`; how many there were.
    pub fn close(&self, keys: &[ListenKey]) -> usize {
        let mut sets = lock(&self.sets);
        keys.iter()
            .filter_map(|k| sets.remove(k))
            .map(|set| set.stop.cancel())
            .count()
    }

    /// Stops every accept loop.
    pub fn close_all(&self) {
        for (_, set) in std::mem::take(&mut *lock(&self.sets)) {
            set.stop.cancel();
        }
    }

    /// Sets TCP keepalive (`idle`, None = off) on every listener; accepted connections
    /// inherit it.
    pub fn set_keepalive(&self, idle: Option<Duration>) {
        for set in lock(&self.sets).values() {
            for s in &set.copies {
                if let Err(e) = hasocks_net::sock::set_keepalive(s, idle) {
                    tracing::warn!("cannot set TCP keepalive on {}: {e}", set.bound);
                }
            }
        }
    }

    /// Applies each relay's `protocol` options to its listeners, kept ones too (a reload may
    /// have changed them): the backlog, and the socket options accepted connections inherit.
    pub fn set_tcp(&self, gen: &Generation) {
        for (key, set) in lock(&self.sets).iter() {
            if let Some(relay) = gen.by_listen.get(key) {
                tune_listeners(relay, set.bound, &set.copies);
            }
        }
    }

    /// Whether `key` has a started set.
    pub fn has(&self, key: &ListenKey) -> bool {
        lock(&self.sets).contains_key(key)
    }

    /// Each address's actual bound address (port 0 in the config gets a real one).
    pub fn bound(&self) -> BTreeMap<ListenKey, SocketAddr> {
        lock(&self.sets)
            .iter()
            .map(|(k, s)| (k.clone(), s.bound))
            .collect()
    }

    /// Copies of every set's sockets, for a successor process.
    pub fn copies(&self) -> Vec<(ListenKey, Vec<TcpListener>)> {
        lock(&self.sets)
            .iter()
            .map(|(k, set)| {
                let socks = set.copies.iter().filter_map(|s| s.try_clone().ok());
                (k.clone(), socks.collect())
            })
            .collect()
    }
}

/// Sets `relay`'s protocol options on its listening sockets `socks` (bound to `bound`):
/// the backlog (default [`LISTEN_BACKLOG`](hasocks_net::sock::LISTEN_BACKLOG)) and the
/// options accepted connections inherit, TCP_NODELAY on unless the protocol says `no
/// nodelay`, no minimum TTL unless it says `ip minttl`. Failures are logged: the relay runs on with the sockets' previous options.
pub(crate) fn tune_listeners(relay: &RelayGen, bound: SocketAddr, socks: &[TcpListener]) {
    let mut tuning = relay.tuning();
    // Unset options go back to their defaults on a kept listener whose relay dropped them
    // at a reload (the buffer sizes and TTL cannot be unset: they stay until a restart).
    tuning.nodelay = Some(tuning.nodelay.unwrap_or(true));
    tuning.min_ttl = Some(tuning.min_ttl.unwrap_or(0));
    let backlog = relay
        .tcp
        .backlog
        .unwrap_or(hasocks_net::sock::LISTEN_BACKLOG.unsigned_abs());
    for s in socks {
        let r = hasocks_net::sock::set_backlog(s, backlog)
            .and_then(|()| hasocks_net::sock::tune(s, &tuning));
        if let Err(e) = r {
            tracing::warn!(
                "relay {}: cannot set the protocol's TCP options on {bound}: {e}",
                relay.record.name
            );
        }
    }
}

/// Which worker accepts on which socket: one each when the counts match; otherwise every
/// worker accepts on every socket (copies), so that no socket of a handed-over group is left
/// without an accept loop while the kernel still queues connections on it.
pub(crate) fn assign(socks: Vec<TcpListener>, workers: usize) -> Vec<(usize, TcpListener)> {
    if socks.len() == workers {
        return socks.into_iter().enumerate().collect();
    }
    let mut out = Vec::new();
    for s in &socks {
        for w in 0..workers {
            if let Ok(c) = s.try_clone() {
                out.push((w, c));
            }
        }
    }
    out
}

//! A pool per table instance (`table:port`) of a generation, in the style of Pingora's
//! `pingora-load-balancing`: the table's hosts, each with its long-lived record (health,
//! counters, disabled/draining); their health checks (`health`, `checks`); selection as a
//! lazy iterator in the mode's order ([`select`]); and the session's connect step with its
//! classified errors, counted per host (`connect`).
//!
//! A pool belongs to one generation and is immutable; what changes (health, counters, flags)
//! lives in the records, which a reload carries over by key.

pub(crate) mod checks;
pub(crate) mod connect;
mod glob;
pub(crate) mod health;
mod rendezvous;
pub mod select;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hasocks_conf::relayd::Check;
use tokio::sync::{watch, Notify};

use crate::error::RelayError;
use crate::records::{Claimed, HostKey, HostRecord, Records, TableRecord};
use hasocks_ctl_proto::relay::HostState;
use select::{HostSet, Selector};

/// Lower bound of the outgoing connect timeout. The connect timeout is the table's check
/// timeout, but at least this: relayd's 200 ms check default is far too short for a connect
/// that may need one SYN retransmission.
pub(crate) const MIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A host of a pool.
#[derive(Debug)]
pub(crate) struct PoolHost {
    pub record: Arc<HostRecord>,
    pub addr: SocketAddr,
    pub retry: u32,
    /// Its identity for hashing.
    pub key: select::HostKey,
}

/// One table instance (`name:port`) in one generation.
#[derive(Debug)]
pub(crate) struct Pool {
    pub record: Arc<TableRecord>,
    /// `table:port`.
    pub name: String,
    /// `disable` in the config.
    pub disabled: bool,
    pub check: Option<Check>,
    pub interval: Duration,
    pub timeout: Duration,
    pub hosts: Vec<PoolHost>,
    /// A relay using this table sends PROXY v2: checks then send a LOCAL header first.
    pub proxy_local: bool,
    /// True once every checked host has a verdict (or the first round is done).
    pub ready: watch::Sender<bool>,
    /// Wakes the checker for an immediate round (`poll`, `enable`).
    pub poll: Notify,
}

/// What a pool is built from: a table as configured and the `forward to` line that names it.
pub(crate) struct PoolSpec<'a> {
    /// `table:port`.
    pub name: String,
    pub table: &'a hasocks_conf::relayd::Table,
    pub forward: &'a hasocks_conf::relayd::Forward,
    /// Some relay using it sends PROXY v2.
    pub proxy_local: bool,
}

impl Pool {
    /// Builds the pool of `spec`, with host addresses from `addr_of`, taking the hosts'
    /// records from `records` (by key) into `claimed`: the registry is untouched.
    pub fn build(
        spec: PoolSpec<'_>,
        addr_of: &dyn Fn(&str, u16) -> Result<SocketAddr, RelayError>,
        records: &Records,
        claimed: &mut Claimed,
    ) -> Result<Pool, RelayError> {
        let (t, f) = (spec.table, spec.forward);
        let checked = f.check.is_some();
        let initial = if checked {
            HostState::Unknown
        } else {
            HostState::Up
        };
        let mut hosts = Vec::with_capacity(t.hosts.len());
        for h in &t.hosts {
            let addr = addr_of(&h.name, h.port.unwrap_or(f.port))?;
            let key = HostKey {
                table: spec.name.clone(),
                name: h.name.clone(),
                port: addr.port(),
            };
            let record = records.host(claimed, key, initial);
            if !checked && record.health() != HostState::Up {
                // A table without checks has every host up, whatever it was; applied only if
                // this generation is published.
                claimed.force_up.push(record.clone());
            }
            hosts.push(PoolHost {
                key: select::HostKey {
                    name: h.name.clone(),
                    port: addr.port(),
                },
                record,
                addr,
                retry: h.retry,
            });
        }
        let interval_s = f.interval_s.unwrap_or(t.interval_s).max(1);
        let timeout_ms = f.timeout_ms.unwrap_or(t.timeout_ms).max(1);
        let known = hosts
            .iter()
            .all(|h| h.record.health() != HostState::Unknown);
        Ok(Pool {
            record: records.table(claimed, &spec.name),
            name: spec.name,
            disabled: t.disabled,
            check: f.check.clone(),
            interval: Duration::from_secs(u64::from(interval_s)),
            timeout: Duration::from_millis(u64::from(timeout_ms)),
            hosts,
            proxy_local: spec.proxy_local,
            ready: watch::channel(t.disabled || !checked || known).0,
            poll: Notify::new(),
        })
    }

    /// Disabled by the config or the control socket.
    pub fn is_disabled(&self) -> bool {
        self.disabled || self.record.disabled.load(Ordering::Relaxed)
    }

    /// Enabled, with a host that takes sessions.
    pub fn serving(&self) -> bool {
        !self.is_disabled() && self.hosts.iter().any(|h| h.record.takes_traffic())
    }

    /// The PROXY header checks send first, if any.
    pub fn check_preamble(&self) -> Vec<u8> {
        if self.proxy_local {
            hasocks_net::proxy::encode_v2_local()
        } else {
            Vec::new()
        }
    }
}

impl HostSet for Pool {
    fn len(&self) -> usize {
        self.hosts.len()
    }

    fn key(&self, i: usize) -> Option<&select::HostKey> {
        self.hosts.get(i).map(|h| &h.key)
    }

    fn takes_traffic(&self, i: usize) -> bool {
        self.hosts.get(i).is_some_and(|h| h.record.takes_traffic())
    }

    fn open(&self, i: usize) -> u64 {
        self.hosts
            .get(i)
            .map_or(u64::MAX, |h| h.record.open.load(Ordering::Relaxed))
    }
}

/// A `forward to` line: a pool and how a relay picks from it.
#[derive(Debug)]
pub(crate) struct Forward {
    pub pool: Arc<Pool>,
    pub selector: Selector,
    pub connect_timeout: Duration,
}

/// The hosts a session tries, lazily: the first enabled pool's in its forward's order, then
/// the later (backup) pools'.
pub(crate) fn candidates(
    forwards: &[Forward],
    client: IpAddr,
    listen: SocketAddr,
) -> impl Iterator<Item = (&Forward, &PoolHost)> {
    forwards
        .iter()
        .filter(|f| !f.pool.is_disabled())
        .flat_map(move |f| {
            f.selector
                .select(&*f.pool, client, listen)
                .filter_map(move |i| f.pool.hosts.get(i).map(|h| (f, h)))
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A host of a test pool, at `addr`, up.
    pub(crate) fn pool_host(addr: SocketAddr) -> PoolHost {
        let key = HostKey {
            table: "t:1".into(),
            name: addr.ip().to_string(),
            port: addr.port(),
        };
        PoolHost {
            record: Arc::new(HostRecord::new(1, key, HostState::Up)),
            addr,
            retry: 0,
            key: select::HostKey {
                name: addr.ip().to_string(),
                port: addr.port(),
            },
        }
    }

    fn pool(name: &str, ports: &[u16], disabled: bool) -> Pool {
        Pool {
            record: Arc::new(TableRecord {
                id: 1,
                disabled: Default::default(),
            }),
            name: name.into(),
            disabled,
            check: None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            hosts: ports
                .iter()
                .map(|p| pool_host(SocketAddr::from(([127, 0, 0, 1], *p))))
                .collect(),
            proxy_local: false,
            ready: watch::channel(true).0,
            poll: Notify::new(),
        }
    }

    fn forward(p: Pool) -> Forward {
        Forward {
            pool: Arc::new(p),
            selector: Selector::new(&hasocks_conf::relayd::Mode::RoundRobin),
            connect_timeout: MIN_CONNECT_TIMEOUT,
        }
    }

    #[test]
    fn backups_come_after_the_primary_pool_and_disabled_pools_give_none() {
        let fw = [
            forward(pool("a:1", &[1, 2], false)),
            forward(pool("off:1", &[3], true)),
            forward(pool("b:1", &[4], false)),
        ];
        if let Some(h) = fw.first().and_then(|f| f.pool.hosts.first()) {
            h.record.draining.store(true, Ordering::Relaxed);
        }
        let client = IpAddr::from([10, 0, 0, 1]);
        let listen = SocketAddr::from(([127, 0, 0, 1], 1080));
        let got: Vec<(String, u16)> = candidates(&fw, client, listen)
            .map(|(f, h)| (f.pool.name.clone(), h.addr.port()))
            .collect();
        assert_eq!(got, [("a:1".to_string(), 2), ("b:1".to_string(), 4)]);
    }
}

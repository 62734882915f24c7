//! A config generation: everything compiled from one relayd.conf (relays, their forwards and
//! modes, tables, checks, timeouts), immutable once built. An accept loads the current one
//! and keeps it for the whole session; a reload builds a new one beside it, carries the
//! long-lived records over by key, and swaps one pointer.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hasocks_conf::relayd::{LogConnections, RelaydConfig, TcpOptions};
use tokio_util::sync::CancellationToken;

use crate::error::RelayError;
use crate::pool::select::Selector;
use crate::pool::{Forward, Pool, PoolHost, PoolSpec, MIN_CONNECT_TIMEOUT};
use crate::records::{Claimed, Records, RelayRecord};

/// What identifies a listener across generations: its configured address; an address with
/// port 0 (an ephemeral port, for tests and `hasocks up`) is one listener per relay and line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ListenKey {
    /// The configured address (the hash input of `loadbalance` and `hash`).
    pub addr: SocketAddr,
    /// For port 0: the relay and the index of its `listen on` line.
    pub ephemeral: Option<(String, usize)>,
}

impl std::fmt::Display for ListenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.addr)
    }
}

/// A relay block in this generation.
#[derive(Debug)]
pub(crate) struct RelayGen {
    pub record: Arc<RelayRecord>,
    /// `disable` in the config.
    pub disabled: bool,
    /// Its pools, primary first, then backups.
    pub forwards: Vec<Forward>,
    pub idle_timeout: Option<Duration>,
    pub send_proxy_v2: bool,
    pub log: LogConnections,
    /// Configured listen addresses (resolved), in config order.
    pub listens: Vec<ListenKey>,
    /// How long a client may take to send its first byte (no host is contacted before it);
    /// None = connect at once.
    pub first_byte: Option<Duration>,
    /// Its `protocol`'s TCP options (defaults without one).
    pub tcp: TcpOptions,
}

impl RelayGen {
    /// The socket options of its `protocol`, for its listeners and its connects to hosts.
    pub fn tuning(&self) -> hasocks_net::sock::TcpTuning {
        hasocks_net::sock::TcpTuning {
            nodelay: self.tcp.nodelay,
            buffer: self.tcp.socket_buffer,
            ttl: self.tcp.ip_ttl,
            min_ttl: self.tcp.ip_minttl,
        }
    }

    /// Disabled by the config or the control socket.
    pub fn is_disabled(&self) -> bool {
        self.disabled || self.record.disabled.load(Ordering::Relaxed)
    }
}

/// A redirect block in this generation: the kernel forwards, this only says where.
#[derive(Debug)]
pub(crate) struct RedirectGen {
    /// Its long-lived record (id, the ctl's disable flag), keyed `redirect NAME`.
    pub record: Arc<RelayRecord>,
    pub name: String,
    /// `disable` in the config.
    pub disabled: bool,
    pub listens: Vec<hasocks_redirect::Listen>,
    /// Its pools, primary first, then backups.
    pub forwards: Vec<Forward>,
    pub placement: hasocks_redirect::Placement,
    /// `session timeout S`: conntrack's idle timeout for its established flows.
    pub session_timeout_s: u32,
    /// `file:line:col` of its keyword.
    pub at: String,
}

impl RedirectGen {
    /// Disabled by the config or the control socket.
    pub fn is_disabled(&self) -> bool {
        self.disabled || self.record.disabled.load(Ordering::Relaxed)
    }

    /// The plan's view of it, with the hosts' states now.
    pub fn plan(&self) -> hasocks_redirect::Redirect {
        use hasocks_redirect::{Host, Pool as PlanPool};
        let pools = self
            .forwards
            .iter()
            .map(|f| PlanPool {
                disabled: f.pool.is_disabled(),
                hosts: f
                    .pool
                    .hosts
                    .iter()
                    .filter_map(|h| match h.addr {
                        SocketAddr::V4(addr) => Some(Host {
                            addr,
                            key: h.key.clone(),
                            up: h.record.takes_traffic(),
                        }),
                        SocketAddr::V6(_) => None,
                    })
                    .collect(),
            })
            .collect();
        hasocks_redirect::Redirect {
            name: self.name.clone(),
            disabled: self.is_disabled(),
            listens: self.listens.clone(),
            pools,
            placement: self.placement.clone(),
            session_timeout_s: self.session_timeout_s,
        }
    }
}

/// How a redirect's mode places flows in the kernel.
fn placement(mode: &hasocks_conf::relayd::Mode, sticky: bool) -> hasocks_redirect::Placement {
    use hasocks_conf::relayd::Mode;
    use hasocks_redirect::Placement;
    let key = crate::pool::select::DEFAULT_KEY;
    match mode {
        Mode::SourceHash(k) => Placement::Buckets {
            key: k.unwrap_or(key),
            with_listen: false,
        },
        Mode::LoadBalance(k) => Placement::Buckets {
            key: k.unwrap_or(key),
            with_listen: true,
        },
        _ if sticky => Placement::Buckets {
            key,
            with_listen: false,
        },
        Mode::Random => Placement::Random,
        Mode::LeastStates => Placement::LeastStates {
            weights: Vec::new(),
        },
        _ => Placement::RoundRobin,
    }
}

/// One config generation.
#[derive(Debug)]
pub(crate) struct Generation {
    /// 1 for the config the relay started with, +1 per reload.
    pub number: u64,
    pub relays: Vec<Arc<RelayGen>>,
    /// Redirect blocks (the kernel data path).
    pub redirects: Vec<Arc<RedirectGen>>,
    /// `hasocks.redirect.on-exit keep`.
    pub redirect_keep: bool,
    /// Configured listen address -> the relay that owns it.
    pub by_listen: HashMap<ListenKey, Arc<RelayGen>>,
    /// The pools (table instances) in order of first use.
    pub tables: Vec<Arc<Pool>>,
    /// `log host checks`.
    pub log_host_checks: bool,
    /// `prefork` as configured (workers are started once, at start).
    pub prefork: Option<u32>,
    /// Cancels this generation's checkers when a newer one takes over.
    pub checks: CancellationToken,
}

impl Generation {
    /// The generation before any config: nothing to serve.
    pub fn empty() -> Generation {
        Generation {
            number: 0,
            relays: Vec::new(),
            redirects: Vec::new(),
            redirect_keep: false,
            by_listen: HashMap::new(),
            tables: Vec::new(),
            log_host_checks: false,
            prefork: None,
            checks: CancellationToken::new(),
        }
    }

    /// Every host of every table, once per table it is in.
    pub fn hosts(&self) -> impl Iterator<Item = (&Arc<Pool>, &PoolHost)> {
        self.tables
            .iter()
            .flat_map(|t| t.hosts.iter().map(move |h| (t, h)))
    }
}

/// Addresses resolved ahead of building, keyed by (name as written, port).
pub(crate) type Resolved = HashMap<(String, u16), SocketAddr>;

/// The table a relay forwards to, by name.
fn table_of<'a>(
    cfg: &'a RelaydConfig,
    relay: &str,
    table: &str,
) -> Result<&'a hasocks_conf::relayd::Table, RelayError> {
    cfg.tables
        .iter()
        .find(|t| t.name == table)
        .ok_or_else(|| RelayError::NoSuchTable {
            relay: relay.to_string(),
            table: table.to_string(),
        })
}

/// Resolves every listen and host address of `cfg` (before anything changes).
pub(crate) async fn resolve_all(cfg: &RelaydConfig) -> Result<Resolved, RelayError> {
    let mut out = Resolved::new();
    let mut want: Vec<(String, u16)> = Vec::new();
    for r in &cfg.relays {
        want.extend(r.listens.iter().map(|l| (l.addr.clone(), l.port)));
        for f in &r.forwards {
            let table = table_of(cfg, &r.name, &f.table)?;
            want.extend(
                table
                    .hosts
                    .iter()
                    .map(|h| (h.name.clone(), h.port.unwrap_or(f.port))),
            );
        }
    }
    for r in &cfg.redirects {
        want.extend(
            r.listens
                .iter()
                .map(|l| (l.listen.addr.clone(), l.listen.port)),
        );
        for f in &r.forwards {
            let table = table_of(cfg, &r.name, &f.table)?;
            want.extend(
                table
                    .hosts
                    .iter()
                    .map(|h| (h.name.clone(), h.port.unwrap_or(f.port))),
            );
        }
    }
    for key in want {
        if let std::collections::hash_map::Entry::Vacant(slot) = out.entry(key) {
            let (name, port) = slot.key();
            let addr = resolve(name, *port).await?;
            slot.insert(addr);
        }
    }
    Ok(out)
}

/// Resolves an address as written (`*` = every IPv4 address) to its first socket address.
pub(crate) async fn resolve(name: &str, port: u16) -> Result<SocketAddr, RelayError> {
    if name == "*" {
        return Ok(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
    }
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let err = |reason: String| RelayError::Resolve {
        name: name.to_string(),
        reason,
    };
    tokio::net::lookup_host((name, port))
        .await
        .map_err(|e| err(e.to_string()))?
        .next()
        .ok_or_else(|| err("no address".to_string()))
}

/// Builds generation `number` from `cfg` with addresses from `resolved`, taking records from
/// `records` into `claimed` (the registry itself is untouched until the generation is
/// published).
pub(crate) fn build(
    cfg: &RelaydConfig,
    resolved: &Resolved,
    records: &Records,
    number: u64,
) -> Result<(Generation, Claimed), RelayError> {
    let addr_of = |name: &str, port: u16| {
        resolved
            .get(&(name.to_string(), port))
            .copied()
            .ok_or_else(|| RelayError::Resolve {
                name: name.to_string(),
                reason: "not resolved".to_string(),
            })
    };
    // Which table instances some PROXY-sending relay uses: their checks send a LOCAL header.
    let proxied: Vec<String> = cfg
        .relays
        .iter()
        .filter(|r| r.send_proxy_v2)
        .flat_map(|r| r.forwards.iter().map(|f| format!("{}:{}", f.table, f.port)))
        .collect();
    let mut claimed = Claimed::default();
    let mut tables: Vec<Arc<Pool>> = Vec::new();
    let mut relays = Vec::new();
    let mut by_listen: HashMap<ListenKey, Arc<RelayGen>> = HashMap::new();
    for r in &cfg.relays {
        let mut forwards = Vec::new();
        for f in &r.forwards {
            let name = format!("{}:{}", f.table, f.port);
            let pool = match tables.iter().find(|t| t.name == name) {
                Some(t) => t.clone(),
                None => {
                    let spec = PoolSpec {
                        proxy_local: proxied.contains(&name),
                        name,
                        table: table_of(cfg, &r.name, &f.table)?,
                        forward: f,
                    };
                    let pool = Arc::new(Pool::build(spec, &addr_of, records, &mut claimed)?);
                    tables.push(pool.clone());
                    pool
                }
            };
            forwards.push(Forward {
                connect_timeout: pool.timeout.max(MIN_CONNECT_TIMEOUT),
                pool,
                selector: Selector::new(&f.mode),
            });
        }
        let mut listens = Vec::new();
        for (i, l) in r.listens.iter().enumerate() {
            let addr = addr_of(&l.addr, l.port)?;
            let key = ListenKey {
                addr,
                ephemeral: (addr.port() == 0).then(|| (r.name.clone(), i)),
            };
            if !listens.contains(&key) {
                listens.push(key);
            }
        }
        let rg = Arc::new(RelayGen {
            record: records.relay(&mut claimed, &r.name),
            disabled: r.disabled,
            forwards,
            idle_timeout: (r.session_timeout_s > 0)
                .then(|| Duration::from_secs(u64::from(r.session_timeout_s))),
            send_proxy_v2: r.send_proxy_v2,
            log: cfg.log_connections,
            listens: listens.clone(),
            first_byte: Some(r.first_byte_timeout_s.unwrap_or(cfg.first_byte_timeout_s))
                .filter(|s| *s > 0)
                .map(|s| Duration::from_secs(u64::from(s))),
            tcp: r.tcp,
        });
        for a in listens {
            if let Some(other) = by_listen.get(&a) {
                return Err(RelayError::SharedListen {
                    addr: a.addr,
                    first: other.record.name.clone(),
                    second: r.name.clone(),
                });
            }
            by_listen.insert(a, rg.clone());
        }
        relays.push(rg);
    }
    let mut redirects = Vec::new();
    for r in &cfg.redirects {
        let bad = |reason: String| RelayError::Redirect {
            at: r.at.clone(),
            name: r.name.clone(),
            reason,
        };
        let mut forwards = Vec::new();
        for f in &r.forwards {
            let name = format!("{}:{}", f.table, f.port);
            let pool = match tables.iter().find(|t| t.name == name) {
                Some(t) => t.clone(),
                None => {
                    let spec = PoolSpec {
                        proxy_local: proxied.contains(&name),
                        name,
                        table: table_of(cfg, &r.name, &f.table)?,
                        forward: f,
                    };
                    let pool = Arc::new(Pool::build(spec, &addr_of, records, &mut claimed)?);
                    tables.push(pool.clone());
                    pool
                }
            };
            if let Some(h) = pool.hosts.iter().find(|h| !h.addr.is_ipv4()) {
                return Err(bad(format!(
                    "host {} is not an IPv4 address: redirects are IPv4 only",
                    h.record.key.name
                )));
            }
            forwards.push(Forward {
                connect_timeout: pool.timeout.max(MIN_CONNECT_TIMEOUT),
                pool,
                selector: Selector::new(&f.mode),
            });
        }
        let mut listens = Vec::new();
        for l in &r.listens {
            match addr_of(&l.listen.addr, l.listen.port)? {
                SocketAddr::V4(addr) if !addr.ip().is_unspecified() => {
                    listens.push(hasocks_redirect::Listen {
                        addr,
                        interface: l.interface.clone(),
                    })
                }
                other => {
                    return Err(bad(format!(
                        "listen on {other}: a redirect needs one IPv4 address"
                    )))
                }
            }
        }
        let mode = r
            .forwards
            .first()
            .map(|f| f.mode.clone())
            .unwrap_or_default();
        redirects.push(Arc::new(RedirectGen {
            record: records.relay(&mut claimed, &format!("redirect {}", r.name)),
            name: r.name.clone(),
            disabled: r.disabled,
            listens,
            forwards,
            placement: placement(&mode, r.sticky),
            session_timeout_s: r.session_timeout_s,
            at: r.at.clone(),
        }));
    }
    Ok((
        Generation {
            number,
            relays,
            redirects,
            redirect_keep: cfg.redirect_keep_on_exit,
            by_listen,
            tables,
            log_host_checks: cfg.log_host_checks,
            prefork: cfg.prefork,
            checks: CancellationToken::new(),
        },
        claimed,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hasocks_conf::relayd::Mode;
    use hasocks_redirect::Placement;

    #[test]
    fn redirect_modes_become_kernel_placements() {
        let key = crate::pool::select::DEFAULT_KEY;
        let k = Some([9u8; 16]);
        assert_eq!(
            placement(&Mode::SourceHash(k), false),
            Placement::Buckets {
                key: [9; 16],
                with_listen: false
            }
        );
        assert_eq!(
            placement(&Mode::LoadBalance(None), false),
            Placement::Buckets {
                key,
                with_listen: true
            }
        );
        assert_eq!(placement(&Mode::RoundRobin, false), Placement::RoundRobin);
        assert_eq!(
            placement(&Mode::LeastStates, false),
            Placement::LeastStates {
                weights: Vec::new()
            }
        );
        assert_eq!(placement(&Mode::Random, false), Placement::Random);
        // sticky-address keeps a client on its host whatever the mode.
        assert_eq!(
            placement(&Mode::Random, true),
            Placement::Buckets {
                key,
                with_listen: false
            }
        );
    }

    #[test]
    fn a_redirect_to_an_ipv6_host_or_listen_is_refused_naming_it() {
        let text = "table <t> { 2001:db8::1 }\nredirect r {\n listen on 192.0.2.1 port 1080\n forward to <t>\n}\n";
        let cfg = hasocks_conf::relayd::parse(text, std::path::Path::new("x.conf"), &[]).unwrap();
        let mut resolved = Resolved::new();
        resolved.insert(
            ("2001:db8::1".into(), 1080),
            "[2001:db8::1]:1080".parse().unwrap(),
        );
        resolved.insert(
            ("192.0.2.1".into(), 1080),
            "192.0.2.1:1080".parse().unwrap(),
        );
        let e = build(&cfg, &resolved, &Records::default(), 1).unwrap_err();
        let m = e.to_string();
        assert!(m.starts_with("x.conf:2:1: redirect r:"), "{m}");
        assert!(m.contains("IPv4 only"), "{m}");
    }
}

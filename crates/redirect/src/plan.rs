//! The ruleset as a pure function of the redirects and their hosts' states, tested without
//! the kernel. Two scripts, each one transaction (so the kernel never sees a half-written
//! map): [`Table::script`] writes the `inet hasocks` table anew, and [`Table::update_script`]
//! rewrites its rules and maps but keeps the table and its `ct timeout` objects. Deleting a
//! timeout object strips it from every flow that uses it, so replacing the table on each
//! check verdict would put established flows back on conntrack's default timeout (5 days).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddrV4};

use hasocks_probe::placement::{score, HostKey};

use crate::{jhash, states};

/// The table hasocks owns; nothing else on the machine is touched.
pub const TABLE: &str = "inet hasocks";

/// Buckets of a hash placement: enough that one host's share moves in small steps, few
/// enough that a whole map is rewritten in a few milliseconds.
pub const BUCKETS: u32 = 4096;

/// The longest idle time conntrack can hold for a flow: the kernel keeps a flow's timeout
/// in 32-bit jiffies and compares it as signed, so at HZ=1000 about 24.8 days fit.
/// `session timeout 0` (relayd: no limit) and larger values get this.
pub const MAX_SESSION_TIMEOUT_S: u32 = 2_000_000;

/// A host of a redirect's table, as the checks see it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Where the kernel sends its clients.
    pub addr: SocketAddrV4,
    /// Its rendezvous identity (the same as the relay's, so placements agree).
    pub key: HostKey,
    /// Takes new sessions (checked up, not disabled).
    pub up: bool,
}

/// A `forward to <table>` of a redirect: its hosts; later ones are backups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// Table disabled (config or ctl).
    pub disabled: bool,
    /// Its hosts in table order.
    pub hosts: Vec<Host>,
}

/// How a redirect spreads new flows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// `source-hash`, `loadbalance`, `sticky-address`: a bucket map filled by rendezvous over
    /// the bucket of the client's address; `with_listen` adds the listen address to the
    /// input, as `loadbalance` does in a relay.
    Buckets {
        /// The mode's key.
        key: [u8; 16],
        /// `loadbalance`: the listen address and port are hashed too.
        with_listen: bool,
    },
    /// `roundrobin`: the kernel's counter.
    RoundRobin,
    /// `least-states`: the kernel's counter over a map weighted by the hosts' conntrack
    /// counts ([`crate::states`]); `weights` are those of the active pool's up hosts, set by
    /// [`weigh`] (a host missing from it has weight 1: plain round robin until counted).
    LeastStates {
        /// Host and weight.
        weights: Vec<(SocketAddrV4, u32)>,
    },
    /// `random`: the kernel's random numbers.
    Random,
}

/// One listen address of a redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// The address and port clients connect to.
    pub addr: SocketAddrV4,
    /// `interface IF`: only packets coming in there.
    pub interface: Option<String>,
}

/// A redirect block in the running config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// Its name (in comments only: nft names are ours).
    pub name: String,
    /// Disabled (config or ctl): no rule.
    pub disabled: bool,
    /// `listen on` lines.
    pub listens: Vec<Listen>,
    /// Primary pool, then backups.
    pub pools: Vec<Pool>,
    /// The mode.
    pub placement: Placement,
    /// `session timeout S`: the idle time after which conntrack forgets an established
    /// flow (0: as long as conntrack can, [`MAX_SESSION_TIMEOUT_S`]).
    pub session_timeout_s: u32,
}

/// The established-flow timeout the kernel is given for `session timeout s`.
pub fn conntrack_timeout(s: u32) -> u32 {
    if s == 0 {
        MAX_SESSION_TIMEOUT_S
    } else {
        s.min(MAX_SESSION_TIMEOUT_S)
    }
}

/// The hash seed of a key: its first four bytes (the kernel hashes with a 32-bit seed).
pub fn seed(key: &[u8; 16]) -> u32 {
    u32::from_be_bytes([key[0], key[1], key[2], key[3]])
}

/// The bucket the kernel's `jhash ip saddr mod BUCKETS seed seed(key)` gives `client`; IPv6
/// clients hash their 16 bytes (`ip6 saddr`), mapped IPv4 its 4.
pub fn bucket_of(client: IpAddr, key: &[u8; 16]) -> u16 {
    let b = match client.to_canonical() {
        IpAddr::V4(v4) => jhash::bucket(&v4.octets(), seed(key), BUCKETS),
        IpAddr::V6(v6) => jhash::bucket(&v6.octets(), seed(key), BUCKETS),
    };
    u16::try_from(b).unwrap_or(0)
}

/// The rendezvous input of a bucket: its number big-endian, then (loadbalance) the listen
/// address and port; the relay's hash modes hash the very same bytes.
pub fn bucket_input(bucket: u16, listen: Option<SocketAddrV4>) -> Vec<u8> {
    let mut v = bucket.to_be_bytes().to_vec();
    if let Some(l) = listen {
        v.extend_from_slice(&l.ip().octets());
        v.extend_from_slice(&l.port().to_be_bytes());
    }
    v
}

/// The pool a redirect sends new flows to: the first enabled one with a host up (later
/// `forward to` lines are backups, used whole, as in relayd).
pub fn active_pool(r: &Redirect) -> Option<&Pool> {
    r.pools
        .iter()
        .find(|p| !p.disabled && p.hosts.iter().any(|h| h.up))
}

/// The best up host of `pool` for rendezvous input `input` under `key` (ties: table order).
pub fn best<'a>(pool: &'a Pool, key: &[u8; 16], input: &[u8]) -> Option<&'a Host> {
    let mut best: Option<(u64, usize)> = None;
    for (i, h) in pool.hosts.iter().enumerate() {
        if !h.up {
            continue;
        }
        let s = score(key, input, &h.key);
        if best.is_none_or(|(bs, bi)| s > bs || (s == bs && i < bi)) {
            best = Some((s, i));
        }
    }
    best.and_then(|(_, i)| pool.hosts.get(i))
}

/// Whether `r` weighs its hosts by their conntrack states (so the relay must count them).
pub fn counts_states(r: &Redirect) -> bool {
    !r.disabled && matches!(r.placement, Placement::LeastStates { .. })
}

/// Sets a least-states redirect's weights from `counts` (live flows per host, summed over
/// its listens): the active pool's up hosts only, a host not counted has 0 states. Other
/// placements are left alone.
pub fn weigh(r: &mut Redirect, counts: &BTreeMap<SocketAddrV4, u32>) {
    if !matches!(r.placement, Placement::LeastStates { .. }) {
        return;
    }
    let up: Vec<SocketAddrV4> = active_pool(r)
        .map(|p| p.hosts.iter().filter(|h| h.up).map(|h| h.addr).collect())
        .unwrap_or_default();
    let c: Vec<u32> = up
        .iter()
        .map(|a| counts.get(a).copied().unwrap_or(0))
        .collect();
    let w = states::weights(&c);
    r.placement = Placement::LeastStates {
        weights: up.into_iter().zip(w).collect(),
    };
}

/// The bucket map of one listen: host per bucket (None: no host up).
pub fn bucket_map(pool: &Pool, key: &[u8; 16], listen: Option<SocketAddrV4>) -> Vec<SocketAddrV4> {
    (0..BUCKETS)
        .filter_map(|b| {
            let b = u16::try_from(b).ok()?;
            best(pool, key, &bucket_input(b, listen)).map(|h| h.addr)
        })
        .collect()
}

/// The parts of the table that depend on the redirects, computed once (the bucket maps
/// take 4096 x hosts hashes) and written by [`Table::script`] or [`Table::update_script`].
#[derive(Debug, Default)]
pub struct Table {
    /// `ct timeout` objects, one per distinct timeout.
    timeouts: String,
    /// Named bucket maps.
    maps: String,
    /// Rules of the prerouting chain (clients from other machines).
    pre: String,
    /// Rules of the output chain (clients on this machine: tests, checks).
    out: String,
}

const PREROUTING: &str = "type nat hook prerouting priority dstnat; policy accept;";
const OUTPUT: &str = "type nat hook output priority -100; policy accept;";

/// The table for `redirects`.
pub fn table(redirects: &[Redirect]) -> Table {
    let mut b = Table::default();
    let mut timeouts = std::collections::BTreeSet::new();
    for (ri, r) in redirects.iter().enumerate() {
        if r.disabled {
            continue;
        }
        let Some(pool) = active_pool(r) else {
            continue;
        };
        let timeout = conntrack_timeout(r.session_timeout_s);
        timeouts.insert(timeout);
        for (li, l) in r.listens.iter().enumerate() {
            let matcher = format!("ip daddr {} tcp dport {}", l.addr.ip(), l.addr.port());
            let target = match &r.placement {
                Placement::Buckets { key, with_listen } => {
                    let name = format!("r{ri}_{li}");
                    let s = seed(key);
                    let hosts = bucket_map(pool, key, with_listen.then_some(l.addr));
                    // Declared by a numgen of the same type (32-bit integer), not by `typeof
                    // jhash ...`: Debian 12's nft (1.0.6) crashes printing a jhash typeof, which
                    // would break `nft list ruleset` for the whole machine.
                    let _ = write!(
                        b.maps,
                        "\tmap {name} {{\n\t\ttypeof numgen random mod {BUCKETS} : ip daddr . tcp dport\n\t\tcomment \"redirect {}: bucket (jhash ip saddr mod {BUCKETS} seed 0x{s:08x}) to host\"\n",
                        quote(&r.name)
                    );
                    if !hosts.is_empty() {
                        b.maps.push_str("\t\telements = { ");
                        for (i, h) in hosts.iter().enumerate() {
                            let sep = if i == 0 { "" } else { ", " };
                            let _ = write!(b.maps, "{sep}{i} : {} . {}", h.ip(), h.port());
                        }
                        b.maps.push_str(" }\n");
                    }
                    b.maps.push_str("\t}\n");
                    format!("jhash ip saddr mod {BUCKETS} seed 0x{s:08x} map @{name}")
                }
                Placement::LeastStates { weights } => {
                    let up: Vec<&Host> = pool.hosts.iter().filter(|h| h.up).collect();
                    let w: Vec<u32> = up
                        .iter()
                        .map(|h| {
                            weights
                                .iter()
                                .find(|(a, _)| *a == h.addr)
                                .map_or(1, |(_, w)| *w)
                        })
                        .collect();
                    let seq = states::slots(&w);
                    let elems: Vec<String> = seq
                        .iter()
                        .enumerate()
                        .filter_map(|(i, &h)| {
                            let h = up.get(h)?;
                            Some(format!("{i} : {} . {}", h.addr.ip(), h.addr.port()))
                        })
                        .collect();
                    format!(
                        "numgen inc mod {} map {{ {} }}",
                        elems.len(),
                        elems.join(", ")
                    )
                }
                Placement::RoundRobin | Placement::Random => {
                    let up: Vec<&Host> = pool.hosts.iter().filter(|h| h.up).collect();
                    let gen = if r.placement == Placement::Random {
                        "random"
                    } else {
                        "inc"
                    };
                    let elems: Vec<String> = up
                        .iter()
                        .enumerate()
                        .map(|(i, h)| format!("{i} : {} . {}", h.addr.ip(), h.addr.port()))
                        .collect();
                    format!(
                        "numgen {gen} mod {} map {{ {} }}",
                        up.len(),
                        elems.join(", ")
                    )
                }
            };
            let iif = l
                .interface
                .as_ref()
                .map(|i| format!("iifname \"{}\" ", quote(i)))
                .unwrap_or_default();
            // Only a flow's first packet reaches a nat chain, while its conntrack entry is
            // not yet confirmed: the one moment a timeout object can be attached.
            let rule = format!(
                "{matcher} ct timeout set \"{}\" dnat ip to {target}",
                timeout_name(timeout)
            );
            let name = quote(&r.name);
            let _ = writeln!(b.pre, "\t\t{iif}{rule} comment \"{name}\"");
            let _ = writeln!(b.out, "\t\t{rule} comment \"{name} (local clients)\"");
        }
    }
    for t in timeouts {
        let _ = write!(
            b.timeouts,
            "\tct timeout {} {{\n\t\tprotocol tcp\n\t\tl3proto ip\n\t\tpolicy = {{ established: {t} }}\n\t}}\n",
            timeout_name(t)
        );
    }
    b
}

/// The name of the `ct timeout` object for `seconds`: objects are never rewritten, a new
/// value gets a new object.
fn timeout_name(seconds: u32) -> String {
    format!("session{seconds}")
}

impl Table {
    /// The whole nft script: creates the table if missing, deletes it, and writes it anew, in
    /// one transaction. For a table that is not there yet; flows tracked under an old table
    /// lose their session timeout.
    pub fn script(&self) -> String {
        format!(
            "table {TABLE} {{}}\ndelete table {TABLE}\ntable {TABLE} {{\n\tcomment \"hasocks redirects (written by hasocks relay)\"\n{}{}\tchain prerouting {{\n\t\t{PREROUTING}\n{}\t}}\n\tchain output {{\n\t\t{OUTPUT}\n{}\t}}\n}}\n",
            self.timeouts, self.maps, self.pre, self.out
        )
    }

    /// The nft script that brings an existing table here in one transaction: flushes the
    /// two chains, deletes the maps the table has now (`existing_maps`, see [`maps_in`]), and
    /// writes maps and rules anew. The `ct timeout` objects stay (adding one that exists
    /// changes nothing), so tracked flows keep theirs; an unused one stays until the table
    /// goes.
    pub fn update_script(&self, existing_maps: &[String]) -> String {
        let mut s = format!(
            "table {TABLE} {{\n\tchain prerouting {{\n\t\t{PREROUTING}\n\t}}\n\tchain output {{\n\t\t{OUTPUT}\n\t}}\n}}\nflush chain {TABLE} prerouting\nflush chain {TABLE} output\n"
        );
        for m in existing_maps {
            let _ = writeln!(s, "delete map {TABLE} {}", quote(m));
        }
        let _ = write!(
            s,
            "table {TABLE} {{\n{}{}\tchain prerouting {{\n{}\t}}\n\tchain output {{\n{}\t}}\n}}\n",
            self.timeouts, self.maps, self.pre, self.out
        );
        s
    }
}

/// [`Table::script`] of `redirects`.
pub fn script(redirects: &[Redirect]) -> String {
    table(redirects).script()
}

/// The names of the maps in our table, from `nft -j -t list table inet hasocks` (terse: no
/// elements). Anything unreadable yields none, and the update then fails and falls back to
/// [`Table::script`].
pub fn maps_in(listing_json: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(listing_json) else {
        return Vec::new();
    };
    let Some(items) = v.get("nftables").and_then(|n| n.as_array()) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|i| i.get("map"))
        .filter(|m| {
            m.get("table").and_then(|t| t.as_str()) == Some("hasocks")
                && m.get("family").and_then(|f| f.as_str()) == Some("inet")
        })
        .filter_map(|m| m.get("name").and_then(|n| n.as_str()).map(str::to_owned))
        .collect()
}

/// A string safe inside nft's double quotes.
fn quote(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

/// The script that removes our table (and nothing else).
pub fn remove_script() -> String {
    format!("table {TABLE} {{}}\ndelete table {TABLE}\n")
}

/// Hosts that were up in `before` and are not in `after` (by address): their conntrack
/// entries are to be deleted so their clients fail fast. Keyed by (listen, host).
pub fn gone(before: &[Redirect], after: &[Redirect]) -> Vec<(SocketAddrV4, SocketAddrV4)> {
    let serving = |rs: &[Redirect]| -> Vec<(SocketAddrV4, SocketAddrV4)> {
        rs.iter()
            .filter(|r| !r.disabled)
            .flat_map(|r| {
                let pool = active_pool(r);
                r.listens.iter().flat_map(move |l| {
                    pool.into_iter()
                        .flat_map(|p| p.hosts.iter().filter(|h| h.up))
                        .map(move |h| (l.addr, h.addr))
                })
            })
            .collect()
    };
    let now = serving(after);
    let mut out: Vec<_> = serving(before)
        .into_iter()
        .filter(|x| !now.contains(x))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn host(i: u8, up: bool) -> Host {
        Host {
            addr: SocketAddrV4::new(Ipv4Addr::new(10, 79, 2, i), 1080),
            key: HostKey {
                name: format!("10.79.2.{i}"),
                port: 1080,
            },
            up,
        }
    }

    fn redirect(states: &[bool], placement: Placement) -> Redirect {
        Redirect {
            name: "socks".into(),
            disabled: false,
            listens: vec![Listen {
                addr: SocketAddrV4::new(Ipv4Addr::new(10, 79, 1, 1), 1080),
                interface: None,
            }],
            pools: vec![Pool {
                disabled: false,
                hosts: states
                    .iter()
                    .enumerate()
                    .map(|(i, up)| host(i as u8 + 2, *up))
                    .collect(),
            }],
            placement,
            session_timeout_s: 600,
        }
    }

    const KEY: [u8; 16] = *b"hasocks-relay-v1";

    #[test]
    fn a_down_host_moves_only_its_own_buckets() {
        let all = redirect(
            &[true, true, true],
            Placement::Buckets {
                key: KEY,
                with_listen: false,
            },
        );
        let one_down = redirect(
            &[true, false, true],
            Placement::Buckets {
                key: KEY,
                with_listen: false,
            },
        );
        let a = bucket_map(&all.pools[0], &KEY, None);
        let b = bucket_map(&one_down.pools[0], &KEY, None);
        assert_eq!(a.len(), BUCKETS as usize);
        let down = host(3, false).addr;
        let mut moved = 0;
        for (x, y) in a.iter().zip(&b) {
            if *x == down {
                assert_ne!(y, &down);
                moved += 1;
            } else {
                assert_eq!(x, y);
            }
        }
        assert!(moved > 1000 && moved < 1700, "{moved}");
    }

    fn hashed() -> Placement {
        Placement::Buckets {
            key: KEY,
            with_listen: false,
        }
    }

    #[test]
    fn the_script_replaces_only_our_table_with_a_full_map() {
        let s = script(&[redirect(&[true, true], hashed())]);
        assert!(s.starts_with("table inet hasocks {}\ndelete table inet hasocks\n"));
        assert_eq!(s.matches("table ").count(), 3, "{s}");
        assert!(s.contains("ip daddr 10.79.1.1 tcp dport 1080 ct timeout set \"session600\" dnat ip to jhash ip saddr mod 4096 seed 0x6861736f map @r0_0"));
        assert!(s.contains("4095 : 10.79.2."));
        assert!(!s.contains("flush ruleset"));
        // Debian 12's nft crashes listing a map declared `typeof jhash`.
        assert!(!s.contains("typeof jhash"), "{s}");
    }

    #[test]
    fn each_session_timeout_gets_one_timeout_object_and_zero_means_the_longest() {
        let mut a = redirect(&[true, true], hashed());
        a.session_timeout_s = 30;
        let mut b = redirect(&[true], Placement::RoundRobin);
        b.name = "b".into();
        b.session_timeout_s = 0;
        let mut c = redirect(&[true], Placement::Random);
        c.session_timeout_s = 30;
        let s = script(&[a, b, c]);
        assert_eq!(s.matches("ct timeout session30 {").count(), 1, "{s}");
        assert!(s.contains("policy = { established: 30 }"));
        assert!(s.contains(&format!("ct timeout session{MAX_SESSION_TIMEOUT_S} {{")));
        assert_eq!(s.matches("ct timeout set \"session30\"").count(), 4, "{s}");
        assert_eq!(conntrack_timeout(u32::MAX), MAX_SESSION_TIMEOUT_S);
        assert_eq!(conntrack_timeout(600), 600);
    }

    #[test]
    fn an_update_keeps_the_table_and_its_timeouts_and_rewrites_rules_and_maps() {
        let r = redirect(&[true, false], hashed());
        let s = table(&[r]).update_script(&["r0_0".into(), "old".into()]);
        assert!(!s.contains("delete table"), "{s}");
        let flush = s
            .find("flush chain inet hasocks prerouting")
            .expect("flush");
        assert!(s.contains("flush chain inet hasocks output"));
        let del = s.find("delete map inet hasocks old").expect("delete");
        assert!(s.contains("delete map inet hasocks r0_0"));
        let add = s.find("\tmap r0_0 {").expect("map");
        let rule = s.find("ct timeout set \"session600\" dnat").expect("rule");
        assert!(flush < del && del < add && add < rule, "{s}");
        assert!(s.contains("ct timeout session600 {"));
        assert!(!s.contains("delete ct timeout"));
        assert!(s.contains("4095 : 10.79.2.2 . 1080"));
    }

    #[test]
    fn only_our_tables_maps_are_read_from_the_listing() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "inet", "name": "hasocks", "handle": 6}},
            {"ct timeout": {"family": "inet", "name": "session600", "table": "hasocks"}},
            {"map": {"family": "inet", "name": "r0_0", "table": "hasocks", "type": "integer"}},
            {"map": {"family": "ip", "name": "theirs", "table": "hasocks"}},
            {"map": {"family": "inet", "name": "r1_0", "table": "hasocks"}}]}"#;
        assert_eq!(maps_in(json), vec!["r0_0".to_string(), "r1_0".to_string()]);
        assert!(maps_in("garbage").is_empty());
        assert!(maps_in("{}").is_empty());
    }

    #[test]
    fn round_robin_counts_over_the_up_hosts_only() {
        let s = script(&[redirect(&[true, false, true], Placement::RoundRobin)]);
        assert!(
            s.contains("numgen inc mod 2 map { 0 : 10.79.2.2 . 1080, 1 : 10.79.2.4 . 1080 }"),
            "{s}"
        );
        let r = script(&[redirect(&[true, true], Placement::Random)]);
        assert!(r.contains("numgen random mod 2"));
    }

    fn least() -> Placement {
        Placement::LeastStates {
            weights: Vec::new(),
        }
    }

    #[test]
    fn least_states_with_equal_counts_writes_the_round_robin_map() {
        let mut r = redirect(&[true, false, true], least());
        let rr = script(&[redirect(&[true, false, true], Placement::RoundRobin)]);
        // Not counted yet, then counted equal: the very map of `roundrobin`.
        assert_eq!(script(std::slice::from_ref(&r)), rr);
        let counts = BTreeMap::from([(host(2, true).addr, 4), (host(4, true).addr, 4)]);
        weigh(&mut r, &counts);
        assert_eq!(script(&[r]), rr);
    }

    #[test]
    fn least_states_sends_more_new_flows_to_the_host_with_fewer_states() {
        let mut r = redirect(&[true, true, true], least());
        let counts = BTreeMap::from([(host(2, true).addr, 10)]);
        weigh(&mut r, &counts);
        let s = script(&[r]);
        let busy = s.matches("10.79.2.2 . 1080").count();
        let idle = s.matches("10.79.2.3 . 1080").count();
        assert!(s.contains("numgen inc mod 16 map { 0 : "), "{s}");
        assert!(busy >= 1 && idle > 2 * busy, "{s}");
    }

    #[test]
    fn a_down_host_gets_no_weight_and_its_states_do_not_count() {
        let mut r = redirect(&[true, false, true], least());
        let counts = BTreeMap::from([(host(3, true).addr, 50), (host(2, true).addr, 1)]);
        weigh(&mut r, &counts);
        let Placement::LeastStates { weights } = &r.placement else {
            unreachable!()
        };
        assert_eq!(
            weights.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
            vec![host(2, true).addr, host(4, true).addr]
        );
        let s = script(&[r]);
        assert!(!s.contains("10.79.2.3 "), "{s}");
    }

    #[test]
    fn only_least_states_redirects_are_counted_or_weighed() {
        let mut r = redirect(&[true, true], Placement::RoundRobin);
        assert!(!counts_states(&r));
        weigh(&mut r, &BTreeMap::from([(host(2, true).addr, 9)]));
        assert_eq!(r.placement, Placement::RoundRobin);
        let mut l = redirect(&[true, true], least());
        assert!(counts_states(&l));
        l.disabled = true;
        assert!(!counts_states(&l));
    }

    #[test]
    fn no_host_up_or_disabled_means_no_rule_and_backups_take_over() {
        let mut r = redirect(&[false, false], Placement::RoundRobin);
        assert!(!script(std::slice::from_ref(&r)).contains("dnat"));
        r.pools.push(Pool {
            disabled: false,
            hosts: vec![host(9, true)],
        });
        assert!(script(std::slice::from_ref(&r)).contains("0 : 10.79.2.9 . 1080"));
        r.disabled = true;
        assert!(!script(&[r]).contains("dnat"));
    }

    #[test]
    fn hosts_that_stop_serving_are_listed_for_conntrack() {
        let p = Placement::RoundRobin;
        let before = [redirect(&[true, true], p.clone())];
        let after = [redirect(&[true, false], p)];
        let g = gone(&before, &after);
        assert_eq!(g, vec![(before[0].listens[0].addr, host(3, true).addr)]);
        assert!(gone(&after, &before).is_empty());
    }

    #[test]
    fn names_cannot_break_out_of_quotes() {
        let mut r = redirect(&[true], Placement::RoundRobin);
        r.name = "a\"; flush ruleset; \"".into();
        let s = script(&[r]);
        assert!(s.contains("comment \"a; flush ruleset; \""));
        assert_eq!(s.matches('"').count() % 2, 0);
    }
}

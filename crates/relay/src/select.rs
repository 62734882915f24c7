//! Host selection: given a table's hosts and which of them are up, produce the ordered list of
//! candidates a session tries, first to last.
//!
//! Hash modes use rendezvous (highest random weight) hashing instead of relayd's
//! `hash % nhosts`: every host gets a score from a keyed SipHash-1-3 over the client/relay input
//! and the host's identity, and hosts are tried by score, highest first. When a host goes down
//! only the clients whose best host it was move (to their second-best host), and they come back
//! when it returns. The key is fixed ([`DEFAULT_KEY`] unless configured), so two relays, or one
//! relay after a restart, map every client to the same host.

use std::hash::Hasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use conf::relayd::{HashKey, Mode};
use siphasher::sip::SipHasher13;

/// The key used by hash modes when the config gives none: the ASCII bytes of
/// `hasocks-relay-v1`. Fixed (unlike relayd's random per-load key) so mappings survive restarts.
pub const DEFAULT_KEY: HashKey = *b"hasocks-relay-v1";

/// The identity of a host for hashing: its name as written in the table and its port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// Host name as written in the table.
    pub name: String,
    /// The port the relay connects to on that host.
    pub port: u16,
}

/// One host as the selector sees it at selection time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostView {
    /// The host takes traffic.
    pub up: bool,
    /// Sessions open to it now (used by `least-states`).
    pub open: u64,
}

/// Picks the order in which a session tries a table's hosts, per the forward's `mode`.
#[derive(Debug)]
pub struct Selector {
    mode: Mode,
    key: HashKey,
    /// Last host chosen by round robin.
    last: AtomicUsize,
    /// xorshift64 state for `random`.
    rng: AtomicU64,
}

impl Selector {
    /// A selector for `mode`; hash modes without a key use [`DEFAULT_KEY`].
    pub fn new(mode: &Mode) -> Selector {
        let key = match mode {
            Mode::LoadBalance(k) | Mode::SourceHash(k) | Mode::Hash(k) => k.unwrap_or(DEFAULT_KEY),
            _ => DEFAULT_KEY,
        };
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        Selector {
            mode: mode.clone(),
            key,
            last: AtomicUsize::new(usize::MAX),
            rng: AtomicU64::new(seed | 1),
        }
    }

    /// Up hosts (indices into `keys`) in the order a session should try them.
    /// `client` is the client's address, `listen` the relay's configured listen address.
    pub fn order(
        &self,
        keys: &[HostKey],
        view: &[HostView],
        client: IpAddr,
        listen: SocketAddr,
    ) -> Vec<usize> {
        let n = keys.len().min(view.len());
        let is_up = |i: &usize| view.get(*i).is_some_and(|v| v.up);
        match &self.mode {
            Mode::RoundRobin => {
                let start = self.last.load(Ordering::Relaxed).wrapping_add(1);
                let order: Vec<usize> = rotation(start, n).filter(is_up).collect();
                if let Some(first) = order.first() {
                    self.last.store(*first, Ordering::Relaxed);
                }
                order
            }
            Mode::Random => rotation(self.next_random() as usize, n)
                .filter(is_up)
                .collect(),
            Mode::LeastStates => {
                let mut order: Vec<usize> = (0..n).filter(is_up).collect();
                // Stable sort: equal counts keep table order.
                order.sort_by_key(|i| view.get(*i).map_or(u64::MAX, |v| v.open));
                order
            }
            Mode::LoadBalance(_) | Mode::SourceHash(_) | Mode::Hash(_) => {
                let input = self.hash_input(client, listen);
                let mut scored: Vec<(u64, usize)> = (0..n)
                    .filter(is_up)
                    .filter_map(|i| keys.get(i).map(|k| (score(&self.key, &input, k), i)))
                    .collect();
                // Highest score first; index breaks (astronomically unlikely) ties.
                scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                scored.into_iter().map(|(_, i)| i).collect()
            }
        }
    }

    /// The bytes hashed for a client, per mode.
    fn hash_input(&self, client: IpAddr, listen: SocketAddr) -> Vec<u8> {
        let mut input = Vec::with_capacity(40);
        let listen_part = |input: &mut Vec<u8>| {
            push_ip(input, listen.ip());
            input.extend_from_slice(&listen.port().to_be_bytes());
        };
        match self.mode {
            Mode::LoadBalance(_) => {
                push_ip(&mut input, client);
                listen_part(&mut input);
            }
            Mode::SourceHash(_) => push_ip(&mut input, client),
            _ => listen_part(&mut input),
        }
        input
    }

    fn next_random(&self) -> u64 {
        let step = |mut x: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let prev = self
            .rng
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| Some(step(x)))
            .unwrap_or(1);
        step(prev)
    }
}

/// Rendezvous score of one host: SipHash-1-3(key; input || name || port big-endian).
pub fn score(key: &HashKey, input: &[u8], host: &HostKey) -> u64 {
    let mut h = SipHasher13::new_with_key(key);
    h.write(input);
    h.write(host.name.as_bytes());
    h.write(&host.port.to_be_bytes());
    h.finish()
}

/// IPv4 addresses as 4 bytes (IPv4-mapped IPv6 too, so dual-stack listeners agree).
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip.to_canonical() {
        IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
}

/// Indices 0..n starting at `start % n`, wrapping.
fn rotation(start: usize, n: usize) -> impl Iterator<Item = usize> {
    let s = if n == 0 { 0 } else { start % n };
    (0..n).map(move |i| (s + i) % n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn keys(n: usize) -> Vec<HostKey> {
        (0..n)
            .map(|i| HostKey {
                name: format!("10.0.0.{}", i + 1),
                port: 1080,
            })
            .collect()
    }

    fn all_up(n: usize) -> Vec<HostView> {
        vec![HostView { up: true, open: 0 }; n]
    }

    fn client(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i))
    }

    const LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 1080);

    fn first(s: &Selector, k: &[HostKey], v: &[HostView], c: IpAddr) -> Option<usize> {
        s.order(k, v, c, LISTEN).first().copied()
    }

    #[test]
    fn failed_host_moves_only_its_own_clients_and_they_come_back() {
        let s = Selector::new(&Mode::LoadBalance(None));
        let k = keys(4);
        let up = all_up(4);
        let mut down = all_up(4);
        down[2].up = false;
        let mut moved = 0;
        for i in 0..1000 {
            let before = first(&s, &k, &up, client(i));
            let during = first(&s, &k, &down, client(i));
            if before == Some(2) {
                assert_ne!(during, Some(2));
                moved += 1;
            } else {
                assert_eq!(before, during, "client {i} moved though its host stayed up");
            }
            assert_eq!(
                first(&s, &k, &up, client(i)),
                before,
                "client {i} did not come back"
            );
        }
        assert!(moved > 0);
    }

    #[test]
    fn second_choice_is_the_next_in_the_full_order() {
        let s = Selector::new(&Mode::SourceHash(None));
        let k = keys(5);
        let full = s.order(&k, &all_up(5), client(7), LISTEN);
        assert_eq!(full.len(), 5);
        let mut v = all_up(5);
        v[full[0]].up = false;
        assert_eq!(s.order(&k, &v, client(7), LISTEN), full[1..].to_vec());
    }

    #[test]
    fn two_selectors_from_the_same_config_agree() {
        let key = Some([7u8; 16]);
        let a = Selector::new(&Mode::LoadBalance(key));
        let b = Selector::new(&Mode::LoadBalance(key));
        let k = keys(6);
        for i in 0..500 {
            assert_eq!(
                a.order(&k, &all_up(6), client(i), LISTEN),
                b.order(&k, &all_up(6), client(i), LISTEN)
            );
        }
    }

    #[test]
    fn a_different_key_gives_a_different_mapping() {
        let a = Selector::new(&Mode::SourceHash(None));
        let b = Selector::new(&Mode::SourceHash(Some([1u8; 16])));
        let k = keys(4);
        let differ = (0..200)
            .filter(|i| {
                first(&a, &k, &all_up(4), client(*i)) != first(&b, &k, &all_up(4), client(*i))
            })
            .count();
        assert!(differ > 0);
    }

    #[test]
    fn clients_spread_over_every_host() {
        let s = Selector::new(&Mode::LoadBalance(None));
        let k = keys(4);
        let mut counts = [0u32; 4];
        for i in 0..1000 {
            if let Some(h) = first(&s, &k, &all_up(4), client(i)) {
                counts[h] += 1;
            }
        }
        assert_eq!(counts.iter().sum::<u32>(), 1000);
        assert!(counts.iter().all(|c| *c > 0), "{counts:?}");
    }

    #[test]
    fn hash_mode_sends_every_client_to_one_host() {
        let s = Selector::new(&Mode::Hash(None));
        let k = keys(4);
        let h0 = first(&s, &k, &all_up(4), client(0));
        for i in 1..100 {
            assert_eq!(first(&s, &k, &all_up(4), client(i)), h0);
        }
    }

    #[test]
    fn no_host_up_gives_no_candidate() {
        for mode in [
            Mode::RoundRobin,
            Mode::Random,
            Mode::LeastStates,
            Mode::LoadBalance(None),
        ] {
            let s = Selector::new(&mode);
            assert!(s
                .order(&keys(3), &[HostView::default(); 3], client(1), LISTEN)
                .is_empty());
        }
    }

    #[test]
    fn round_robin_cycles_through_up_hosts() {
        let s = Selector::new(&Mode::RoundRobin);
        let k = keys(3);
        let mut v = all_up(3);
        v[1].up = false;
        let picks: Vec<_> = (0..4).map(|i| first(&s, &k, &v, client(i))).collect();
        assert_eq!(picks, vec![Some(0), Some(2), Some(0), Some(2)]);
    }

    #[test]
    fn random_lists_every_up_host_once() {
        let s = Selector::new(&Mode::Random);
        let k = keys(4);
        for i in 0..20 {
            let mut o = s.order(&k, &all_up(4), client(i), LISTEN);
            o.sort();
            assert_eq!(o, vec![0, 1, 2, 3]);
        }
    }

    #[test]
    fn least_states_prefers_the_emptiest_host() {
        let s = Selector::new(&Mode::LeastStates);
        let v = vec![
            HostView { up: true, open: 5 },
            HostView { up: true, open: 1 },
            HostView { up: false, open: 0 },
            HostView { up: true, open: 3 },
        ];
        assert_eq!(s.order(&keys(4), &v, client(0), LISTEN), vec![1, 3, 0]);
    }
}

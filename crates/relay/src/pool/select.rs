//! Host selection: the order in which a session tries a pool's hosts, per the forward's mode,
//! as a lazy iterator (Pingora's backend iterator): hosts that take no traffic are skipped,
//! each next choice is worked out only when the one before it failed, and nothing is
//! allocated. A session that connects to its first choice computes nothing more.
//!
//! Hash modes (`loadbalance`, `source-hash`, `hash`) walk the rendezvous placement
//! (`pool::rendezvous`): the best-scored host first, and only when it fails the next.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hasocks_conf::relayd::{HashKey, Mode};

use super::rendezvous::HashInput;
pub use super::rendezvous::{score, HostKey, DEFAULT_KEY};

/// One host as plain data (see [`Listed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostView {
    /// The host takes traffic.
    pub up: bool,
    /// Sessions open to it now (used by `least-states`).
    pub open: u64,
}

/// What selection reads of a pool's hosts, by index, at the moment it needs it.
pub trait HostSet {
    /// How many hosts there are (indices `0..len`).
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Host `i`'s identity for hashing.
    fn key(&self, i: usize) -> Option<&HostKey>;
    /// Whether host `i` may get a new session now (up, not disabled, not draining).
    fn takes_traffic(&self, i: usize) -> bool;
    /// Sessions open to host `i` now.
    fn open(&self, i: usize) -> u64;
}

/// Hosts as plain data, index for index: for tests and tools.
#[derive(Debug, Clone, Copy)]
pub struct Listed<'a> {
    /// Hash identities.
    pub keys: &'a [HostKey],
    /// States.
    pub view: &'a [HostView],
}

impl HostSet for Listed<'_> {
    fn len(&self) -> usize {
        self.keys.len().min(self.view.len())
    }
    fn key(&self, i: usize) -> Option<&HostKey> {
        self.keys.get(i)
    }
    fn takes_traffic(&self, i: usize) -> bool {
        self.view.get(i).is_some_and(|v| v.up)
    }
    fn open(&self, i: usize) -> u64 {
        self.view.get(i).map_or(u64::MAX, |v| v.open)
    }
}

/// Picks the order in which a session tries a pool's hosts, per the forward's `mode`.
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

    /// The hosts of `hosts` that take traffic, lazily, in the order a session should try
    /// them. `client` is the client's address, `listen` the relay's configured listen address.
    pub fn select<'a, H: HostSet + ?Sized>(
        &'a self,
        hosts: &'a H,
        client: IpAddr,
        listen: SocketAddr,
    ) -> Selection<'a, H> {
        let n = hosts.len();
        let walk = match &self.mode {
            Mode::RoundRobin => Walk::Rotation {
                start: self.last.load(Ordering::Relaxed).wrapping_add(1),
                taken: 0,
                round_robin: true,
            },
            Mode::Random => Walk::Rotation {
                start: self.next_random() as usize,
                taken: 0,
                round_robin: false,
            },
            Mode::LeastStates => Walk::Least(Seen::default()),
            Mode::LoadBalance(_) | Mode::SourceHash(_) | Mode::Hash(_) => Walk::Rendezvous {
                input: HashInput::new(&self.mode, client, listen),
                after: None,
            },
        };
        Selection {
            selector: self,
            hosts,
            n,
            walk,
        }
    }

    /// Every host that takes traffic (indices into `keys`), in order, collected: for tests
    /// and tools (sessions walk [`select`](Self::select) and stop at the first that connects).
    pub fn order(
        &self,
        keys: &[HostKey],
        view: &[HostView],
        client: IpAddr,
        listen: SocketAddr,
    ) -> Vec<usize> {
        self.select(&Listed { keys, view }, client, listen)
            .collect()
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

/// The hosts of one pool in a selector's order: an iterator of host indices.
#[derive(Debug)]
pub struct Selection<'a, H: ?Sized> {
    selector: &'a Selector,
    hosts: &'a H,
    n: usize,
    walk: Walk,
}

/// Where a selection is in its mode's order.
#[derive(Debug)]
enum Walk {
    /// Round robin and random: indices from `start` (mod n), wrapping; `taken` so far.
    Rotation {
        start: usize,
        taken: usize,
        /// The first host yielded becomes the selector's last choice.
        round_robin: bool,
    },
    /// Least states: the emptiest host not yet yielded (table order breaks ties).
    Least(Seen),
    /// Hash modes: the best-scored host after the one yielded last (score, index).
    Rendezvous {
        input: HashInput,
        after: Option<(u64, usize)>,
    },
}

impl<H: HostSet + ?Sized> Iterator for Selection<'_, H> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let (n, hosts) = (self.n, self.hosts);
        match &mut self.walk {
            Walk::Rotation {
                start,
                taken,
                round_robin,
            } => {
                while *taken < n {
                    let i = (*start % n + *taken) % n;
                    *taken += 1;
                    if hosts.takes_traffic(i) {
                        if std::mem::take(round_robin) {
                            self.selector.last.store(i, Ordering::Relaxed);
                        }
                        return Some(i);
                    }
                }
                None
            }
            Walk::Least(seen) => {
                let best = (0..n)
                    .filter(|i| !seen.has(*i) && hosts.takes_traffic(*i))
                    .min_by_key(|i| (hosts.open(*i), *i))?;
                seen.add(best);
                Some(best)
            }
            Walk::Rendezvous { input, after } => {
                let key = &self.selector.key;
                let mut best: Option<(u64, usize)> = None;
                for i in 0..n {
                    if !hosts.takes_traffic(i) {
                        continue;
                    }
                    let Some(k) = hosts.key(i) else {
                        continue;
                    };
                    let here = (score(key, input.bytes(), k), i);
                    let later = after.is_none_or(|a| before(a, here));
                    if later && best.is_none_or(|b| before(here, b)) {
                        best = Some(here);
                    }
                }
                *after = best;
                best.map(|(_, i)| i)
            }
        }
    }
}

/// Whether (score, index) `a` comes before `b`: highest score first; the index breaks
/// (astronomically unlikely) ties.
fn before(a: (u64, usize), b: (u64, usize)) -> bool {
    a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
}

/// The hosts a least-states selection yielded: a bit set, inline for the first 128.
#[derive(Debug, Default)]
struct Seen {
    low: u128,
    /// Indices from 128 on (a pool that large is rare; this allocates only then).
    high: Vec<usize>,
}

impl Seen {
    fn has(&self, i: usize) -> bool {
        match u32::try_from(i) {
            Ok(b) if b < 128 => self.low & (1u128 << b) != 0,
            _ => self.high.contains(&i),
        }
    }

    fn add(&mut self, i: usize) {
        match u32::try_from(i) {
            Ok(b) if b < 128 => self.low |= 1u128 << b,
            _ => self.high.push(i),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

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

    /// Hosts that count how often selection looked at them.
    struct Counting {
        keys: Vec<HostKey>,
        up: Vec<std::cell::Cell<bool>>,
        looks: std::cell::Cell<usize>,
    }

    impl Counting {
        fn new(n: usize) -> Counting {
            Counting {
                keys: keys(n),
                up: (0..n).map(|_| std::cell::Cell::new(true)).collect(),
                looks: std::cell::Cell::new(0),
            }
        }
    }

    impl HostSet for Counting {
        fn len(&self) -> usize {
            self.keys.len()
        }
        fn key(&self, i: usize) -> Option<&HostKey> {
            self.keys.get(i)
        }
        fn takes_traffic(&self, i: usize) -> bool {
            self.looks.set(self.looks.get() + 1);
            self.up.get(i).is_some_and(|u| u.get())
        }
        fn open(&self, _: usize) -> u64 {
            0
        }
    }

    #[test]
    fn selection_is_lazy_and_stops_at_the_first_host_that_connects() {
        for (mode, first_looks) in [
            (Mode::RoundRobin, 1),
            (Mode::Random, 1),
            (Mode::LeastStates, 8),
            (Mode::LoadBalance(None), 8),
            (Mode::SourceHash(None), 8),
        ] {
            let s = Selector::new(&mode);
            let hosts = Counting::new(8);
            let mut sel = s.select(&hosts, client(3), LISTEN);
            assert!(sel.next().is_some());
            assert_eq!(hosts.looks.get(), first_looks, "{mode:?}: the first choice");
            drop(sel);
            assert_eq!(hosts.looks.get(), first_looks, "{mode:?}: nothing more");
            assert_eq!(s.select(&hosts, client(3), LISTEN).count(), 8);
        }
    }

    #[test]
    fn a_host_that_goes_down_during_a_selection_is_skipped_by_the_rest_of_it() {
        let s = Selector::new(&Mode::LoadBalance(None));
        let hosts = Counting::new(5);
        let full: Vec<usize> = s.select(&hosts, client(9), LISTEN).collect();
        let mut sel = s.select(&hosts, client(9), LISTEN);
        assert_eq!(sel.next(), full.first().copied());
        let third = full.get(2).copied().unwrap_or_default();
        if let Some(u) = hosts.up.get(third) {
            u.set(false);
        }
        let rest: Vec<usize> = sel.collect();
        let want: Vec<usize> = full
            .iter()
            .skip(1)
            .copied()
            .filter(|i| *i != third)
            .collect();
        assert_eq!(rest, want);
    }

    #[test]
    fn least_states_lists_every_host_of_a_large_pool_once() {
        let s = Selector::new(&Mode::LeastStates);
        let k = keys(300);
        let mut o = s.order(&k, &all_up(300), client(0), LISTEN);
        assert_eq!(o.len(), 300);
        o.dedup();
        assert_eq!(o, (0..300).collect::<Vec<_>>());
    }

    /// Full orders of clients 10.1.0.0 to .15 over five hosts, pinned: a relay upgraded
    /// keeps every client's host. The client enters as its kernel jhash bucket since
    /// redirects came (the one change of placement, documented); `hash` did not change.
    #[test]
    fn the_placement_is_pinned_across_releases() {
        let pinned = [
            (
                Mode::LoadBalance(None),
                "20431 32041 01432 21430 14023 34102 21304 41320 43210 24301 42013 42103 43102 13240 21304 03142",
            ),
            (
                Mode::SourceHash(None),
                "24031 34210 43201 43102 13420 04321 20431 24031 42301 21340 34120 02431 14302 12340 14302 34102",
            ),
            (
                Mode::Hash(None),
                "24013 24013 24013 24013 24013 24013 24013 24013 24013 24013 24013 24013 24013 24013 24013 24013",
            ),
            (
                Mode::LoadBalance(Some([7u8; 16])),
                "03214 41023 42130 13024 21403 21034 13042 20134 02314 21403 10324 10342 31420 34102 12340 12340",
            ),
        ];
        let k = keys(5);
        for (mode, want) in pinned {
            let s = Selector::new(&mode);
            let got: Vec<String> = (0..16)
                .map(|i| {
                    let o = s.order(&k, &all_up(5), client(i), LISTEN);
                    o.iter().map(ToString::to_string).collect()
                })
                .collect();
            assert_eq!(got.join(" "), want, "{mode:?}");
        }
        let c6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7));
        let l6 = SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            1080,
        );
        let s = Selector::new(&Mode::LoadBalance(None));
        assert_eq!(s.order(&k, &all_up(5), c6, l6), [0, 4, 1, 3, 2]);
    }
}

//! `mode least-states` in the kernel: the relay counts each host's tracked flows (a
//! `conntrack -L` dump, parsed here) and turns the counts into weights of a `numgen inc` map,
//! so new flows go preferentially to the hosts with the fewest states. All pure.
//!
//! Weights: `weight_i = (max - count_i) + base`, `base = max(1, ceil(mean count))`, scaled
//! to at most [`SLOTS`] slots and divided by their gcd. Equal counts give equal weights, so
//! plain round robin (the same map as `roundrobin`); a host below the others takes more of
//! the next flows. The base is the mean, not 1, because the counts are sampled (about once a
//! second) and every flow of the next period follows the same weights: with a base of 1 a
//! host 10 states below the others would take nearly the whole next second's burst and
//! overshoot. With the mean as base the preference is bounded and scale-free (one empty host
//! among two full ones takes 56 % instead of 33 %) and it closes the gap over a few periods.
//! The slots are interleaved (smooth weighted round robin), so even within a period
//! consecutive flows alternate between hosts instead of running through one host's range.
//! Scaling to few slots also rounds away small count changes, so the table is rewritten
//! only when the shares really move.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

/// The most slots of a least-states map: shares in steps of under 2 %, a map of a few dozen
/// elements.
pub const SLOTS: u64 = 64;

/// TCP states that no longer hold a session: not counted.
const ENDED: [&str; 2] = ["TIME_WAIT", "CLOSE"];

/// Live TCP flows per host in a `conntrack -L` dump (default or `-o extended` lines): each
/// line's reply source (`src=`/`sport=` of the second tuple) is the host the flow was
/// translated to. Flows in TIME_WAIT or CLOSE are not counted (their session is over).
/// Lines that do not parse (a version's other format, a warning) are skipped.
pub fn count(dump: &str) -> BTreeMap<SocketAddrV4, u32> {
    let mut out = BTreeMap::new();
    for line in dump.lines() {
        if let Some(host) = live_reply_source(line) {
            *out.entry(host).or_insert(0) += 1;
        }
    }
    out
}

/// The reply source of a live flow's line, or None (ended, not TCP, or not a flow line).
fn live_reply_source(line: &str) -> Option<SocketAddrV4> {
    let mut words = line.split_whitespace();
    // `-o extended` puts the layer 3 protocol first.
    let first = words.next()?;
    let proto = if first == "ipv4" {
        words.nth(1)?
    } else {
        first
    };
    if proto != "tcp" {
        return None;
    }
    let (mut srcs, mut sports) = (Vec::new(), Vec::new());
    let mut state = None;
    for w in words {
        if let Some(v) = w.strip_prefix("src=") {
            srcs.push(v);
        } else if let Some(v) = w.strip_prefix("sport=") {
            sports.push(v);
        } else if state.is_none()
            && !w.contains('=')
            && w.len() > 3
            && w.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        {
            state = Some(w);
        }
    }
    if ENDED.contains(&state?) {
        return None;
    }
    let ip: Ipv4Addr = srcs.get(1)?.parse().ok()?;
    let port: u16 = sports.get(1)?.parse().ok()?;
    Some(SocketAddrV4::new(ip, port))
}

/// The weights of hosts with `counts` states (see the module's text): never 0, equal for
/// equal counts, larger for fewer states; their sum is at most [`SLOTS`] unless there are
/// more hosts than slots (then every host has 1).
pub fn weights(counts: &[u32]) -> Vec<u32> {
    let Some(&max) = counts.iter().max() else {
        return Vec::new();
    };
    let n = counts.len() as u64;
    let sum: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    let base = sum.div_ceil(n).max(1);
    let raw: Vec<u64> = counts.iter().map(|&c| u64::from(max - c) + base).collect();
    let total: u64 = raw.iter().sum();
    let scaled: Vec<u64> = if total > SLOTS {
        raw.iter()
            .map(|&r| ((r * SLOTS + total / 2) / total).max(1))
            .collect()
    } else {
        raw
    };
    let g = scaled.iter().fold(0, |g, &w| gcd(g, w)).max(1);
    scaled
        .iter()
        .map(|&w| u32::try_from(w / g).unwrap_or(u32::MAX))
        .collect()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The slot sequence of `weights` (host indexes, one per slot): smooth weighted round robin,
/// so each host's slots are spread over the cycle. Equal weights give `0, 1, 2, ...`.
pub fn slots(weights: &[u32]) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        let mut best = 0;
        for (i, &w) in weights.iter().enumerate() {
            current[i] += i64::from(w);
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        out.push(best);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "\
tcp      6 431999 ESTABLISHED src=10.79.1.10 dst=10.79.0.100 sport=40000 dport=1082 src=10.79.2.11 dst=10.79.1.10 sport=1080 dport=40000 [ASSURED] mark=0 use=1
tcp      6 431999 ESTABLISHED src=10.79.1.10 dst=10.79.0.100 sport=40001 dport=1082 src=10.79.2.11 dst=10.79.1.10 sport=1080 dport=40001 [ASSURED] mark=0 use=1
tcp      6 119 TIME_WAIT src=10.79.1.10 dst=10.79.0.100 sport=40002 dport=1082 src=10.79.2.12 dst=10.79.1.10 sport=1080 dport=40002 [ASSURED] mark=0 use=1
tcp      6 10 CLOSE src=10.79.1.10 dst=10.79.0.100 sport=40005 dport=1082 src=10.79.2.12 dst=10.79.1.10 sport=1080 dport=40005 mark=0 use=1
tcp      6 118 SYN_SENT src=10.79.1.10 dst=10.79.0.100 sport=40003 dport=1082 [UNREPLIED] src=10.79.2.13 dst=10.79.1.10 sport=1080 dport=40003 mark=0 use=1
ipv4     2 tcp      6 431999 ESTABLISHED src=10.79.1.11 dst=10.79.0.100 sport=40004 dport=1082 src=10.79.2.12 dst=10.79.1.11 sport=1080 dport=40004 [ASSURED] mark=0 use=1
";

    fn host(i: u8) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 79, 2, i), 1080)
    }

    #[test]
    fn live_flows_are_counted_by_the_host_they_were_translated_to() {
        let c = count(DUMP);
        assert_eq!(c.get(&host(11)), Some(&2));
        // One ESTABLISHED (extended format); its TIME_WAIT and CLOSE flows are over.
        assert_eq!(c.get(&host(12)), Some(&1));
        assert_eq!(c.get(&host(13)), Some(&1));
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn garbage_conntrack_lines_are_skipped_not_fatal() {
        let dump = format!(
            "conntrack v1.4.7 (conntrack-tools): 6 flow entries have been shown.\n\
             udp      17 29 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1\n\
             tcp 6 1 ESTABLISHED src=nonsense sport=x\n\
             tcp 6 1 ESTABLISHED src=1.2.3.4 dst=5.6.7.8 sport=1 dport=2 src=::1 sport=99999\n\
             \u{0}\u{ff}tcp\n\n{DUMP}"
        );
        assert_eq!(count(&dump), count(DUMP));
        assert!(count("").is_empty());
    }

    #[test]
    fn equal_counts_are_plain_round_robin() {
        assert_eq!(weights(&[0, 0, 0]), vec![1, 1, 1]);
        assert_eq!(weights(&[7, 7, 7]), vec![1, 1, 1]);
        assert_eq!(weights(&[5000, 5000]), vec![1, 1]);
        assert_eq!(slots(&weights(&[3, 3, 3])), vec![0, 1, 2]);
    }

    #[test]
    fn a_host_with_fewer_states_takes_more_of_the_next_flows() {
        let w = weights(&[10, 0, 0]);
        assert!(w[1] > w[0] && w[1] == w[2], "{w:?}");
        let s = slots(&w);
        let first = s.iter().filter(|&&h| h == 0).count();
        // Less than its round robin third, yet not starved: the next burst is spread.
        assert!(first * 3 < s.len() && first > 0, "{s:?}");
        let w = weights(&[30, 30, 0]);
        assert!(w[2] > w[0] && w[0] == w[1], "{w:?}");
        // One empty host among two full ones takes 56 %, not the whole next burst.
        let total: u32 = w.iter().sum();
        assert!(w[2] * 100 < 60 * total && w[0] > 0, "{w:?}");
    }

    #[test]
    fn small_count_changes_do_not_change_the_weights() {
        assert_eq!(weights(&[1000, 1003, 998]), weights(&[1001, 1002, 999]));
        assert_eq!(weights(&[1000, 1003, 998]), vec![1, 1, 1]);
    }

    #[test]
    fn the_map_stays_small_for_any_counts() {
        for counts in [vec![u32::MAX, 0], vec![1_000_000, 0, 5, 17], vec![0; 100]] {
            let w = weights(&counts);
            assert!(w.iter().all(|&x| x >= 1), "{w:?}");
            let total: u32 = w.iter().sum();
            assert!(
                u64::from(total) <= SLOTS.max(counts.len() as u64) + counts.len() as u64,
                "{w:?}"
            );
        }
        assert!(weights(&[]).is_empty());
    }

    #[test]
    fn slots_interleave_the_hosts() {
        let s = slots(&[2, 7, 7]);
        assert_eq!(s.len(), 16);
        // Host 0's two slots are apart, and no host has three slots in a row.
        let zeros: Vec<usize> = (0..16).filter(|&i| s[i] == 0).collect();
        assert_eq!(zeros.len(), 2);
        assert!(zeros[1] - zeros[0] >= 4, "{s:?}");
        assert!(
            s.windows(3).all(|w| !(w[0] == w[1] && w[1] == w[2])),
            "{s:?}"
        );
    }
}

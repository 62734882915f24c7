//! Rendezvous (highest random weight) scoring, shared by the relay's hash modes and the
//! server's `source-hash` route groups: every host gets a score from a keyed SipHash-1-3
//! over the client's bytes and the host's identity, and hosts are tried by score, highest
//! first. When a host goes down only the clients whose best host it was move, and they come
//! back when it returns; with a fixed key the mapping survives restarts and is the same on
//! every machine.

use std::hash::Hasher;

use siphasher::sip::SipHasher13;

/// The identity of a host for hashing: its name as written in the config and its port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// Host name as written in the config.
    pub name: String,
    /// The port connected to on that host.
    pub port: u16,
}

/// Rendezvous score of one host: SipHash-1-3(key; input || name || port big-endian).
pub fn score(key: &[u8; 16], input: &[u8], host: &HostKey) -> u64 {
    let mut h = SipHasher13::new_with_key(key);
    h.write(input);
    h.write(host.name.as_bytes());
    h.write(&host.port.to_be_bytes());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_score_is_pinned_so_mappings_survive_releases() {
        let host = HostKey {
            name: "10.0.0.1".into(),
            port: 1080,
        };
        let a = score(b"hasocks-relay-v1", &[10, 1, 2, 3], &host);
        assert_eq!(a, score(b"hasocks-relay-v1", &[10, 1, 2, 3], &host));
        assert_ne!(a, score(b"hasocks-relay-v1", &[10, 1, 2, 4], &host));
        assert_ne!(a, score(b"hasocks-route-v1", &[10, 1, 2, 3], &host));
    }
}

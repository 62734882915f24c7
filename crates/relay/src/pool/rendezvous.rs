//! The rendezvous (highest random weight) placement of the hash modes, instead of relayd's
//! `hash % nhosts`: every host gets a score from a keyed SipHash-1-3 over the client/relay
//! input and the host's identity, and hosts are tried by score, highest first. When a host
//! goes down only the clients whose best host it was move (to their second-best host), and
//! they come back when it returns. The key is fixed ([`DEFAULT_KEY`] unless configured), so
//! two relays, or one relay after a restart, map every client to the same host; a kernel data
//! plane can fill its bucket map from the same [`score`].
//!
//! The client's address enters as its bucket: the kernel's jhash of the address into
//! [`hasocks_redirect::BUCKETS`] buckets (seeded by the key), exactly what a `redirect`'s
//! nftables map is indexed by. So a client reaches the same host through a relay or a
//! redirect with the same table and key; the placement of `source-hash` and `loadbalance`
//! changed once, at the release that brought redirects.

use std::net::{IpAddr, SocketAddr};

use hasocks_conf::relayd::{HashKey, Mode};

/// The key used by hash modes when the config gives none: the ASCII bytes of
/// `hasocks-relay-v1`. Fixed (unlike relayd's random per-load key) so mappings survive restarts.
pub const DEFAULT_KEY: HashKey = *b"hasocks-relay-v1";

pub use hasocks_probe::placement::{score, HostKey};

/// The bytes hashed for a client, per mode, on the stack: at most two IPv6 addresses and a
/// port.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HashInput {
    buf: [u8; 34],
    len: usize,
}

impl HashInput {
    pub(crate) fn new(mode: &Mode, client: IpAddr, listen: SocketAddr) -> HashInput {
        let mut input = HashInput {
            buf: [0; 34],
            len: 0,
        };
        match mode {
            Mode::LoadBalance(k) => {
                input.push_bucket(client, k);
                input.push_listen(listen);
            }
            Mode::SourceHash(k) => input.push_bucket(client, k),
            _ => input.push_listen(listen),
        }
        input
    }

    fn push(&mut self, bytes: &[u8]) {
        if let Some(slot) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            slot.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }

    /// The client's bucket, big-endian (the same bytes as [`hasocks_redirect::bucket_input`]).
    fn push_bucket(&mut self, client: IpAddr, key: &Option<HashKey>) {
        let bucket = hasocks_redirect::bucket_of(client, &key.unwrap_or(DEFAULT_KEY));
        self.push(&bucket.to_be_bytes());
    }

    /// IPv4 addresses as 4 bytes (IPv4-mapped IPv6 too, so dual-stack listeners agree).
    fn push_ip(&mut self, ip: IpAddr) {
        match ip.to_canonical() {
            IpAddr::V4(v4) => self.push(&v4.octets()),
            IpAddr::V6(v6) => self.push(&v6.octets()),
        }
    }

    fn push_listen(&mut self, listen: SocketAddr) {
        self.push_ip(listen.ip());
        self.push(&listen.port().to_be_bytes());
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn listen() -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 10], 1080))
    }

    #[test]
    fn the_hash_input_is_the_same_bytes_for_a_mapped_ipv4_client() {
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped());
        let mode = Mode::LoadBalance(None);
        assert_eq!(
            HashInput::new(&mode, v4, listen()).bytes(),
            HashInput::new(&mode, mapped, listen()).bytes()
        );
        assert_eq!(HashInput::new(&mode, v4, listen()).bytes().len(), 2 + 4 + 2);
        let v6: SocketAddr = "[2001:db8::1]:1080".parse().unwrap_or(listen());
        let c6 = IpAddr::V6("2001:db8::2".parse().unwrap_or(Ipv6Addr::LOCALHOST));
        assert_eq!(HashInput::new(&mode, c6, v6).bytes().len(), 2 + 16 + 2);
    }

    #[test]
    fn the_hash_input_is_the_redirect_bucket_input() {
        let client = IpAddr::V4(Ipv4Addr::new(10, 79, 0, 7));
        let key = Some(*b"0123456789abcdef");
        let bucket = hasocks_redirect::bucket_of(client, b"0123456789abcdef");
        let SocketAddr::V4(l4) = listen() else {
            return;
        };
        assert_eq!(
            HashInput::new(&Mode::SourceHash(key), client, listen()).bytes(),
            hasocks_redirect::bucket_input(bucket, None)
        );
        assert_eq!(
            HashInput::new(&Mode::LoadBalance(key), client, listen()).bytes(),
            hasocks_redirect::bucket_input(bucket, Some(l4))
        );
    }
}

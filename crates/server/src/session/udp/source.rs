//! The client's expected UDP source: what it declared in its request, with zero parts filled
//! from its first datagram (Dante's `fromaddr_as_expected()`). Not compared with the TCP
//! peer, so a client behind a layer-4 relay works.

use std::net::{IpAddr, SocketAddr};

/// The address datagrams must come from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected {
    ip: Option<IpAddr>,
    port: Option<u16>,
}

impl Expected {
    /// From the request's DST.ADDR/DST.PORT; unspecified address / port 0 = learn it.
    pub fn new(ip: Option<IpAddr>, port: u16) -> Self {
        Self {
            ip: ip.filter(|i| !i.is_unspecified()).map(|i| i.to_canonical()),
            port: (port != 0).then_some(port),
        }
    }

    /// Whether a datagram from `src` is the client's (parts still unknown match anything).
    pub fn accepts(&self, src: SocketAddr) -> bool {
        let ip_ok = match self.ip {
            Some(ip) => ip == src.ip().to_canonical(),
            None => true,
        };
        ip_ok && (self.port.is_none() || self.port == Some(src.port()))
    }

    /// Fills the unknown parts from `src` (call once a datagram from it was accepted).
    pub fn learn(&mut self, src: SocketAddr) {
        self.ip.get_or_insert(src.ip().to_canonical());
        self.port.get_or_insert(src.port());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn zero_address_learns_the_first_source_then_holds_it() {
        let mut e = Expected::new(Some("0.0.0.0".parse().unwrap()), 0);
        assert!(e.accepts(a("127.0.0.9:4000")));
        e.learn(a("127.0.0.9:4000"));
        assert!(e.accepts(a("127.0.0.9:4000")));
        assert!(!e.accepts(a("127.0.0.9:4001")));
        assert!(!e.accepts(a("127.0.0.8:4000")));
    }

    #[test]
    fn declared_address_with_zero_port_fixes_the_address_only() {
        let mut e = Expected::new(Some("127.0.0.9".parse().unwrap()), 0);
        assert!(!e.accepts(a("127.0.0.8:4000")));
        assert!(e.accepts(a("127.0.0.9:4000")));
        e.learn(a("127.0.0.9:4000"));
        assert!(!e.accepts(a("127.0.0.9:5000")));
    }

    #[test]
    fn mapped_ipv6_source_matches_declared_ipv4() {
        let e = Expected::new(Some("127.0.0.9".parse().unwrap()), 4000);
        assert!(e.accepts(a("[::ffff:127.0.0.9]:4000")));
    }
}

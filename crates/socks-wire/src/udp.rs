//! The SOCKS5 UDP datagram header: `RSV(2) | FRAG | ATYP | DST.ADDR | DST.PORT | DATA`.

use crate::reader::Reader;
use crate::{TargetAddr, WireError};

/// Header of a datagram relayed through a UDP association.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UdpHeader {
    /// FRAG: 0 for a standalone datagram (relays without reassembly drop others).
    pub frag: u8,
    /// Where the payload goes (client to relay) or came from (relay to client).
    pub target: TargetAddr,
}

impl UdpHeader {
    /// A standalone (FRAG = 0) header.
    pub fn new(target: TargetAddr) -> Self {
        UdpHeader { frag: 0, target }
    }

    /// Decodes the header of a whole datagram; returns it and its length
    /// (the payload is `&datagram[len..]`). RSV may be any value.
    pub fn decode(datagram: &[u8]) -> Result<(Self, usize), WireError> {
        let mut r = Reader::new(datagram);
        let _rsv = r.u16().ok_or(WireError::Truncated)?;
        let frag = r.u8().ok_or(WireError::Truncated)?;
        // A datagram does not grow: "need more bytes" means it is cut short.
        let target = TargetAddr::read(&mut r)?.ok_or(WireError::Truncated)?;
        Ok((UdpHeader { frag, target }, r.pos()))
    }

    /// Appends the header (RSV = 0); the caller appends the payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[0, 0, self.frag]);
        self.target.encode(out);
    }

    /// Bytes [`UdpHeader::encode`] appends.
    pub fn encoded_len(&self) -> usize {
        3 + self.target.encoded_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_datagram_header_is_ten_bytes() {
        let dg = [0, 0, 0, 1, 8, 8, 8, 8, 0, 53, b'q', b'r'];
        let (h, n) = UdpHeader::decode(&dg).unwrap();
        assert_eq!(n, 10);
        assert_eq!(
            h,
            UdpHeader::new(TargetAddr::Ip("8.8.8.8:53".parse().unwrap()))
        );
        assert_eq!(dg.get(n..), Some(&b"qr"[..]));
        assert_eq!(h.encoded_len(), 10);
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, &dg[..10]);
    }

    #[test]
    fn domain_header_overhead_matches_rfc_worst_case() {
        let h = UdpHeader::new(TargetAddr::Domain("a".repeat(255), 1));
        assert_eq!(h.encoded_len(), 262);
        let h6 = UdpHeader::new(TargetAddr::Ip("[::1]:1".parse().unwrap()));
        assert_eq!(h6.encoded_len(), 22);
    }

    #[test]
    fn short_datagram_is_truncated_not_pending() {
        let dg = [0, 0, 0, 1, 8, 8, 8, 8, 0, 53];
        for k in 0..dg.len() {
            assert_eq!(
                UdpHeader::decode(&dg[..k]),
                Err(WireError::Truncated),
                "len {k}"
            );
        }
    }

    #[test]
    fn fragment_and_nonzero_reserved_are_reported_not_rejected() {
        let dg = [0xab, 0xcd, 0x81, 1, 1, 2, 3, 4, 0, 1];
        let (h, _) = UdpHeader::decode(&dg).unwrap();
        assert_eq!(h.frag, 0x81);
    }

    #[test]
    fn bad_address_in_datagram_is_an_error() {
        assert_eq!(
            UdpHeader::decode(&[0, 0, 0, 7, 1]),
            Err(WireError::BadAddressType(7))
        );
        assert_eq!(
            UdpHeader::decode(&[0, 0, 0, 3, 0, 1]),
            Err(WireError::EmptyDomain)
        );
    }
}

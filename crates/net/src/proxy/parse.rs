//! The sans-io PROXY header parser: bytes in, "need more" or "a header of N bytes" out. It
//! never looks past the header, so the caller can consume exactly the header's bytes and
//! leave what follows (the SOCKS bytes) in the socket.

use std::net::SocketAddr;

use super::{ProxyError, ProxyHeader, V1_MAX, V2_FIXED, V2_SIG};

/// The v1 header's fixed start (the spec requires one space after `PROXY`).
const V1_PREFIX: &[u8] = b"PROXY ";

/// What [`parse_header`] found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The bytes so far begin a valid header: the header has at least this many bytes in all
    /// (always more than the buffer holds), so reading up to that count consumes nothing
    /// beyond it.
    NeedMore(usize),
    /// A complete header at the start of the buffer.
    Header {
        /// The header's length in bytes; bytes after it are not part of it.
        len: usize,
        /// The addresses it carries; None for LOCAL, UNKNOWN, UNSPEC and AF_UNIX.
        header: Option<ProxyHeader>,
    },
}

/// Parses the PROXY header (v1 or v2, told apart by the first byte) at the start of `buf`.
/// Bytes after the header are ignored and not counted; a buffer that is a strict prefix of a
/// valid header always gives [`Parsed::NeedMore`].
pub fn parse_header(buf: &[u8]) -> Result<Parsed, ProxyError> {
    match buf.first() {
        None => Ok(Parsed::NeedMore(1)),
        Some(b'P') => parse_v1(buf),
        Some(b'\r') => parse_v2(buf),
        Some(b) => Err(malformed(format!(
            "starts with byte 0x{b:02x}, neither v1 nor v2"
        ))),
    }
}

fn malformed(msg: impl Into<String>) -> ProxyError {
    ProxyError::Malformed(msg.into())
}

/// True when `buf` and `expected` agree on their common length (a start that can still
/// become `expected`, or that already holds it).
fn agrees(buf: &[u8], expected: &[u8]) -> bool {
    buf.iter().zip(expected).all(|(a, b)| a == b)
}

/// v1: one text line of at most [`V1_MAX`] bytes ending in CRLF.
fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyError> {
    if !agrees(buf, V1_PREFIX) {
        return Err(malformed("v1: does not start with \"PROXY \""));
    }
    let window = buf.get(..V1_MAX).unwrap_or(buf);
    let Some(lf) = window.iter().position(|&c| c == b'\n') else {
        if window.len() == V1_MAX {
            return Err(malformed(format!(
                "v1 header has no line end within {V1_MAX} bytes"
            )));
        }
        // A CR can only stand right before the LF: refuse a stray one without waiting.
        if window
            .iter()
            .position(|&c| c == b'\r')
            .is_some_and(|cr| cr + 1 < window.len())
        {
            return Err(malformed("v1: CR not followed by LF"));
        }
        return Ok(Parsed::NeedMore(window.len() + 1));
    };
    let len = lf + 1;
    let line = window.get(..len).unwrap_or(window);
    // ppp reads up to the first CR: a CR anywhere but before the LF would make it parse a
    // shorter line than the one consumed here.
    if line.iter().position(|&c| c == b'\r') != Some(lf.wrapping_sub(1)) {
        return Err(malformed("v1: line does not end in CRLF"));
    }
    let h = ppp::v1::Header::try_from(line).map_err(|e| malformed(format!("v1: {e}")))?;
    let header = match h.addresses {
        ppp::v1::Addresses::Unknown => None,
        ppp::v1::Addresses::Tcp4(a) => Some(ProxyHeader {
            src: SocketAddr::new(a.source_address.into(), a.source_port),
            dst: SocketAddr::new(a.destination_address.into(), a.destination_port),
        }),
        ppp::v1::Addresses::Tcp6(a) => Some(ProxyHeader {
            src: SocketAddr::new(a.source_address.into(), a.source_port),
            dst: SocketAddr::new(a.destination_address.into(), a.destination_port),
        }),
    };
    Ok(Parsed::Header { len, header })
}

/// v2: the 16-byte fixed part, then as many bytes as its length field says.
fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyError> {
    if !agrees(buf, &V2_SIG) {
        return Err(malformed("bad v2 signature"));
    }
    let Some(&[hi, lo]) = buf.get(V2_FIXED - 2..V2_FIXED) else {
        return Ok(Parsed::NeedMore(V2_FIXED));
    };
    let len = V2_FIXED + usize::from(u16::from_be_bytes([hi, lo]));
    // ppp checks the fixed part (version, command, family, length) before it asks for the
    // rest, so a bad fixed part is refused without waiting for `len` bytes.
    let h = match ppp::v2::Header::try_from(buf.get(..len).unwrap_or(buf)) {
        Ok(h) => h,
        Err(ppp::v2::ParseError::Partial(..)) => return Ok(Parsed::NeedMore(len)),
        Err(e) => return Err(malformed(format!("v2: {e}"))),
    };
    if h.command == ppp::v2::Command::Local {
        return Ok(Parsed::Header { len, header: None });
    }
    let header = match h.addresses {
        ppp::v2::Addresses::IPv4(a) => Some(ProxyHeader {
            src: SocketAddr::new(a.source_address.into(), a.source_port),
            dst: SocketAddr::new(a.destination_address.into(), a.destination_port),
        }),
        ppp::v2::Addresses::IPv6(a) => Some(ProxyHeader {
            src: SocketAddr::new(a.source_address.into(), a.source_port),
            dst: SocketAddr::new(a.destination_address.into(), a.destination_port),
        }),
        // UNSPEC and AF_UNIX carry nothing we can use as a client address.
        ppp::v2::Addresses::Unspecified | ppp::v2::Addresses::Unix(_) => None,
    };
    Ok(Parsed::Header { len, header })
}

#[cfg(test)]
mod tests {
    use super::super::{encode_v1, encode_v2, encode_v2_local};
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn is_malformed(r: Result<Parsed, ProxyError>) -> bool {
        matches!(r, Err(ProxyError::Malformed(_)))
    }

    /// Headers of every kind we send or accept, with what they carry.
    fn headers() -> Vec<(Vec<u8>, Option<ProxyHeader>)> {
        let v4 = ProxyHeader {
            src: sa("192.0.2.10:40001"),
            dst: sa("127.0.0.1:1080"),
        };
        let v6 = ProxyHeader {
            src: sa("[2001:db8::10]:40001"),
            dst: sa("[::1]:1080"),
        };
        let mut v2_tlv = encode_v2(v4.src, v4.dst);
        // A NOOP TLV of 3 value bytes: the length field grows by 6.
        v2_tlv[15] += 6;
        v2_tlv.extend_from_slice(&[0x04, 0, 3, 1, 2, 3]);
        vec![
            (encode_v1(v4.src, v4.dst), Some(v4)),
            (encode_v1(v6.src, v6.dst), Some(v6)),
            (encode_v2(v4.src, v4.dst), Some(v4)),
            (encode_v2(v6.src, v6.dst), Some(v6)),
            (v2_tlv, Some(v4)),
            (b"PROXY UNKNOWN\r\n".to_vec(), None),
            (
                b"PROXY UNKNOWN ffff:f...f:ffff 1.2.3.4 65535 1\r\n".to_vec(),
                None,
            ),
            (encode_v2_local(), None),
        ]
    }

    #[test]
    fn a_full_header_parses_to_its_addresses_and_length() {
        for (h, want) in headers() {
            assert_eq!(
                parse_header(&h).unwrap(),
                Parsed::Header {
                    len: h.len(),
                    header: want
                },
                "{h:?}"
            );
        }
    }

    #[test]
    fn partial_input_at_every_split_point_needs_more_bytes() {
        for (h, _) in headers() {
            for cut in 0..h.len() {
                match parse_header(&h[..cut]) {
                    Ok(Parsed::NeedMore(n)) => {
                        assert!(n > cut && n <= h.len(), "cut {cut} of {h:?}: needs {n}")
                    }
                    other => panic!("cut {cut} of {h:?}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn trailing_bytes_are_not_counted() {
        for (h, want) in headers() {
            let mut more = h.clone();
            more.extend_from_slice(b"\x05\x01\x00\r\nPROXY \n");
            assert_eq!(
                parse_header(&more).unwrap(),
                Parsed::Header {
                    len: h.len(),
                    header: want
                },
                "{h:?}"
            );
        }
    }

    #[test]
    fn v2_local_is_a_16_byte_header_without_addresses() {
        let h = encode_v2_local();
        assert_eq!(h.len(), 16);
        assert_eq!(&h[12..], &[0x20, 0x00, 0, 0]);
        assert_eq!(
            parse_header(&h).unwrap(),
            Parsed::Header {
                len: 16,
                header: None
            }
        );
    }

    #[test]
    fn a_wrong_first_byte_is_refused_at_once() {
        assert!(is_malformed(parse_header(&[5])));
        assert!(is_malformed(parse_header(b"PR0")));
        assert!(is_malformed(parse_header(b"\r\n\r\n\0X")));
    }

    #[test]
    fn a_bad_v2_fixed_part_is_refused_before_its_payload_arrives() {
        let mut h = encode_v2(sa("10.0.0.1:1"), sa("10.0.0.2:2"));
        h[12] = 0x11; // version 1
        assert!(is_malformed(parse_header(&h[..16])));
        let mut h = encode_v2(sa("10.0.0.1:1"), sa("10.0.0.2:2"));
        h[15] = 4; // shorter than two IPv4 addresses and ports
        assert!(is_malformed(parse_header(&h[..16])));
    }

    #[test]
    fn a_v1_line_without_end_is_refused_at_the_v1_limit() {
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(V1_MAX - 1, b'x');
        assert_eq!(parse_header(&long).unwrap(), Parsed::NeedMore(V1_MAX));
        long.push(b'x');
        assert!(is_malformed(parse_header(&long)));
    }

    #[test]
    fn a_v1_line_ending_in_a_bare_lf_or_a_stray_cr_is_refused() {
        assert!(is_malformed(parse_header(
            b"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\n"
        )));
        assert!(is_malformed(parse_header(b"PROXY TCP4\r 10.0.0.1")));
        assert!(is_malformed(parse_header(b"PROXY UNKNOWN\r \r\n")));
    }
}

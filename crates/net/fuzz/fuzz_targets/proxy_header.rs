//! Arbitrary bytes into the sans-io PROXY header parser: it must never panic; a header it
//! finds lies within the input and parses the same from exactly its own bytes; and no strict
//! prefix of the input contradicts the answer for the whole (a prefix of a header, or of a
//! beginning that needs more, needs more; a prefix of a refused input needs more or is
//! refused too).
#![no_main]

use libfuzzer_sys::fuzz_target;
use hasocks_net::proxy::{parse_header, Parsed, ProxyError};

fuzz_target!(|data: &[u8]| {
    let whole = parse_header(data);
    // Strict prefixes up to `end` must need more; from `end` on they must give `whole` again.
    let end = match &whole {
        Ok(Parsed::Header { len, header }) => {
            assert!(*len > 0 && *len <= data.len(), "len {len} of {}", data.len());
            assert_eq!(
                parse_header(&data[..*len]).ok(),
                Some(Parsed::Header {
                    len: *len,
                    header: *header
                })
            );
            *len
        }
        Ok(Parsed::NeedMore(n)) => {
            assert!(*n > data.len(), "needs {n} with {} bytes", data.len());
            data.len()
        }
        Err(ProxyError::Malformed(_)) => data.len(),
        Err(e) => panic!("a pure parse gave a non-parse error: {e}"),
    };
    for cut in 0..data.len() {
        let part = parse_header(&data[..cut]);
        match (&whole, part) {
            (Ok(Parsed::Header { len, .. }), Ok(Parsed::NeedMore(n))) if cut < end => {
                assert!(n > cut && n <= *len, "cut {cut}: needs {n}, header is {len}")
            }
            (Ok(w), Ok(p)) if cut >= end => assert_eq!(*w, p, "cut {cut}"),
            (Ok(Parsed::NeedMore(n)), Ok(Parsed::NeedMore(m))) => {
                assert!(m > cut && m <= *n, "cut {cut}: needs {m}, whole needs {n}")
            }
            (Err(ProxyError::Malformed(_)), Ok(Parsed::NeedMore(n))) => assert!(n > cut),
            (Err(ProxyError::Malformed(_)), Err(ProxyError::Malformed(_))) => {}
            (w, p) => panic!("cut {cut}: prefix gives {p:?}, whole gives {w:?}"),
        }
    }
});

//! Feeds arbitrary bytes to every decoder; whatever decodes must re-encode to
//! exactly the bytes consumed (modulo the lenient RSV bytes) and decode again
//! to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use hasocks_socks_wire::udp::UdpHeader;
use hasocks_socks_wire::{v4, v5, WireError};

/// Checks one decoder: consumed <= len, and encode/decode round trips.
/// `lenient` lists byte offsets the encoder normalises (RSV fields).
fn check<M: std::fmt::Debug + PartialEq>(
    data: &[u8],
    decode: fn(&[u8]) -> Result<Option<(M, usize)>, WireError>,
    encode: fn(&M, &mut Vec<u8>),
    lenient: &[usize],
) {
    let Ok(Some((msg, used))) = decode(data) else {
        return;
    };
    assert!(used <= data.len(), "consumed {used} of {}", data.len());
    let mut out = Vec::new();
    encode(&msg, &mut out);
    assert_eq!(out.len(), used, "re-encoded length differs for {msg:?}");
    for (i, (a, b)) in out.iter().zip(&data[..used]).enumerate() {
        if !lenient.contains(&i) {
            assert_eq!(a, b, "byte {i} differs for {msg:?}");
        }
    }
    assert_eq!(decode(&out), Ok(Some((msg, used))));
    // Every strict prefix of a valid message asks for more bytes.
    for k in 0..used {
        assert_eq!(
            decode(&out[..k]).map(|o| o.is_some()),
            Ok(false),
            "prefix {k}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = hasocks_socks_wire::peek_version(data);
    check(data, v5::Greeting::decode, v5::Greeting::encode, &[]);
    check(
        data,
        v5::MethodSelection::decode,
        v5::MethodSelection::encode,
        &[],
    );
    check(data, v5::Request::decode, v5::Request::encode, &[2]);
    check(data, v5::Reply::decode, v5::Reply::encode, &[2]);
    check(
        data,
        v5::UserPassRequest::decode,
        v5::UserPassRequest::encode,
        &[],
    );
    check(
        data,
        v5::UserPassReply::decode,
        v5::UserPassReply::encode,
        &[],
    );
    check(data, v4::Request::decode, v4::Request::encode, &[]);
    check(data, v4::Reply::decode, v4::Reply::encode, &[]);

    if let Ok((hdr, len)) = UdpHeader::decode(data) {
        assert!(len <= data.len());
        assert_eq!(hdr.encoded_len(), len);
        let mut out = Vec::new();
        hdr.encode(&mut out);
        assert_eq!(out.len(), len);
        assert_eq!(out[2..], data[2..len], "only RSV may differ");
        assert_eq!(UdpHeader::decode(&out), Ok((hdr, len)));
    }
});

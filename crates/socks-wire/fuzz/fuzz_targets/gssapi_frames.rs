//! Feeds arbitrary bytes to the RFC 1961 framing as the server reads it: a stream of
//! messages split one by one. Whatever decodes must re-encode to exactly the bytes it used,
//! `locate` must agree with `decode`, every strict prefix must ask for more bytes, and a
//! protection-level token must give a level or an error, never a panic.
#![no_main]

use hasocks_socks_wire::gssapi::{Frame, ProtectionLevel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    // A stream of messages, as the data path reads it; bounded by the input.
    while let Ok(Some((frame, used))) = Frame::decode(rest) {
        assert!(used >= 2 && used <= rest.len(), "consumed {used} of {}", rest.len());
        let (kind, start, end) = Frame::locate(rest).unwrap().unwrap();
        assert_eq!(end, used);
        let mut out = Vec::new();
        frame.encode(&mut out);
        assert_eq!(out, rest[..used], "re-encoding differs for {frame:?}");
        for k in 0..used.min(8) {
            assert_eq!(Frame::decode(&out[..k]), Ok(None), "prefix {k}");
        }
        assert_eq!(Frame::decode(&out[..used - 1]), Ok(None));
        match &frame {
            Frame::Token { kind: k, token } => {
                assert_eq!(kind, Some(*k));
                assert_eq!(&rest[start..end], &token[..]);
                if let Ok(level) = ProtectionLevel::from_token(token) {
                    assert_eq!(ProtectionLevel::from_u8(level.as_u8()), Ok(level));
                }
            }
            Frame::Abort => assert_eq!(kind, None),
        }
        rest = &rest[used..];
    }
});

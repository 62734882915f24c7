//! Property tests: for arbitrary valid messages, decode(encode(m)) gives back
//! m and the exact length, every strict prefix asks for more bytes, and bytes
//! after the message are left alone. Arbitrary input never panics a decoder.

use std::fmt::Debug;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use hasocks_socks_wire::udp::UdpHeader;
use hasocks_socks_wire::{v4, v5, TargetAddr, WireError};
use proptest::prelude::*;

type Decode<M> = fn(&[u8]) -> Result<Option<(M, usize)>, WireError>;

/// The round-trip, prefix and trailing-data properties for one message.
fn assert_round_trip<M: Debug + PartialEq + Clone>(
    msg: &M,
    encode: fn(&M, &mut Vec<u8>),
    decode: Decode<M>,
    trailing: &[u8],
) -> Result<(), TestCaseError> {
    let mut buf = Vec::new();
    encode(msg, &mut buf);
    let len = buf.len();
    prop_assert_eq!(decode(&buf), Ok(Some((msg.clone(), len))));
    for k in 0..len {
        prop_assert_eq!(decode(&buf[..k]), Ok(None), "prefix of {} bytes", k);
    }
    buf.extend_from_slice(trailing);
    prop_assert_eq!(decode(&buf), Ok(Some((msg.clone(), len))));
    // Encoding appends rather than overwriting.
    let mut out = vec![0xEE];
    encode(msg, &mut out);
    prop_assert_eq!(&out[1..], &buf[..len]);
    Ok(())
}

/// Domain names the wire accepts: 1..=255 bytes of UTF-8 without NUL.
fn domain() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{1,63}(\\.[a-z0-9-]{1,63}){0,3}",
        proptest::collection::vec(any::<char>().prop_filter("no NUL", |c| *c != '\0'), 1..80)
            .prop_map(|cs| cs.into_iter().collect::<String>()),
    ]
    .prop_map(|mut s| {
        while s.len() > 255 {
            s.pop();
        }
        s
    })
}

fn target() -> impl Strategy<Value = TargetAddr> {
    prop_oneof![
        (any::<Ipv4Addr>(), any::<u16>())
            .prop_map(|(ip, p)| TargetAddr::Ip(SocketAddr::V4(SocketAddrV4::new(ip, p)))),
        (any::<std::net::Ipv6Addr>(), any::<u16>())
            .prop_map(|(ip, p)| TargetAddr::Ip(SocketAddr::V6(SocketAddrV6::new(ip, p, 0, 0)))),
        (domain(), any::<u16>()).prop_map(|(d, p)| TargetAddr::Domain(d, p)),
    ]
}

fn v5_command() -> impl Strategy<Value = v5::Command> {
    prop_oneof![
        Just(v5::Command::Connect),
        Just(v5::Command::Bind),
        Just(v5::Command::UdpAssociate),
    ]
}

fn v4_request() -> impl Strategy<Value = v4::Request> {
    let command = prop_oneof![Just(v4::Command::Connect), Just(v4::Command::Bind)];
    let user_id = proptest::collection::vec(1u8..=255, 0..=255);
    let addr = prop_oneof![
        any::<Ipv4Addr>()
            .prop_filter(
                "not a 4a marker",
                |ip| !matches!(ip.octets(), [0, 0, 0, x] if x != 0)
            )
            .prop_map(|ip| (ip, None)),
        (1u8..=255, domain()).prop_map(|(x, h)| (Ipv4Addr::new(0, 0, 0, x), Some(h))),
    ];
    (command, any::<u16>(), addr, user_id).prop_map(|(command, port, (ip, host), user_id)| {
        v4::Request {
            command,
            port,
            ip,
            user_id,
            host,
        }
    })
}

fn trailing() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..16)
}

proptest! {
    #[test]
    fn greeting_round_trips(methods in proptest::collection::vec(any::<u8>(), 1..=255), t in trailing()) {
        assert_round_trip(&v5::Greeting { methods }, v5::Greeting::encode, v5::Greeting::decode, &t)?;
    }

    #[test]
    fn method_selection_round_trips(method in any::<u8>(), t in trailing()) {
        assert_round_trip(&v5::MethodSelection { method }, v5::MethodSelection::encode, v5::MethodSelection::decode, &t)?;
    }

    #[test]
    fn v5_request_round_trips(command in v5_command(), target in target(), t in trailing()) {
        assert_round_trip(&v5::Request { command, target }, v5::Request::encode, v5::Request::decode, &t)?;
    }

    #[test]
    fn v5_reply_round_trips(code in any::<u8>(), bound in target(), t in trailing()) {
        assert_round_trip(&v5::Reply { code, bound }, v5::Reply::encode, v5::Reply::decode, &t)?;
    }

    #[test]
    fn v5_request_ignores_reserved_byte(command in v5_command(), target in target(), rsv in any::<u8>()) {
        let req = v5::Request { command, target };
        let mut buf = Vec::new();
        req.encode(&mut buf);
        buf[2] = rsv;
        prop_assert_eq!(v5::Request::decode(&buf), Ok(Some((req, buf.len()))));
    }

    #[test]
    fn userpass_request_round_trips(
        username in proptest::collection::vec(any::<u8>(), 0..=255),
        password in proptest::collection::vec(any::<u8>(), 0..=255),
        t in trailing(),
    ) {
        assert_round_trip(&v5::UserPassRequest { username, password }, v5::UserPassRequest::encode, v5::UserPassRequest::decode, &t)?;
    }

    #[test]
    fn userpass_reply_round_trips(status in any::<u8>(), t in trailing()) {
        assert_round_trip(&v5::UserPassReply { status }, v5::UserPassReply::encode, v5::UserPassReply::decode, &t)?;
    }

    #[test]
    fn v4_request_round_trips(req in v4_request(), t in trailing()) {
        assert_round_trip(&req, v4::Request::encode, v4::Request::decode, &t)?;
    }

    #[test]
    fn v4_request_target_matches_its_fields(req in v4_request()) {
        match req.target() {
            TargetAddr::Domain(h, p) => {
                prop_assert!(req.is_4a());
                prop_assert_eq!(Some(h), req.host.clone());
                prop_assert_eq!(p, req.port);
            }
            TargetAddr::Ip(a) => {
                prop_assert!(!req.is_4a());
                prop_assert_eq!(a, SocketAddr::V4(SocketAddrV4::new(req.ip, req.port)));
            }
        }
    }

    #[test]
    fn v4_reply_round_trips(code in any::<u8>(), port in any::<u16>(), ip in any::<Ipv4Addr>(), t in trailing()) {
        assert_round_trip(&v4::Reply { code, port, ip }, v4::Reply::encode, v4::Reply::decode, &t)?;
    }

    #[test]
    fn udp_header_round_trips_and_leaves_payload(
        frag in any::<u8>(),
        target in target(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let hdr = UdpHeader { frag, target };
        let mut dg = Vec::new();
        hdr.encode(&mut dg);
        prop_assert_eq!(dg.len(), hdr.encoded_len());
        let len = dg.len();
        dg.extend_from_slice(&payload);
        let (got, n) = UdpHeader::decode(&dg).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got, hdr);
        prop_assert_eq!(n, len);
        prop_assert_eq!(&dg[n..], &payload[..]);
        for k in 0..len {
            prop_assert_eq!(UdpHeader::decode(&dg[..k]), Err(WireError::Truncated));
        }
    }

    #[test]
    fn display_of_domain_target_is_name_colon_port(name in domain(), port in any::<u16>()) {
        prop_assert_eq!(TargetAddr::Domain(name.clone(), port).to_string(), format!("{name}:{port}"));
    }

    #[test]
    fn decoders_never_panic_and_never_overreach(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        fn used<M>(r: Result<Option<(M, usize)>, WireError>) -> usize {
            r.ok().flatten().map_or(0, |(_, n)| n)
        }
        let n = data.len();
        prop_assert!(used(v5::Greeting::decode(&data)) <= n);
        prop_assert!(used(v5::MethodSelection::decode(&data)) <= n);
        prop_assert!(used(v5::Request::decode(&data)) <= n);
        prop_assert!(used(v5::Reply::decode(&data)) <= n);
        prop_assert!(used(v5::UserPassRequest::decode(&data)) <= n);
        prop_assert!(used(v5::UserPassReply::decode(&data)) <= n);
        prop_assert!(used(v4::Request::decode(&data)) <= n);
        prop_assert!(used(v4::Reply::decode(&data)) <= n);
        if let Ok((_, len)) = UdpHeader::decode(&data) {
            prop_assert!(len <= n);
        }
    }
}

fn gssapi_frame() -> impl Strategy<Value = hasocks_socks_wire::gssapi::Frame> {
    use hasocks_socks_wire::gssapi::{Frame, MessageType};
    let kind = prop_oneof![
        Just(MessageType::Authentication),
        Just(MessageType::Protection),
        Just(MessageType::Encapsulation),
    ];
    prop_oneof![
        Just(Frame::Abort),
        (kind, proptest::collection::vec(any::<u8>(), 0..2000))
            .prop_map(|(kind, token)| Frame::Token { kind, token }),
    ]
}

proptest! {
    #[test]
    fn gssapi_frame_round_trips(f in gssapi_frame(), trailing in proptest::collection::vec(any::<u8>(), 0..8)) {
        use hasocks_socks_wire::gssapi::Frame;
        assert_round_trip(&f, Frame::encode, Frame::decode, &trailing)?;
    }

    #[test]
    fn gssapi_frames_split_a_stream_where_they_were_joined(fs in proptest::collection::vec(gssapi_frame(), 1..6)) {
        use hasocks_socks_wire::gssapi::Frame;
        let mut stream = Vec::new();
        for f in &fs {
            f.encode(&mut stream);
        }
        let mut got = Vec::new();
        let mut at = 0;
        while let Some((f, n)) = Frame::decode(&stream[at..]).unwrap() {
            got.push(f);
            at += n;
        }
        prop_assert_eq!(at, stream.len());
        prop_assert_eq!(got, fs);
    }

    #[test]
    fn gssapi_decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        use hasocks_socks_wire::gssapi::Frame;
        if let Ok(Some((_, n))) = Frame::decode(&data) {
            prop_assert!(n <= data.len());
        }
    }
}

//! PROXY protocol headers read off real loopback sockets.

use std::net::SocketAddr;
use std::time::Duration;

use hasocks_net::proxy::{
    encode_v1, encode_v2, encode_v2_local, read_header, ProxyError, ProxyHeader,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const DEADLINE: Duration = Duration::from_secs(10);

async fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (s, _) = l.accept().await.unwrap();
    (c, s)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Sends `chunks` one write each, reads a header, then returns it and the bytes that follow.
async fn exchange(chunks: &[&[u8]]) -> (Result<Option<ProxyHeader>, ProxyError>, Vec<u8>) {
    let (mut c, mut s) = pair().await;
    for chunk in chunks {
        c.write_all(chunk).await.unwrap();
    }
    c.shutdown().await.unwrap();
    let res = read_header(&mut s, DEADLINE).await;
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest).await;
    (res, rest)
}

async fn round_trip(encode: fn(SocketAddr, SocketAddr) -> Vec<u8>, src: &str, dst: &str) {
    let (src, dst) = (sa(src), sa(dst));
    let header = encode(src, dst);
    let socks = [5u8, 1, 0]; // a SOCKS5 greeting must stay in the socket
    let (res, rest) = exchange(&[&header, &socks]).await;
    assert_eq!(res.unwrap(), Some(ProxyHeader { src, dst }));
    assert_eq!(rest, socks);
}

#[tokio::test]
async fn v1_ipv4_round_trips_and_leaves_the_following_bytes() {
    round_trip(encode_v1, "192.0.2.10:40001", "127.0.0.1:1080").await;
}

#[tokio::test]
async fn v1_ipv6_round_trips_and_leaves_the_following_bytes() {
    round_trip(encode_v1, "[2001:db8::10]:40001", "[::1]:1080").await;
}

#[tokio::test]
async fn v2_ipv4_round_trips_and_leaves_the_following_bytes() {
    round_trip(encode_v2, "192.0.2.10:40001", "127.0.0.1:1080").await;
}

#[tokio::test]
async fn v2_ipv6_round_trips_and_leaves_the_following_bytes() {
    round_trip(encode_v2, "[2001:db8::10]:40001", "[::1]:1080").await;
}

#[tokio::test]
async fn v1_header_split_over_several_writes_is_read_whole() {
    let (res, rest) = exchange(&[b"PROX", b"Y TCP4 10.0.0.1 ", b"10.0.0.2 1 2\r", b"\nGET"]).await;
    assert_eq!(
        res.unwrap(),
        Some(ProxyHeader {
            src: sa("10.0.0.1:1"),
            dst: sa("10.0.0.2:2")
        })
    );
    assert_eq!(rest, b"GET");
}

#[tokio::test]
async fn v1_unknown_is_none() {
    let (res, rest) = exchange(&[b"PROXY UNKNOWN\r\n\x05"]).await;
    assert_eq!(res.unwrap(), None);
    assert_eq!(rest, [5]);
}

#[tokio::test]
async fn v2_local_is_none() {
    let mut local = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    local.extend_from_slice(&[0x20, 0x00, 0, 0, 5]);
    let (res, rest) = exchange(&[&local]).await;
    assert_eq!(res.unwrap(), None);
    assert_eq!(rest, [5]);
}

#[tokio::test]
async fn encoded_v2_local_is_none_and_leaves_the_following_bytes() {
    let (res, rest) = exchange(&[&encode_v2_local(), &[5, 1, 0]]).await;
    assert_eq!(res.unwrap(), None);
    assert_eq!(rest, [5, 1, 0]);
}

#[tokio::test]
async fn v2_header_longer_than_one_peek_is_read_whole_and_no_further() {
    let (src, dst) = (sa("192.0.2.10:40001"), sa("127.0.0.1:1080"));
    let mut header = encode_v2(src, dst);
    // A NOOP TLV with 2000 value bytes: the header is 2031 bytes, sent in uneven writes.
    let tlv_len: u16 = 2000;
    let total = 12 + 3 + tlv_len;
    header[14..16].copy_from_slice(&total.to_be_bytes());
    header.push(0x04);
    header.extend_from_slice(&tlv_len.to_be_bytes());
    header.resize(header.len() + usize::from(tlv_len), 0xaa);
    let (a, b) = header.split_at(700);
    let (res, rest) = exchange(&[a, b, &[5, 1, 0]]).await;
    assert_eq!(res.unwrap(), Some(ProxyHeader { src, dst }));
    assert_eq!(rest, [5, 1, 0]);
}

#[tokio::test]
async fn plain_socks_bytes_are_malformed() {
    let (res, _) = exchange(&[&[5, 1, 0]]).await;
    assert!(matches!(res, Err(ProxyError::Malformed(_))), "{res:?}");
}

#[tokio::test]
async fn garbage_after_the_v1_prefix_is_malformed() {
    let (res, _) = exchange(&[b"PROXY TCP4 not-an-address\r\n"]).await;
    assert!(matches!(res, Err(ProxyError::Malformed(_))), "{res:?}");
}

#[tokio::test]
async fn v1_line_without_end_is_malformed() {
    let long = [b'P'; 200];
    let (res, _) = exchange(&[&long]).await;
    assert!(matches!(res, Err(ProxyError::Malformed(_))), "{res:?}");
}

#[tokio::test]
async fn broken_v2_signature_is_malformed() {
    let (res, _) = exchange(&[b"\r\n\r\nXXXXXXXXXXXXXXXXXX"]).await;
    assert!(matches!(res, Err(ProxyError::Malformed(_))), "{res:?}");
}

#[tokio::test]
async fn silent_peer_times_out() {
    let (_c, mut s) = pair().await;
    let res = read_header(&mut s, Duration::from_millis(200)).await;
    assert!(matches!(res, Err(ProxyError::Timeout)), "{res:?}");
}

#[tokio::test]
async fn peer_stalling_mid_header_times_out() {
    let (mut c, mut s) = pair().await;
    c.write_all(b"PROXY TCP4 10.0.").await.unwrap();
    let res = read_header(&mut s, Duration::from_millis(200)).await;
    assert!(matches!(res, Err(ProxyError::Timeout)), "{res:?}");
}

#[tokio::test]
async fn peer_closing_mid_header_is_an_io_error() {
    let (res, _) = exchange(&[b"PROXY TCP4 10.0."]).await;
    assert!(matches!(res, Err(ProxyError::Io(_))), "{res:?}");
}

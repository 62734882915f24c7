//! Malformed, truncated and silent clients: the right reply or a clean close, never a crash,
//! and other sessions keep working.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn garbage_then_eof(proxy: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let _ = s.write_all(bytes).await;
    let _ = s.shutdown().await;
    read_to_eof(&mut s).await
}

#[tokio::test]
async fn malformed_inputs_are_closed_and_the_server_keeps_serving() {
    let (_h, proxy) = start(&open_conf("")).await;
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\n\r\n",        // not SOCKS at all
        &[5],                             // truncated greeting
        &[5, 0],                          // zero methods
        &[5, 3, 0],                       // fewer methods than announced
        &[5, 1, 0, 5, 1, 0, 3, 0, 0, 80], // zero-length name
        &[5, 1, 0, 5, 1, 0, 1, 127],      // truncated address
        &[4, 1, 0, 80, 127, 0, 0, 1],     // SOCKS4 without USERID terminator
        &[4, 1, 0, 80, 0, 0, 0, 1, 0],    // SOCKS4a without host name
        &[0xff; 64],
    ];
    for c in cases {
        let reply = garbage_then_eof(proxy, c).await;
        assert!(
            reply.len() <= 12,
            "short reply or none for {c:?}: {reply:?}"
        );
    }
    // An over-long SOCKS4 user id is refused rather than buffered without end.
    let mut long = vec![4, 1, 0, 80, 127, 0, 0, 1];
    long.extend(std::iter::repeat_n(b'a', 10_000));
    let reply = garbage_then_eof(proxy, &long).await;
    assert!(reply.is_empty() || reply[1] == 91);

    let target = echo_server("127.0.0.1").await;
    let (mut s, rep, _) = socks5(proxy, &request_ip(1, target)).await;
    assert_eq!(rep, 0);
    assert_echo(&mut s, b"alive").await;
}

#[tokio::test]
async fn zero_length_name_gets_a_failure_reply() {
    let (_h, proxy) = start(&open_conf("")).await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    greet(&mut s).await;
    s.write_all(&[5, 1, 0, 3, 0, 0, 80]).await.unwrap();
    let (rep, _) = read_reply(&mut s).await;
    assert_ne!(rep, 0);
}

#[tokio::test]
async fn silent_client_is_dropped_at_timeout_negotiate_while_others_are_served() {
    let (_h, proxy) = start(&open_conf("timeout.negotiate: 1")).await;
    let mut silent = TcpStream::connect(proxy).await.unwrap();
    let mut half = TcpStream::connect(proxy).await.unwrap();
    half.write_all(&[5, 1]).await.unwrap(); // greeting cut in the middle
    let target = echo_server("127.0.0.1").await;
    let (mut s, rep, _) = socks5(proxy, &request_ip(1, target)).await;
    assert_eq!(rep, 0);
    assert_echo(&mut s, b"not disturbed").await;
    let mut b = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut b))
        .await
        .expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)));
    let n = tokio::time::timeout(Duration::from_secs(10), half.read(&mut b))
        .await
        .expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)));
}

#[tokio::test]
async fn many_abrupt_disconnects_do_not_disturb_a_long_session() {
    let (_h, proxy) = start(&open_conf("")).await;
    let target = echo_server("127.0.0.1").await;
    let (mut long, rep, _) = socks5(proxy, &request_ip(1, target)).await;
    assert_eq!(rep, 0);
    for i in 0..200u32 {
        let mut s = TcpStream::connect(proxy).await.unwrap();
        let bytes = [5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1];
        let _ = s.write_all(&bytes[..(i as usize % bytes.len())]).await;
        drop(s);
    }
    assert_echo(&mut long, b"still here").await;
}

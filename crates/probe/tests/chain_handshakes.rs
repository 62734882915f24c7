//! The upstream handshakes of server chaining against tiny proxies written with raw bytes:
//! HTTP CONNECT (head split across segments, bytes right after it kept for the tunnel,
//! refusals by status), SOCKS4 and SOCKS5 offering both methods.

use std::net::SocketAddr;
use std::time::Duration;

use hasocks_probe::chain::Handshake;
use hasocks_probe::{Auth, Offer, ProbeError};
use hasocks_socks_wire::v5::Command;
use hasocks_socks_wire::TargetAddr;
use hasocks_test_support::fake_socks::{fake_server, Fake};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// A one-connection proxy that reads the request head, then writes `answer` in `pieces`
/// (separate writes, a flush between), and returns the request head it read.
async fn http_proxy(
    answer: &'static [u8],
    pieces: usize,
) -> (SocketAddr, tokio::task::JoinHandle<String>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).await.unwrap();
            head.push(b[0]);
        }
        let step = answer.len().div_ceil(pieces);
        for chunk in answer.chunks(step) {
            s.write_all(chunk).await.unwrap();
            s.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        String::from_utf8(head).unwrap()
    });
    (addr, task)
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[tokio::test]
async fn http_connect_reads_a_split_head_and_leaves_the_tunnel_bytes() {
    let answer: &[u8] = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\nHELLO";
    let (proxy, task) = http_proxy(answer, 5).await;
    let s = TcpStream::connect(proxy).await.unwrap();
    let target = TargetAddr::domain("example.org", 443).unwrap();
    let (mut s, _) = Handshake::Http
        .run(s, Command::Connect, &target, deadline())
        .await
        .unwrap();
    let mut rest = [0u8; 5];
    s.read_exact(&mut rest).await.unwrap();
    assert_eq!(&rest, b"HELLO");
    let head = task.await.unwrap();
    assert!(
        head.starts_with("CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n"),
        "{head}"
    );
}

#[tokio::test]
async fn http_refusal_is_its_status_and_ipv6_targets_are_bracketed() {
    let (proxy, task) = http_proxy(b"HTTP/1.0 403 Forbidden\r\n\r\n", 1).await;
    let s = TcpStream::connect(proxy).await.unwrap();
    let target = TargetAddr::Ip("[2001:db8::1]:80".parse().unwrap());
    let err = Handshake::Http
        .run(s, Command::Connect, &target, deadline())
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::HttpStatus(403, _)), "{err:?}");
    assert!(task.await.unwrap().starts_with("CONNECT [2001:db8::1]:80 "));
}

#[tokio::test]
async fn http_and_socks4_refuse_commands_other_than_connect() {
    let (proxy, _task) = http_proxy(b"HTTP/1.1 200 OK\r\n\r\n", 1).await;
    let s = TcpStream::connect(proxy).await.unwrap();
    let target = TargetAddr::Ip("127.0.0.1:9".parse().unwrap());
    let err = Handshake::Http
        .run(s, Command::Bind, &target, deadline())
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn socks5_offering_both_methods_logs_in_when_the_proxy_wants_it() {
    let proxy = fake_server(Fake::NeedsLogin).await;
    let echo = hasocks_test_support::targets::echo_server("127.0.0.1").await;
    let auth = Auth {
        user: "u".into(),
        pass: "p".into(),
    };
    let offer = Offer {
        none: true,
        auth: Some(&auth),
    };
    let s = TcpStream::connect(proxy).await.unwrap();
    let (mut s, _) = Handshake::Socks5(offer)
        .run(s, Command::Connect, &TargetAddr::Ip(echo), deadline())
        .await
        .unwrap();
    s.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"ping");
}

#[tokio::test]
async fn socks4_grant_and_refusal() {
    // A one-shot SOCKS4 proxy answering 91.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut req = [0u8; 9];
        s.read_exact(&mut req).await.unwrap();
        s.write_all(&[0, 91, 0, 0, 0, 0, 0, 0]).await.unwrap();
    });
    let s = TcpStream::connect(proxy).await.unwrap();
    let target = TargetAddr::Ip("127.0.0.1:9".parse().unwrap());
    let err = Handshake::Socks4(b"")
        .run(s, Command::Connect, &target, deadline())
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Socks4Rejected(91)), "{err:?}");
}

//! BIND end to end: a second socket plays the remote peer that connects to the rendezvous.

mod common;

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Connects to `to` from `from_ip` (so the peer's address is known to the test).
async fn peer_connect(from_ip: &str, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{from_ip}:0").parse().unwrap()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), s.connect(to))
        .await
        .expect("peer connects in time")
        .unwrap()
}

/// Data both ways between the SOCKS client and the peer.
async fn check_both_ways(client: &mut TcpStream, peer: &mut TcpStream) {
    client.write_all(b"from client").await.unwrap();
    let mut b = [0u8; 11];
    tokio::time::timeout(Duration::from_secs(5), peer.read_exact(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&b, b"from client");
    peer.write_all(b"from peer").await.unwrap();
    let mut b = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&b, b"from peer");
}

/// Waits until the server closes `s` (EOF or reset).
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 16];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// A SOCKS5 BIND naming `peer` (`ip:port`); the reply code and the rendezvous address.
async fn bind5(proxy: SocketAddr, peer: &str) -> (TcpStream, u8, SocketAddr) {
    socks5(proxy, &request_ip(2, peer.parse().unwrap())).await
}

/// A SOCKS4 BIND naming 127.0.0.2:21, granted (90); the rendezvous address.
async fn bind4(proxy: SocketAddr) -> (TcpStream, SocketAddr) {
    let mut client = TcpStream::connect(proxy).await.unwrap();
    let req = socks4_request(2, SocketAddrV4::new([127, 0, 0, 2].into(), 21));
    client.write_all(&req).await.unwrap();
    let (cd, bnd) = read_v4_reply(&mut client).await;
    assert_eq!(cd, 90);
    (client, bnd)
}

/// A peer from `stranger` is closed, then one from `named` gets through and data flows.
async fn only_the_named_peer_gets_through(
    client: &mut TcpStream,
    bnd: SocketAddr,
    stranger: &str,
    named: &str,
) {
    let mut s = peer_connect(stranger, bnd).await;
    assert!(closed_by_server(&mut s).await, "{stranger} is closed");
    let mut peer = peer_connect(named, bnd).await;
    let (rep, who) = read_reply(client).await;
    assert_eq!((rep, who), (0, peer.local_addr().unwrap()));
    check_both_ways(client, &mut peer).await;
}

#[tokio::test]
async fn socks5_bind_listens_on_external_and_relays_both_ways() {
    let (_h, proxy) = start(&open_conf("")).await;
    let (mut client, rep, bnd) = bind5(proxy, "127.0.0.2:0").await;
    assert_eq!(rep, 0);
    assert_eq!(
        bnd.ip().to_string(),
        "127.0.0.1",
        "first reply names the external address"
    );
    assert_ne!(bnd.port(), 0);
    let mut peer = peer_connect("127.0.0.2", bnd).await;
    let (rep, who) = read_reply(&mut client).await;
    assert_eq!(rep, 0);
    assert_eq!(
        who,
        peer.local_addr().unwrap(),
        "second reply names the connecting peer"
    );
    check_both_ways(&mut client, &mut peer).await;
    drop(peer);
    assert_eq!(
        read_to_eof(&mut client).await,
        b"",
        "peer's close reaches the client"
    );
}

#[tokio::test]
async fn socks4_bind_relays_both_ways() {
    let (_h, proxy) = start(&open_conf("")).await;
    let (mut client, bnd) = bind4(proxy).await;
    assert_eq!(bnd.ip().to_string(), "127.0.0.1");
    let mut peer = peer_connect("127.0.0.2", bnd).await;
    let (cd, who) = read_v4_reply(&mut client).await;
    assert_eq!(cd, 90);
    assert_eq!(who, peer.local_addr().unwrap());
    check_both_ways(&mut client, &mut peer).await;
}

#[tokio::test]
async fn socks5_bind_refuses_a_wrong_peer_and_keeps_waiting_for_the_named_one() {
    let (_h, proxy) = start(&open_conf("")).await;
    let (mut client, rep, bnd) = bind5(proxy, "127.0.0.2:0").await;
    assert_eq!(rep, 0);
    // A peer the client did not name is closed.
    only_the_named_peer_gets_through(&mut client, bnd, "127.0.0.3", "127.0.0.2").await;
}

#[tokio::test]
async fn socks4_bind_from_a_wrong_peer_is_rejected_with_91() {
    let (_h, proxy) = start(&open_conf("")).await;
    let (mut client, bnd) = bind4(proxy).await;
    let mut stranger = peer_connect("127.0.0.3", bnd).await;
    let (cd, _) = read_v4_reply(&mut client).await;
    assert_eq!(cd, 91);
    assert!(closed_by_server(&mut stranger).await);
    assert_eq!(read_to_eof(&mut client).await, b"");
}

#[tokio::test]
async fn bind_that_nobody_connects_to_ends_with_ttl_expired() {
    let (_h, proxy) = start(&open_conf("timeout.connect: 1")).await;
    let (mut client, rep, bnd) = bind5(proxy, "127.0.0.2:0").await;
    assert_eq!(rep, 0);
    let (rep, _) = read_reply(&mut client).await;
    assert_eq!(rep, 6, "v5 failure after the wait: TTL expired");
    assert_eq!(read_to_eof(&mut client).await, b"");
    // The rendezvous socket is gone with the session.
    assert!(
        TcpStream::connect(bnd).await.is_err(),
        "nothing listens at {bnd} any more"
    );

    let (mut client, _) = bind4(proxy).await;
    assert_eq!(
        read_v4_reply(&mut client).await.0,
        91,
        "v4 failure after the wait"
    );
}

#[tokio::test]
async fn bindreply_rules_judge_the_connecting_peer() {
    let conf = "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nsocksmethod: none\n\
                client pass { from: 0/0 to: 0/0 }\n\
                socks block { from: 127.0.0.3/32 to: 0/0 command: bindreply }\n\
                socks pass { from: 0/0 to: 0/0 }\n";
    let (_h, proxy) = start(conf).await;
    // The client names no peer: anyone may connect, but the bindreply rules still apply.
    let (mut client, rep, bnd) = bind5(proxy, "0.0.0.0:0").await;
    assert_eq!(rep, 0);
    // The bindreply block rule refuses 127.0.0.3.
    only_the_named_peer_gets_through(&mut client, bnd, "127.0.0.3", "127.0.0.4").await;
}

#[tokio::test]
async fn bind_blocked_by_command_rule_gets_not_allowed() {
    let conf = "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nsocksmethod: none\n\
                client pass { from: 0/0 to: 0/0 }\n\
                socks pass { from: 0/0 to: 0/0 command: connect }\n";
    let (_h, proxy) = start(conf).await;
    let (mut client, rep, _) = bind5(proxy, "127.0.0.2:0").await;
    assert_eq!(rep, 2);
    assert_eq!(read_to_eof(&mut client).await, b"");
}

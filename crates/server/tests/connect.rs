//! CONNECT end to end: real SOCKS bytes over real sockets on 127.0.0.0/8.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn socks5_connect_to_ipv4_target_relays_both_ways() {
    let (_h, proxy) = start(&open_conf("")).await;
    let target = echo_server("127.0.0.1").await;
    let (mut s, rep, bnd) = socks5(proxy, &request_ip(1, target)).await;
    assert_eq!(rep, 0);
    assert_eq!(bnd.ip().to_string(), "127.0.0.1");
    assert_ne!(bnd.port(), 0, "BND is the outgoing socket's local address");
    assert_echo(&mut s, b"hello through hasocks").await;
}

#[tokio::test]
async fn tokio_socks_client_works_with_name_target() {
    let (_h, proxy) = start(&open_conf("")).await;
    let target = echo_server("127.0.0.1").await;
    let mut s = tokio_socks::tcp::Socks5Stream::connect(proxy, ("localhost", target.port()))
        .await
        .expect("connect by name");
    s.write_all(b"ping").await.unwrap();
    let mut b = [0u8; 4];
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"ping");
}

#[tokio::test]
async fn socks5_connect_to_ipv6_target() {
    let Ok(l) = tokio::net::TcpListener::bind("[::1]:0").await else {
        eprintln!("no IPv6 loopback on this machine; nothing to test");
        return;
    };
    let target = l.local_addr().unwrap();
    tokio::spawn(async move {
        if let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(b"v6").await;
        }
    });
    let conf =
        "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nexternal: ::1\nsocksmethod: none\n\
                client pass { from: 0/0 to: 0/0 }\nsocks pass { from: 0/0 to: 0/0 }\n";
    let (_h, proxy) = start(conf).await;
    let (mut s, rep, bnd) = socks5(proxy, &request_ip(1, target)).await;
    assert_eq!(rep, 0);
    assert!(bnd.is_ipv6());
    assert_eq!(read_to_eof(&mut s).await, b"v6");
}

#[tokio::test]
async fn socks4_connect_and_socks4a_hostname() {
    let (_h, proxy) = start(&open_conf("")).await;
    let target = echo_server("127.0.0.1").await;
    // SOCKS4: VN CD PORT IP USERID\0
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let mut req = vec![4, 1];
    req.extend_from_slice(&target.port().to_be_bytes());
    req.extend_from_slice(&[127, 0, 0, 1]);
    req.extend_from_slice(b"user\0");
    s.write_all(&req).await.unwrap();
    let mut rep = [0u8; 8];
    s.read_exact(&mut rep).await.unwrap();
    assert_eq!(&rep[..2], &[0, 90]);
    assert_echo(&mut s, b"four").await;

    // SOCKS4a: DSTIP 0.0.0.1, host name after USERID\0
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let mut req = vec![4, 1];
    req.extend_from_slice(&target.port().to_be_bytes());
    req.extend_from_slice(&[0, 0, 0, 1]);
    req.extend_from_slice(b"\0localhost\0");
    s.write_all(&req).await.unwrap();
    s.read_exact(&mut rep).await.unwrap();
    assert_eq!(&rep[..2], &[0, 90]);
    assert_echo(&mut s, b"four-a").await;
}

#[tokio::test]
async fn refused_target_gets_reply_05_and_socks4_gets_91() {
    let (_h, proxy) = start(&open_conf("")).await;
    let dead = closed_port().await;
    let (mut s, rep, _) = socks5(proxy, &request_ip(1, dead)).await;
    assert_eq!(rep, 5);
    assert!(
        read_to_eof(&mut s).await.is_empty(),
        "connection closes after a failure reply"
    );

    let mut s = TcpStream::connect(proxy).await.unwrap();
    let mut req = vec![4, 1];
    req.extend_from_slice(&dead.port().to_be_bytes());
    req.extend_from_slice(&[127, 0, 0, 1, 0]);
    s.write_all(&req).await.unwrap();
    let mut rep = [0u8; 8];
    s.read_exact(&mut rep).await.unwrap();
    assert_eq!(rep[1], 91);
}

#[tokio::test]
async fn unresolvable_name_gets_host_unreachable() {
    let (_h, proxy) = start(&open_conf("")).await;
    let (_s, rep, _) = socks5(proxy, &request_name(1, "no-such-host.invalid", 80)).await;
    assert_eq!(rep, 4);
}

#[tokio::test]
async fn socks_rule_block_gets_reply_02_and_domain_rule_matches_name_before_resolution() {
    let conf = "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nsocksmethod: none\n\
                client pass { from: 0/0 to: 0/0 }\n\
                socks block { from: 0/0 to: .blocked.invalid }\n\
                socks pass { from: 0/0 to: 127.0.0.0/8 }\n";
    let (_h, proxy) = start(conf).await;
    // The name cannot resolve: a 02 (not 04) proves the rule matched on the name itself.
    let (_s, rep, _) = socks5(proxy, &request_name(1, "www.blocked.invalid", 80)).await;
    assert_eq!(rep, 2);
    // Not matched by any rule: the implicit block.
    let (_s, rep, _) = socks5(proxy, &request_ip(1, "192.0.2.1:80".parse().unwrap())).await;
    assert_eq!(rep, 2);
    let target = echo_server("127.0.0.1").await;
    let (mut s, rep, _) = socks5(proxy, &request_ip(1, target)).await;
    assert_eq!(rep, 0);
    assert_echo(&mut s, b"allowed").await;
}

#[tokio::test]
async fn client_rule_block_closes_without_a_reply() {
    let conf = "internal: 127.0.0.1 port = 0\nsocksmethod: none\n\
                client block { from: 127.0.0.0/8 to: 0/0 }\nsocks pass { from: 0/0 to: 0/0 }\n";
    let (_h, proxy) = start(conf).await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let _ = s.write_all(&[5, 1, 0]).await;
    assert!(read_to_eof(&mut s).await.is_empty());
}

#[tokio::test]
async fn no_socksmethod_refuses_every_request() {
    let conf = "internal: 127.0.0.1 port = 0\n\
                client pass { from: 0/0 to: 0/0 }\nsocks pass { from: 0/0 to: 0/0 }\n";
    let (_h, proxy) = start(conf).await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    assert_eq!(greet(&mut s).await, 0xFF);
}

#[tokio::test]
async fn bad_command_and_address_type_get_07_and_08() {
    let (_h, proxy) = start(&open_conf("")).await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    greet(&mut s).await;
    s.write_all(&[5, 9, 0, 1, 127, 0, 0, 1, 0, 80])
        .await
        .unwrap();
    assert_eq!(read_reply(&mut s).await.0, 7);

    let mut s = TcpStream::connect(proxy).await.unwrap();
    greet(&mut s).await;
    s.write_all(&[5, 1, 0, 7, 127, 0, 0, 1, 0, 80])
        .await
        .unwrap();
    assert_eq!(read_reply(&mut s).await.0, 8);
}

#[tokio::test]
async fn half_close_is_passed_on_and_the_other_direction_keeps_flowing() {
    let (_h, proxy) = start(&open_conf("")).await;
    let (target, rx) = one_shot_server("127.0.0.1").await;
    let (mut s, rep, _) = socks5(proxy, &request_ip(1, target)).await;
    assert_eq!(rep, 0);
    let (mut t, _) = rx.await.unwrap();
    s.write_all(b"request").await.unwrap();
    s.shutdown().await.unwrap(); // client done sending
    let got = read_to_eof(&mut t).await; // target sees the request, then EOF
    assert_eq!(got, b"request");
    t.write_all(b"late answer after your EOF").await.unwrap();
    t.shutdown().await.unwrap();
    assert_eq!(read_to_eof(&mut s).await, b"late answer after your EOF");
}

#[tokio::test]
async fn data_sent_right_after_the_request_is_not_lost() {
    let (_h, proxy) = start(&open_conf("")).await;
    let target = echo_server("127.0.0.1").await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let mut all = vec![5, 1, 0];
    all.extend(request_ip(1, target));
    all.extend_from_slice(b"pipelined");
    s.write_all(&all).await.unwrap();
    let mut sel = [0u8; 2];
    s.read_exact(&mut sel).await.unwrap();
    assert_eq!(read_reply(&mut s).await.0, 0);
    let mut b = [0u8; 9];
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"pipelined");
}

#[tokio::test]
async fn outgoing_connection_leaves_from_the_external_address() {
    let conf = "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.2\nsocksmethod: none\n\
                client pass { from: 0/0 to: 0/0 }\nsocks pass { from: 0/0 to: 0/0 }\n";
    let (_h, proxy) = start(conf).await;
    let (target, rx) = one_shot_server("127.0.0.1").await;
    let (_s, rep, bnd) = socks5(proxy, &request_ip(1, target)).await;
    assert_eq!(rep, 0);
    let (_t, peer): (TcpStream, SocketAddr) = rx.await.unwrap();
    assert_eq!(peer.ip().to_string(), "127.0.0.2");
    assert_eq!(bnd, peer, "BND is the address the target sees");
}

#[tokio::test]
async fn same_same_rotation_leaves_from_the_internal_address() {
    let conf = "internal: 127.0.0.3 port = 0\nexternal: 127.0.0.2\nexternal.rotation: same-same\nsocksmethod: none\n\
                client pass { from: 0/0 to: 0/0 }\nsocks pass { from: 0/0 to: 0/0 }\n";
    let (_h, proxy) = start(conf).await;
    let (target, rx) = one_shot_server("127.0.0.1").await;
    let (_s, rep, _) = socks5(proxy, &request_ip(1, target)).await;
    assert_eq!(rep, 0);
    let (_t, peer) = rx.await.unwrap();
    assert_eq!(peer.ip().to_string(), "127.0.0.3");
}

#[tokio::test]
async fn connect_and_disconnect_are_logged_with_bytes() {
    let dir = std::env::temp_dir().join(format!("hasocks-connect-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("sockd.log");
    let conf = format!(
        "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nsocksmethod: none\nlogoutput: {}\n\
         client pass {{ from: 0/0 to: 0/0 }}\nsocks pass {{ from: 0/0 to: 0/0 log: connect disconnect error }}\n",
        log.display()
    );
    let (_h, proxy) = start(&conf).await;
    let target = echo_server("127.0.0.1").await;
    let (mut s, rep, _) = socks5(proxy, &request_ip(1, target)).await;
    assert_eq!(rep, 0);
    assert_echo(&mut s, b"0123456789").await;
    drop(s);
    let ok = wait_for(
        || {
            std::fs::read_to_string(&log)
                .map(|t| t.contains(" ]: "))
                .unwrap_or(false)
        },
        Duration::from_secs(5),
    )
    .await;
    assert!(ok, "disconnect line written");
    let text = std::fs::read_to_string(&log).unwrap();
    let connect = text
        .lines()
        .find(|l| l.contains(" [: "))
        .expect("connect line");
    assert!(
        connect.contains("pass(1) socks5/connect") && connect.contains(&format!("target {target}")),
        "{connect}"
    );
    let disc = text.lines().find(|l| l.contains(" ]: ")).unwrap();
    assert!(disc.contains("10 bytes up, 10 bytes down"), "{disc}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn reload_applies_new_rules_to_new_sessions_only() {
    let (h, proxy) = start(&open_conf("")).await;
    let target = echo_server("127.0.0.1").await;
    let (mut open, rep, _) = socks5(proxy, &request_ip(1, target)).await;
    assert_eq!(rep, 0);
    let blocking = "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nsocksmethod: none\n\
                    client pass { from: 0/0 to: 0/0 }\nsocks block { from: 0/0 to: 0/0 }\n";
    h.reload(hasocks_conf::sockd::parse(blocking, std::path::Path::new("new.conf")).unwrap())
        .await
        .unwrap();
    let (_s, rep, _) = socks5(proxy, &request_ip(1, target)).await;
    assert_eq!(rep, 2, "new session sees the new rules");
    assert_echo(&mut open, b"still flowing").await;
}

#[tokio::test]
async fn shutdown_waits_for_open_sessions_then_cuts_them() {
    let (h, proxy) = start(&open_conf("")).await;
    let target = echo_server("127.0.0.1").await;
    let (mut s, rep, _) = socks5(proxy, &request_ip(1, target)).await;
    assert_eq!(rep, 0);
    let cut = h.shutdown(Duration::from_millis(300)).await;
    assert_eq!(cut, 1);
    assert!(read_to_eof(&mut s).await.is_empty());
    assert!(
        TcpStream::connect(proxy).await.is_err(),
        "no longer accepting"
    );
}

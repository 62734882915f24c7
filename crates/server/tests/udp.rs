//! UDP ASSOCIATE end to end: real datagrams through an association to local echo servers.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use hasocks_socks_wire::TargetAddr;
use tokio::io::AsyncReadExt;
use tokio::net::UdpSocket;

async fn client_socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

/// Sends `payload` to `target` through the association at `bnd` and returns the reply.
async fn through(
    s: &UdpSocket,
    bnd: SocketAddr,
    target: TargetAddr,
    payload: &[u8],
) -> (TargetAddr, Vec<u8>) {
    s.send_to(&udp_wrap(0, target, payload), bnd).await.unwrap();
    udp_recv_unwrap(s).await
}

fn unspecified() -> SocketAddr {
    "0.0.0.0:0".parse().unwrap()
}

#[tokio::test]
async fn echo_through_an_association_to_an_ipv4_target() {
    let (_h, proxy) = start(&open_conf("")).await;
    let (echo, _) = udp_echo_server("127.0.0.1").await;
    let (_ctl, rep, bnd) = udp_associate(proxy, unspecified()).await;
    assert_eq!(rep, 0);
    assert_eq!(
        bnd.ip(),
        proxy.ip(),
        "BND is the address the control connection arrived on"
    );
    let s = client_socket().await;
    for i in 0..3u8 {
        let msg = [b'x', i];
        let (from, data) = through(&s, bnd, TargetAddr::Ip(echo), &msg).await;
        assert_eq!(from, TargetAddr::Ip(echo), "reply names the replying peer");
        assert_eq!(data, msg);
    }
}

#[tokio::test]
async fn a_burst_of_equal_datagrams_arrives_as_separate_datagrams_in_order() {
    // Equal datagrams to one peer leave the server in one GSO send; the receivers must
    // still see each one on its own, whole, in order.
    let (_h, proxy) = start(&open_conf("")).await;
    let (echo, _) = udp_echo_server("127.0.0.1").await;
    let (_ctl, rep, bnd) = udp_associate(proxy, unspecified()).await;
    assert_eq!(rep, 0);
    let s = client_socket().await;
    let burst: Vec<Vec<u8>> = (0..24u8)
        .map(|i| vec![i; if i == 23 { 300 } else { 1000 }])
        .collect();
    for msg in &burst {
        let dg = udp_wrap(0, TargetAddr::Ip(echo), msg);
        s.send_to(&dg, bnd).await.unwrap();
    }
    for (i, msg) in burst.iter().enumerate() {
        let (from, data) = udp_recv_unwrap(&s).await;
        assert_eq!(from, TargetAddr::Ip(echo));
        assert_eq!(data.len(), msg.len(), "datagram {i}");
        assert_eq!(&data, msg, "datagram {i}");
    }
}

#[tokio::test]
async fn echo_through_an_association_to_a_domain_name() {
    let (_h, proxy) = start(&open_conf("")).await;
    let (echo, _) = udp_echo_server("127.0.0.1").await;
    let (_ctl, rep, bnd) = udp_associate(proxy, unspecified()).await;
    assert_eq!(rep, 0);
    let s = client_socket().await;
    let target = TargetAddr::Domain("localhost".into(), echo.port());
    let (from, data) = through(&s, bnd, target.clone(), b"by name").await;
    assert_eq!(
        from,
        TargetAddr::Ip(echo),
        "reply carries the resolved address"
    );
    assert_eq!(data, b"by name");
    // Second datagram: the cached answer.
    assert_eq!(through(&s, bnd, target, b"again").await.1, b"again");
}

#[tokio::test]
async fn echo_to_an_ipv6_target() {
    let Ok(probe) = std::net::UdpSocket::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback on this machine; nothing to test");
        return;
    };
    drop(probe);
    let conf =
        "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nexternal: ::1\nsocksmethod: none\n\
                client pass { from: 0/0 to: 0/0 }\nsocks pass { from: 0/0 to: 0/0 }\n";
    let (_h, proxy) = start(conf).await;
    let (echo, _) = udp_echo_server("::1").await;
    let (_ctl, rep, bnd) = udp_associate(proxy, unspecified()).await;
    assert_eq!(rep, 0);
    let s = client_socket().await;
    let (from, data) = through(&s, bnd, TargetAddr::Ip(echo), b"six").await;
    assert_eq!((from, data), (TargetAddr::Ip(echo), b"six".to_vec()));
}

#[tokio::test]
async fn datagrams_from_a_wrong_source_are_dropped() {
    let (_h, proxy) = start(&open_conf("")).await;
    let (echo, seen) = udp_echo_server("127.0.0.1").await;
    let right = client_socket().await;
    let wrong = client_socket().await;
    // Declared source: the right socket's address.
    let (_ctl, rep, bnd) = udp_associate(proxy, right.local_addr().unwrap()).await;
    assert_eq!(rep, 0);
    wrong
        .send_to(&udp_wrap(0, TargetAddr::Ip(echo), b"intruder"), bnd)
        .await
        .unwrap();
    // The right source, sent after the wrong one, is answered; by then the wrong one has
    // been handled (one socket, in order) and must not have reached the target.
    assert_eq!(
        through(&right, bnd, TargetAddr::Ip(echo), b"mine").await.1,
        b"mine"
    );
    assert_eq!(*seen.lock().unwrap(), vec![b"mine".to_vec()]);
    let mut b = [0u8; 64];
    assert!(
        wrong.try_recv_from(&mut b).is_err(),
        "nothing came back to the wrong source"
    );
}

#[tokio::test]
async fn zero_declared_source_is_learnt_from_the_first_datagram() {
    let (_h, proxy) = start(&open_conf("")).await;
    let (echo, seen) = udp_echo_server("127.0.0.1").await;
    let first = client_socket().await;
    let other = client_socket().await;
    let (_ctl, _, bnd) = udp_associate(proxy, unspecified()).await;
    assert_eq!(
        through(&first, bnd, TargetAddr::Ip(echo), b"one").await.1,
        b"one"
    );
    other
        .send_to(&udp_wrap(0, TargetAddr::Ip(echo), b"other"), bnd)
        .await
        .unwrap();
    assert_eq!(
        through(&first, bnd, TargetAddr::Ip(echo), b"two").await.1,
        b"two"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        vec![b"one".to_vec(), b"two".to_vec()]
    );
}

#[tokio::test]
async fn fragments_and_malformed_headers_are_dropped() {
    let (_h, proxy) = start(&open_conf("")).await;
    let (echo, seen) = udp_echo_server("127.0.0.1").await;
    let s = client_socket().await;
    let (_ctl, _, bnd) = udp_associate(proxy, unspecified()).await;
    s.send_to(&udp_wrap(1, TargetAddr::Ip(echo), b"fragment"), bnd)
        .await
        .unwrap();
    s.send_to(&udp_wrap(0x81, TargetAddr::Ip(echo), b"last fragment"), bnd)
        .await
        .unwrap();
    s.send_to(&[0, 0, 0, 1, 127, 0], bnd).await.unwrap(); // truncated address
    s.send_to(&[0, 0, 0, 9, 1, 2, 3, 4, 0, 80], bnd)
        .await
        .unwrap(); // bad ATYP
    s.send_to(&[0, 0, 0, 3, 0, 0, 80], bnd).await.unwrap(); // empty name
    assert_eq!(
        through(&s, bnd, TargetAddr::Ip(echo), b"whole").await.1,
        b"whole"
    );
    assert_eq!(*seen.lock().unwrap(), vec![b"whole".to_vec()]);
}

/// Polls until a datagram sent to `bnd` is refused by the kernel (nothing bound there).
async fn port_stops_answering(bnd: SocketAddr, echo: SocketAddr) -> bool {
    let s = client_socket().await;
    s.connect(bnd).await.unwrap();
    let end = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut b = [0u8; 256];
    while tokio::time::Instant::now() < end {
        let _ = s
            .send(&udp_wrap(0, TargetAddr::Ip(echo), b"still there?"))
            .await;
        match tokio::time::timeout(Duration::from_millis(100), s.recv(&mut b)).await {
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
            _ => continue,
        }
    }
    false
}

#[tokio::test]
async fn association_ends_with_its_control_connection() {
    let (h, proxy) = start(&open_conf("")).await;
    let (echo, _) = udp_echo_server("127.0.0.1").await;
    let (ctl, _, bnd) = udp_associate(proxy, unspecified()).await;
    let s = client_socket().await;
    assert_eq!(
        through(&s, bnd, TargetAddr::Ip(echo), b"alive").await.1,
        b"alive"
    );
    assert_eq!(h.active_sessions(), 1);
    drop(ctl);
    assert!(
        port_stops_answering(bnd, echo).await,
        "UDP port {bnd} closed with the control connection"
    );
    assert!(wait_for(|| h.active_sessions() == 0, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn idle_association_ends_after_timeout_io_udp() {
    let (_h, proxy) = start(&open_conf("timeout.io.udp: 1")).await;
    let (echo, _) = udp_echo_server("127.0.0.1").await;
    let (mut ctl, _, bnd) = udp_associate(proxy, unspecified()).await;
    let mut b = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(10), ctl.read(&mut b))
        .await
        .expect("server closes in time");
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "control connection closed by the server"
    );
    assert!(port_stops_answering(bnd, echo).await);
}

#[tokio::test]
async fn udp_portrange_is_honoured_and_a_full_range_fails() {
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let conf = format!(
        "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nsocksmethod: none\n\
         client pass {{ from: 0/0 to: 0/0 }}\nsocks pass {{ from: 0/0 to: 0/0 udp.portrange: {port}-{port} }}\n"
    );
    let (_h, proxy) = start(&conf).await;
    let (echo, _) = udp_echo_server("127.0.0.1").await;
    let (_ctl, rep, bnd) = udp_associate(proxy, unspecified()).await;
    assert_eq!((rep, bnd.port()), (0, port));
    let s = client_socket().await;
    assert_eq!(
        through(&s, bnd, TargetAddr::Ip(echo), b"ranged").await.1,
        b"ranged"
    );
    // The only port of the range is taken by the first association: general failure.
    let (_ctl2, rep, _) = udp_associate(proxy, unspecified()).await;
    assert_eq!(rep, 1);
}

#[tokio::test]
async fn advertised_address_replaces_the_reply_address_but_not_the_port() {
    let (_h, proxy) = start(&open_conf("hasocks.udp.advertise: 192.0.2.7")).await;
    let (echo, _) = udp_echo_server("127.0.0.1").await;
    let (_ctl, rep, bnd) = udp_associate(proxy, unspecified()).await;
    assert_eq!(rep, 0);
    assert_eq!(bnd.ip().to_string(), "192.0.2.7");
    // The real socket is still on the control connection's address, same port.
    let real = SocketAddr::new(proxy.ip(), bnd.port());
    let s = client_socket().await;
    assert_eq!(
        through(&s, real, TargetAddr::Ip(echo), b"natted").await.1,
        b"natted"
    );
}

#[tokio::test]
async fn socks_rules_judge_each_destination_and_udpreply_judges_replies() {
    let conf = "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nsocksmethod: none\n\
                client pass { from: 0/0 to: 0/0 }\n\
                socks block { from: 0/0 to: 127.0.0.9/32 command: udpassociate }\n\
                socks block { from: 127.0.0.10/32 to: 0/0 command: udpreply }\n\
                socks pass { from: 0/0 to: 0/0 }\n";
    let (_h, proxy) = start(conf).await;
    let (blocked_dst, blocked_seen) = udp_echo_server("127.0.0.9").await;
    let (mute, mute_seen) = udp_echo_server("127.0.0.10").await;
    let (echo, _) = udp_echo_server("127.0.0.1").await;
    let (_ctl, rep, bnd) = udp_associate(proxy, unspecified()).await;
    assert_eq!(rep, 0);
    let s = client_socket().await;
    s.send_to(&udp_wrap(0, TargetAddr::Ip(blocked_dst), b"blocked"), bnd)
        .await
        .unwrap();
    s.send_to(&udp_wrap(0, TargetAddr::Ip(mute), b"reply blocked"), bnd)
        .await
        .unwrap();
    // The target behind the udpreply block gets the datagram; wait until it has.
    assert!(
        wait_for(
            || mute_seen.lock().unwrap().len() == 1,
            Duration::from_secs(5)
        )
        .await
    );
    // Its echo was sent before this one, on the same path back: had it passed, it would
    // arrive first.
    let (from, data) = through(&s, bnd, TargetAddr::Ip(echo), b"fine").await;
    assert_eq!((from, data), (TargetAddr::Ip(echo), b"fine".to_vec()));
    assert!(
        blocked_seen.lock().unwrap().is_empty(),
        "blocked destination never saw a datagram"
    );
}

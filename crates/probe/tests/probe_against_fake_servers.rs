//! The probe against tiny SOCKS5 servers (from `test-support`) written with raw bytes, each
//! misbehaving in one specific way.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hasocks_probe::{
    end_to_end, end_to_end_traced, socks5_connect, Auth, Direction, EndToEnd, ProbeError,
};
use hasocks_socks_wire::TargetAddr;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LONG: Duration = Duration::from_secs(30);
use hasocks_test_support::fake_socks::{fake_server, Fake};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn own_listener_check(proxy: SocketAddr, timeout: Duration) -> EndToEnd {
    EndToEnd {
        proxy,
        target: None,
        bind_ip: LOCAL,
        auth: None,
        timeout,
        preamble: Vec::new(),
    }
}

#[tokio::test]
async fn honest_server_passes_end_to_end_check() {
    let proxy = fake_server(Fake::Good).await;
    let r = end_to_end(&own_listener_check(proxy, LONG)).await;
    assert!(r.is_ok(), "{r:?}");
}

#[tokio::test]
async fn connect_returns_bound_address_and_a_stream_that_relays() {
    let proxy = fake_server(Fake::Good).await;
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let taddr = TargetAddr::Ip(target.local_addr().unwrap());
    let (mut s, bound) = socks5_connect(proxy, &taddr, None, LONG).await.unwrap();
    let (mut inbound, peer) = target.accept().await.unwrap();
    // The fake reports the address it dialled from, which the target sees.
    assert_eq!(bound, TargetAddr::Ip(peer));
    inbound.write_all(b"hello").await.unwrap();
    let mut got = [0u8; 5];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"hello");
}

#[tokio::test]
async fn reply_02_is_reported_as_rejected_with_its_code() {
    let proxy = fake_server(Fake::Reject(2)).await;
    let err = end_to_end(&own_listener_check(proxy, LONG))
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Rejected(2)), "{err:?}");
    assert_eq!(
        err.short(),
        "SOCKS reply 02 (connection not allowed by ruleset)"
    );
}

#[tokio::test]
async fn remote_target_mode_requires_success_reply() {
    let proxy = fake_server(Fake::Reject(5)).await;
    let mut check = own_listener_check(proxy, LONG);
    check.target = Some(TargetAddr::Ip("127.0.0.1:9".parse().unwrap()));
    let err = end_to_end(&check).await.unwrap_err();
    assert!(matches!(err, ProbeError::Rejected(5)), "{err:?}");
}

#[tokio::test]
async fn no_acceptable_method_is_its_own_error() {
    let proxy = fake_server(Fake::NoAcceptable).await;
    let err = end_to_end(&own_listener_check(proxy, LONG))
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::NoAcceptableMethod), "{err:?}");
}

#[tokio::test]
async fn server_closing_mid_handshake_is_an_error_not_a_hang() {
    let proxy = fake_server(Fake::CloseAfterGreeting).await;
    // A generous budget: the error must come from the close, not the clock.
    let err = end_to_end(&own_listener_check(proxy, LONG))
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Io(_)), "{err:?}");
    assert!(err.short().contains("greeting"), "{}", err.short());
}

#[tokio::test]
async fn silent_server_times_out_in_the_greeting_phase() {
    let proxy = fake_server(Fake::Silent).await;
    let check = own_listener_check(proxy, Duration::from_millis(200));
    let err = end_to_end(&check).await.unwrap_err();
    assert!(matches!(err, ProbeError::Timeout("greeting")), "{err:?}");
}

#[tokio::test]
async fn corrupting_server_is_caught_as_data_mismatch() {
    let proxy = fake_server(Fake::Corrupt).await;
    let err = end_to_end(&own_listener_check(proxy, LONG))
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::DataMismatch), "{err:?}");
}

#[tokio::test]
async fn success_reply_without_a_connection_is_no_inbound() {
    let proxy = fake_server(Fake::Liar).await;
    let check = own_listener_check(proxy, Duration::from_millis(300));
    let err = end_to_end(&check).await.unwrap_err();
    assert!(matches!(err, ProbeError::NoInbound), "{err:?}");
}

#[tokio::test]
async fn right_credentials_pass_and_wrong_ones_fail_with_status() {
    let proxy = fake_server(Fake::NeedsLogin).await;
    let mut check = own_listener_check(proxy, LONG);
    check.auth = Some(Auth {
        user: "u".into(),
        pass: "p".into(),
    });
    assert!(end_to_end(&check).await.is_ok());
    check.auth = Some(Auth {
        user: "u".into(),
        pass: "wrong".into(),
    });
    let err = end_to_end(&check).await.unwrap_err();
    assert!(matches!(err, ProbeError::AuthFailed(1)), "{err:?}");
}

#[tokio::test]
async fn login_required_but_not_offered_is_no_acceptable_or_protocol_error() {
    // The fake picks method 02 whatever we offer; we offered only 00.
    let proxy = fake_server(Fake::NeedsLogin).await;
    let err = end_to_end(&own_listener_check(proxy, LONG))
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn refused_proxy_port_is_a_connect_error() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let err = end_to_end(&own_listener_check(addr, LONG))
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Connect(_)), "{err:?}");
}

/// What a tap recorded, in order.
type Transcript = Vec<(Direction, Vec<u8>)>;

#[tokio::test]
async fn tap_sees_greeting_and_method_selection_bytes() {
    let proxy = fake_server(Fake::Good).await;
    let seen: Arc<Mutex<Transcript>> = Arc::default();
    let rec = seen.clone();
    let tap = move |d: Direction, b: &[u8]| rec.lock().unwrap().push((d, b.to_vec()));
    end_to_end_traced(&own_listener_check(proxy, LONG), Some(&tap))
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0], (Direction::Sent, vec![5, 1, 0]));
    assert_eq!(seen[1], (Direction::Received, vec![5, 0]));
    assert_eq!(seen[2].1[..4], [5, 1, 0, 1]);
    assert_eq!(seen[3].1.len(), 10);
}

#[tokio::test]
async fn many_checks_share_one_rendezvous_and_each_meets_its_own_connection() {
    let rv = std::sync::Arc::new(hasocks_probe::Rendezvous::bind(LOCAL).await.unwrap());
    let good = fake_server(Fake::Good).await;
    let checks: Vec<_> = (0..20)
        .map(|_| {
            let rv = rv.clone();
            tokio::spawn(async move {
                hasocks_probe::end_to_end_via(&rv, good, None, Duration::from_secs(5), &[]).await
            })
        })
        .collect();
    for c in checks {
        c.await
            .unwrap()
            .expect("each check meets its own inbound connection");
    }
    // A proxy that changes the bytes, or claims a connection it never made, fails.
    for kind in [Fake::Corrupt, Fake::Liar] {
        let proxy = fake_server(kind).await;
        let r =
            hasocks_probe::end_to_end_via(&rv, proxy, None, Duration::from_millis(500), &[]).await;
        assert!(matches!(r, Err(ProbeError::NoInbound)), "{r:?}");
    }
    // The shared listener is still there for the next round.
    hasocks_probe::end_to_end_via(&rv, good, None, Duration::from_secs(5), &[])
        .await
        .expect("later check");
}

//! The probe against tiny SOCKS5 servers written here with raw bytes, each
//! misbehaving in one specific way.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use probe::{end_to_end, end_to_end_traced, socks5_connect, Auth, Direction, EndToEnd, ProbeError};
use socks_wire::TargetAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the fake server behaves.
#[derive(Clone, Copy)]
enum Fake {
    /// Honest forwarding server.
    Good,
    /// Forwards, but flips a bit in every byte going client -> target.
    Corrupt,
    /// Answers the request with this REP code.
    Reject(u8),
    /// Answers the greeting with FF.
    NoAcceptable,
    /// Reads the greeting, then closes.
    CloseAfterGreeting,
    /// Accepts and never writes.
    Silent,
    /// Replies success without connecting anywhere.
    Liar,
    /// Requires user "u" / password "p" (RFC 1929).
    NeedsLogin,
}

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LONG: Duration = Duration::from_secs(30);

async fn fake_server(kind: Fake) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve(s, kind));
        }
    });
    addr
}

async fn serve(mut s: TcpStream, kind: Fake) -> std::io::Result<()> {
    if let Fake::Silent = kind {
        let mut sink = [0u8; 64];
        while s.read(&mut sink).await? > 0 {}
        return Ok(());
    }
    let mut hdr = [0u8; 2];
    s.read_exact(&mut hdr).await?;
    let mut methods = vec![0u8; usize::from(hdr[1])];
    s.read_exact(&mut methods).await?;
    match kind {
        Fake::CloseAfterGreeting => return Ok(()),
        Fake::NoAcceptable => {
            s.write_all(&[5, 0xff]).await?;
            return Ok(());
        }
        Fake::NeedsLogin => {
            s.write_all(&[5, 2]).await?;
            let mut v = [0u8; 2];
            s.read_exact(&mut v).await?;
            let mut user = vec![0u8; usize::from(v[1])];
            s.read_exact(&mut user).await?;
            let mut plen = [0u8; 1];
            s.read_exact(&mut plen).await?;
            let mut pass = vec![0u8; usize::from(plen[0])];
            s.read_exact(&mut pass).await?;
            let ok = user == b"u" && pass == b"p";
            s.write_all(&[1, if ok { 0 } else { 1 }]).await?;
            if !ok {
                return Ok(());
            }
        }
        _ => s.write_all(&[5, 0]).await?,
    }
    // Request: only IPv4 targets are used by these tests.
    let mut req = [0u8; 10];
    s.read_exact(&mut req).await?;
    assert_eq!(&req[..4], &[5, 1, 0, 1]);
    let target = SocketAddr::from((
        [req[4], req[5], req[6], req[7]],
        u16::from_be_bytes([req[8], req[9]]),
    ));
    if let Fake::Reject(code) = kind {
        s.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    }
    if let Fake::Liar = kind {
        s.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 1]).await?;
        let mut sink = [0u8; 64];
        while s.read(&mut sink).await? > 0 {}
        return Ok(());
    }
    let out = TcpStream::connect(target).await?;
    let b = out.local_addr()?;
    let IpAddr::V4(ip) = b.ip() else {
        unreachable!()
    };
    let mut reply = vec![5, 0, 0, 1];
    reply.extend_from_slice(&ip.octets());
    reply.extend_from_slice(&b.port().to_be_bytes());
    s.write_all(&reply).await?;
    let corrupt = matches!(kind, Fake::Corrupt);
    let (mut cr, mut cw) = s.into_split();
    let (mut tr, mut tw) = out.into_split();
    let up = async move {
        let mut buf = [0u8; 1024];
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 {
                return tw.shutdown().await;
            }
            if corrupt {
                buf[..n].iter_mut().for_each(|b| *b ^= 1);
            }
            tw.write_all(&buf[..n]).await?;
        }
    };
    let down = async move {
        tokio::io::copy(&mut tr, &mut cw).await?;
        cw.shutdown().await
    };
    let _ = tokio::join!(up, down);
    Ok(())
}

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

//! The copy path: idle timeout, half-close, PROXY v2 header, graceful shutdown.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::*;
use hasocks_conf::relayd::Mode;
use hasocks_relay::RelayHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(
    backend: &Backend,
    tune: impl FnOnce(&mut hasocks_conf::relayd::Relay),
) -> RelayHandle {
    let mut r = relay(vec![forward("pool", Mode::RoundRobin, None)]);
    tune(&mut r);
    RelayHandle::start(config(vec![table("pool", &[backend.port()])], vec![r]))
        .await
        .expect("relay")
}

/// Reads a PROXY v2 header (16 bytes, then the length they give): the whole header.
async fn read_proxy_v2(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut header = vec![0u8; 16];
    s.read_exact(&mut header).await.ok()?;
    let len = usize::from(u16::from_be_bytes([header[14], header[15]]));
    header.resize(16 + len, 0);
    s.read_exact(&mut header[16..]).await.ok()?;
    Some(header)
}

#[tokio::test]
async fn session_timeout_closes_an_idle_session() {
    let b = id_backend(1).await;
    let h = start(&b, |r| r.session_timeout_s = 1).await;
    let mut s = connect_from(client(1), addr_of(&h)).await.expect("connect");
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf).await.expect("id"), 1);
    // Nothing more is sent either way: the relay must end the session itself.
    let n = tokio::time::timeout(DEADLINE, s.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    wait_until("session counted closed", || {
        h.snapshot().relays[0].sessions_open == 0
    })
    .await;
}

#[tokio::test]
async fn half_close_passes_through_both_ways() {
    // Reads to EOF, then answers with the byte count: only works if our FIN reached it while
    // its direction stayed open.
    let b = Backend::start(serve(|mut s: TcpStream| async move {
        let mut all = Vec::new();
        if s.read_to_end(&mut all).await.is_ok() {
            let _ = s.write_all(format!("got {}", all.len()).as_bytes()).await;
        }
    }))
    .await;
    let h = start(&b, |_| {}).await;
    let mut s = connect_from(client(1), addr_of(&h)).await.expect("connect");
    s.write_all(&[7u8; 3000]).await.expect("write");
    s.shutdown().await.expect("half-close");
    let mut back = String::new();
    tokio::time::timeout(DEADLINE, s.read_to_string(&mut back))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(back, "got 3000");
}

#[tokio::test]
async fn proxy_v2_header_carries_the_client_address() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Vec<u8>, Vec<u8>)>();
    let b = Backend::start(serve(move |mut s: TcpStream| {
        let tx = tx.clone();
        async move {
            let Some(header) = read_proxy_v2(&mut s).await else {
                return;
            };
            let mut payload = [0u8; 5];
            if s.read_exact(&mut payload).await.is_ok() {
                let _ = tx.send((header, payload.to_vec()));
            }
        }
    }))
    .await;
    let h = start(&b, |r| r.send_proxy_v2 = true).await;
    let relay_addr = addr_of(&h);
    let mut s = connect_from(client(7), relay_addr).await.expect("connect");
    let me = s.local_addr().expect("local");
    s.write_all(b"hello").await.expect("write");
    let (header, payload) = tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("in time")
        .expect("backend got a header");
    assert_eq!(&header[..12], b"\r\n\r\n\0\r\nQUIT\n");
    assert_eq!(header[12], 0x21, "v2 PROXY");
    assert_eq!(header[13], 0x11, "TCP over IPv4");
    let ip = |o: usize| IpAddr::from([header[o], header[o + 1], header[o + 2], header[o + 3]]);
    let port = |o: usize| u16::from_be_bytes([header[o], header[o + 1]]);
    assert_eq!(SocketAddr::new(ip(16), port(24)), me);
    assert_eq!(SocketAddr::new(ip(20), port(26)), relay_addr);
    assert_eq!(
        payload, b"hello",
        "client bytes follow the header unchanged"
    );
}

#[tokio::test]
async fn bytes_read_while_waiting_for_the_first_byte_reach_the_host_whole_and_are_counted() {
    // The relay reads the client's first bytes before it picks a host; they must follow the
    // PROXY header unchanged, be followed by the rest, and count to the host while open.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let b = Backend::start(serve(move |mut s: TcpStream| {
        let tx = tx.clone();
        async move {
            if read_proxy_v2(&mut s).await.is_none() {
                return;
            }
            let mut payload = vec![0u8; 3001];
            if s.read_exact(&mut payload).await.is_ok() {
                let _ = tx.send(payload);
                // Held open so that the count is read from an open session.
                let mut more = [0u8; 1];
                let _ = s.read(&mut more).await;
            }
        }
    }))
    .await;
    let h = start(&b, |r| {
        r.send_proxy_v2 = true;
        r.first_byte_timeout_s = Some(5);
    })
    .await;
    let mut s = connect_from(client(3), addr_of(&h)).await.expect("connect");
    let sent: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    s.write_all(&sent).await.expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(b"!").await.expect("write after");
    let got = tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("in time")
        .expect("backend got the bytes");
    assert_eq!(&got[..3000], &sent[..], "first packet unchanged");
    assert_eq!(got[3000], b'!', "later bytes follow it");
    wait_until("open session's bytes counted", || {
        h.snapshot().tables[0].hosts[0].bytes_out == 3001
    })
    .await;
    drop(s);
    wait_until("closed session's bytes counted once", || {
        let st = h.snapshot();
        st.relays[0].sessions_open == 0 && st.tables[0].hosts[0].bytes_out == 3001
    })
    .await;
}

#[tokio::test]
async fn shutdown_lets_open_sessions_finish_then_ends_them() {
    let b = id_backend(1).await;
    let h = start(&b, |_| {}).await;
    let addr = addr_of(&h);
    let mut s = connect_from(client(1), addr).await.expect("connect");
    let mut id = [0u8; 1];
    s.read_exact(&mut id).await.expect("id");
    assert_eq!(h.snapshot().relays[0].sessions_open, 1);
    tokio::time::timeout(DEADLINE, h.shutdown(Duration::from_millis(300)))
        .await
        .expect("shutdown returns");
    let mut buf = [0u8; 4];
    let n = tokio::time::timeout(DEADLINE, s.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

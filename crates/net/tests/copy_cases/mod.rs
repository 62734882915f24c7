//! `copy::pump` over real loopback sockets: client <-> [a | pump | b] <-> server.
//! Included by `copy.rs` (buffer copy) and `copy_splice.rs` (splice): the switch is
//! process-wide, so each mode gets its own test binary.

use std::time::Duration;

use hasocks_net::copy::{pump, CopyOpts, CopyReport, EndReason};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(20);

/// A connected pair over 127.0.0.1: (connecting end, accepted end).
async fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (s, _) = l.accept().await.unwrap();
    (c, s)
}

/// Starts a pump between two pairs; returns (client, server, pump task).
async fn relay(opts: CopyOpts) -> (TcpStream, TcpStream, JoinHandle<CopyReport>) {
    hasocks_net::copy::set_splice(super::SPLICE);
    let (client, a) = pair().await;
    let (b, server) = pair().await;
    let task = tokio::spawn(pump(a, b, opts));
    (client, server, task)
}

async fn finish(task: JoinHandle<CopyReport>) -> CopyReport {
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("pump ends")
        .expect("pump task does not panic")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// Sends `data` and half-closes while reading everything the other side sends.
async fn send_all_and_read_all(mut s: TcpStream, data: Vec<u8>) -> Vec<u8> {
    let (mut r, mut w) = s.split();
    let send = async {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut got = Vec::new();
    let recv = r.read_to_end(&mut got);
    let (_, n) = tokio::join!(send, recv);
    n.unwrap();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pump_passes_data_both_ways_and_counts_bytes() {
    let (client, server, task) = relay(CopyOpts::default()).await;
    let up = pattern(1 << 20, 7);
    let down = pattern(300_000, 9);

    let c = tokio::spawn(send_all_and_read_all(client, up.clone()));
    let s = tokio::spawn(send_all_and_read_all(server, down.clone()));
    let report = finish(task).await;
    assert!(c.await.unwrap() == down, "client got the server's bytes");
    assert!(s.await.unwrap() == up, "server got the client's bytes");
    assert_eq!(report.a_to_b, up.len() as u64);
    assert_eq!(report.b_to_a, down.len() as u64);
    assert_eq!(report.end, EndReason::Closed);
}

#[tokio::test]
async fn half_closed_client_still_receives_everything_the_server_sends() {
    let (mut client, mut server, task) = relay(CopyOpts::default()).await;
    client.write_all(b"request").await.unwrap();
    client.shutdown().await.unwrap();

    // The server sees the client's EOF first, and only then answers.
    let mut req = Vec::new();
    server.read_to_end(&mut req).await.unwrap();
    assert_eq!(req, b"request");
    let answer = pattern(200_000, 3);
    let answer2 = answer.clone();
    let s = tokio::spawn(async move {
        server.write_all(&answer2).await.unwrap();
        server.shutdown().await.unwrap();
    });

    let mut got = Vec::new();
    tokio::time::timeout(DEADLINE, client.read_to_end(&mut got))
        .await
        .expect("client reads to EOF")
        .unwrap();
    s.await.unwrap();
    assert!(
        got == answer,
        "all of the answer arrived after the half-close"
    );
    let report = finish(task).await;
    assert_eq!(report.a_to_b, 7);
    assert_eq!(report.b_to_a, answer.len() as u64);
    assert_eq!(report.end, EndReason::Closed);
}

#[tokio::test]
async fn idle_session_ends_with_idle_timeout() {
    let opts = CopyOpts {
        idle_timeout: Some(Duration::from_millis(200)),
        cancel: None,
        ..Default::default()
    };
    let (mut client, _server, task) = relay(opts).await;
    client.write_all(b"x").await.unwrap();
    let report = finish(task).await;
    assert_eq!(report.end, EndReason::IdleTimeout);
    assert_eq!(report.a_to_b, 1, "bytes before the timeout are counted");
    // The pump dropped its sockets: the client sees the end.
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, client.read_to_end(&mut rest))
        .await
        .expect("client sees the close");
}

#[tokio::test]
async fn cancelled_session_ends_and_keeps_its_counts() {
    let token = CancellationToken::new();
    let opts = CopyOpts {
        idle_timeout: Some(Duration::from_secs(3600)),
        cancel: Some(token.clone()),
        ..Default::default()
    };
    let (mut client, mut server, task) = relay(opts).await;
    client.write_all(b"12345").await.unwrap();
    let mut buf = [0u8; 5];
    server.read_exact(&mut buf).await.unwrap();
    token.cancel();
    let report = finish(task).await;
    assert_eq!(report.end, EndReason::Cancelled);
    assert_eq!(report.a_to_b, 5);
    assert_eq!(report.b_to_a, 0);
}

#[tokio::test]
async fn reset_by_the_server_side_is_error_b() {
    let (mut client, server, task) = relay(CopyOpts::default()).await;
    // Linger 0 makes close send RST instead of FIN.
    server.set_zero_linger().unwrap();
    drop(server);
    // Whatever the pump is doing (reading b or writing to it), b fails.
    let _ = client.write_all(b"hello?").await;
    let report = finish(task).await;
    assert_eq!(report.end, EndReason::ErrorB);
}

#[tokio::test]
async fn reset_by_the_client_side_is_error_a() {
    let (client, _server, task) = relay(CopyOpts::default()).await;
    client.set_zero_linger().unwrap();
    drop(client);
    let report = finish(task).await;
    assert_eq!(report.end, EndReason::ErrorA);
}

#[tokio::test]
async fn server_reset_during_bulk_transfer_is_error_b_and_counts_what_went_through() {
    let (mut client, mut server, task) = relay(CopyOpts::default()).await;
    let writer = tokio::spawn(async move {
        let chunk = pattern(64 * 1024, 1);
        // Writes until the pump drops the client's connection.
        while client.write_all(&chunk).await.is_ok() {}
    });
    // Enough to be past the switch to splice when that is on.
    let mut got = vec![0u8; 512 * 1024];
    server.read_exact(&mut got).await.unwrap();
    server.set_zero_linger().unwrap();
    drop(server);
    let report = finish(task).await;
    assert_eq!(report.end, EndReason::ErrorB);
    assert!(report.a_to_b >= got.len() as u64, "{report:?}");
    tokio::time::timeout(DEADLINE, writer)
        .await
        .expect("client writer stops")
        .unwrap();
}

//! Method `gssapi` over real sockets without a KDC: what a server does with tokens it cannot
//! accept (no keytab, garbage, a bad frame, another message type) and with a client that
//! offers only other methods. The exchange with real tickets at every protection level, the
//! failures that need a KDC (wrong key, expired ticket, replay) and the relay's check run in
//! tests/interop/gssapi.sh against a throw-away realm.

mod common;

use std::path::PathBuf;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hasocks-gssapi-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn conf(d: &std::path::Path) -> String {
    format!(
        "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nlogoutput: {}\n\
         socksmethod: gssapi none\ngssapi.keytab: FILE:{}\n\
         client pass {{ from: 0/0 to: 0/0 }}\n\
         socks pass {{ from: 0/0 to: 0/0 log: connect error }}\n",
        d.join("log").display(),
        d.join("no-such.keytab").display()
    )
}

/// Greets with `methods`, sends `then`, closes its sending side, and returns everything the
/// server answered until it closed.
async fn exchange(proxy: std::net::SocketAddr, methods: &[u8], then: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let mut greeting = vec![5, methods.len() as u8];
    greeting.extend_from_slice(methods);
    s.write_all(&greeting).await.unwrap();
    s.write_all(then).await.unwrap();
    // Half-closed: a server waiting for the rest of a message sees the end instead.
    s.shutdown().await.unwrap();
    let mut got = Vec::new();
    let read = s.read_to_end(&mut got);
    tokio::time::timeout(std::time::Duration::from_secs(20), read)
        .await
        .expect("the server closes")
        .ok();
    got
}

#[tokio::test]
async fn gssapi_is_selected_when_offered_and_a_token_without_keytab_gets_the_abort_message() {
    let d = dir("nokeytab");
    let (h, proxy) = start(&conf(&d)).await;
    let got = exchange(proxy, &[0, 1], &[1, 1, 0, 3, 0x60, 1, 0]).await;
    assert_eq!(got, [5, 1, 1, 0xff], "method 01, then RFC 1961's abort");
    let line = wait_for_text(&d.join("log"), "gssapi:").await;
    assert!(line.contains("block(1) client"), "{line}");
    assert_eq!(
        h.auth_stats().failures,
        1,
        "counted as a failed authentication"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn malformed_frames_get_the_abort_message_and_the_server_serves_the_next_client() {
    let d = dir("malformed");
    let (_h, proxy) = start(&conf(&d)).await;
    for bad in [
        &[2, 1, 0, 0][..],      // wrong version
        &[1, 9, 0, 0],          // unknown message type
        &[1, 3, 0, 1, 0],       // data before the context
        &[1, 0xff],             // the client aborts
        &[1, 1, 0, 4, 1, 2, 3], // short token, then the client closes
    ] {
        let got = exchange(proxy, &[1], bad).await;
        assert!(got.starts_with(&[5, 1]), "{bad:?}: {got:?}");
        assert!(got.len() == 2 || got == [5, 1, 1, 0xff], "{bad:?}: {got:?}");
    }
    // Still serving: a client that offers only `none` gets it.
    let got = exchange(proxy, &[0], &[]).await;
    assert_eq!(got, [5, 0]);
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn a_client_offering_only_username_gets_no_acceptable_method() {
    let d = dir("nomethod");
    let (_h, proxy) = start(&conf(&d)).await;
    assert_eq!(exchange(proxy, &[2], &[]).await, [5, 0xff]);
    let _ = std::fs::remove_dir_all(&d);
}

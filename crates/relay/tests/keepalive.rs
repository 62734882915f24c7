//! TCP keepalive on client connections (`hasocks.tcp.keepalive`), seen where the kernel keeps
//! it: `ss` shows the relay's side of an open session with a keepalive timer of the configured
//! idle time, and none when it is off. It is what ends a session whose client vanished (a
//! failover moved the shared address away) even with `session timeout 0`.

mod common;

use std::time::Duration;

use common::*;
use hasocks_conf::relayd::Mode;
use hasocks_relay::RelayHandle;
use tokio::io::AsyncReadExt;

/// The timer column `ss` prints for established sockets with local port `port`.
fn timers(port: u16) -> String {
    let out = std::process::Command::new("ss")
        .args([
            "-tnoH",
            "state",
            "established",
            "sport",
            "=",
            &format!(":{port}"),
        ])
        .output()
        .expect("ss (iproute2)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn session_timer(keepalive_s: u32) -> String {
    let b = id_backend(1).await;
    let mut cfg = config(
        vec![table("pool", &[b.port()])],
        vec![relay(vec![forward("pool", Mode::RoundRobin, None)])],
    );
    cfg.tcp_keepalive_s = keepalive_s;
    let h = RelayHandle::start(cfg).await.expect("relay");
    let addr = addr_of(&h);
    let mut c = connect_from(client(1), addr).await.expect("connect");
    let mut id = [0u8; 1];
    c.read_exact(&mut id).await.expect("id byte");
    let t = timers(addr.port());
    drop(c);
    h.shutdown(Duration::from_secs(1)).await;
    t
}

#[tokio::test]
async fn client_connections_carry_the_configured_keepalive_and_none_when_off() {
    if !hasocks_test_support::tool("ss") {
        return;
    }
    let on = session_timer(45).await;
    assert!(on.contains("timer:(keepalive,4"), "idle 45 s: {on:?}");
    let off = session_timer(0).await;
    assert!(
        !off.is_empty() && !off.contains("keepalive"),
        "off: {off:?}"
    );
}

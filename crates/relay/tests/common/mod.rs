//! The relay tests' own helpers; the shared ones come from `test-support`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use hasocks_conf::relayd::{Check, Mode};
use hasocks_relay::admin_source::RelayAdmin;
use hasocks_relay::{HostState, RelayHandle};
pub use hasocks_test_support::*;

/// Three id backends (ids 1 to 3) and a relay config that load-balances over them by
/// client address (`mode loadbalance`, `check tcp`).
pub async fn three_backends_loadbalanced() -> ([Backend; 3], hasocks_conf::relayd::RelaydConfig) {
    let backends = [
        id_backend(1).await,
        id_backend(2).await,
        id_backend(3).await,
    ];
    let ports: Vec<u16> = backends.iter().map(|b| b.port()).collect();
    let cfg = config(
        vec![table("pool", &ports)],
        vec![relay(vec![forward(
            "pool",
            Mode::LoadBalance(None),
            Some(Check::Tcp),
        )])],
    );
    (backends, cfg)
}

/// The relay's first listen address.
pub fn addr_of(h: &RelayHandle) -> SocketAddr {
    h.listen_addrs()
        .first()
        .map(|(_, a)| *a)
        .expect("relay listens")
}

/// State of host `i` of table instance `table` (`name:port`).
pub fn state(h: &RelayHandle, table: &str, i: usize) -> HostState {
    h.snapshot()
        .table(table)
        .and_then(|t| t.hosts.get(i).map(|h| h.state))
        .expect("table and host exist")
}

/// The config of [`relay_with_admin`]: one relay over `ports` (round robin, TCP check).
pub fn pool_config(ports: &[u16]) -> hasocks_conf::relayd::RelaydConfig {
    config(
        vec![table("pool", ports)],
        vec![relay(vec![forward(
            "pool",
            Mode::RoundRobin,
            Some(Check::Tcp),
        )])],
    )
}

/// A relay over `backends` (round robin, TCP check) with an admin listener.
pub async fn relay_with_admin(ports: &[u16]) -> (Arc<RelayHandle>, hasocks_admin::AdminHandle) {
    relay_with_admin_sampling(ports, hasocks_admin::history::SAMPLE_INTERVAL).await
}

/// [`relay_with_admin`] whose admin listener samples the relay every `every`.
pub async fn relay_with_admin_sampling(
    ports: &[u16],
    every: std::time::Duration,
) -> (Arc<RelayHandle>, hasocks_admin::AdminHandle) {
    let h = Arc::new(RelayHandle::start(pool_config(ports)).await.expect("relay"));
    assert!(h.wait_ready(DEADLINE).await);
    let a = hasocks_admin::start_sampling_every(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(RelayAdmin::new(h.clone())),
        hasocks_admin::Limits::default(),
        every,
    )
    .expect("admin listener");
    (h, a)
}

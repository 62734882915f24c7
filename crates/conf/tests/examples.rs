//! The configs shipped in examples/ parse as they are (an example that rots is worse than
//! none).

use std::path::PathBuf;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

#[test]
fn the_example_sockd_conf_parses_without_warnings() {
    let c = hasocks_conf::sockd::load(&example("sockd.conf")).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn the_example_relayd_conf_parses_with_its_admin_listener_on_loopback() {
    let c =
        hasocks_conf::relayd::load(&example("relayd.conf"), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let admin = c.admin.expect("the example shows the admin listener");
    assert_eq!(admin.addr, "127.0.0.1");
}

#[test]
fn the_keepalived_pair_configs_parse_and_listen_on_the_shared_address() {
    let r = hasocks_conf::relayd::load(&example("keepalived/relayd.conf"), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.relays[0].listens[0].addr, "10.77.0.100");
    assert!(r.admin.is_some(), "keepalived's track script reads /ready");
    let s = hasocks_conf::sockd::load(&example("keepalived/sockd.conf"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn the_bgp_tier_configs_parse_and_listen_on_the_shared_address() {
    let r = hasocks_conf::relayd::load(&example("bgp/relayd.conf"), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.relays[0].listens[0].addr, "10.78.100.100");
    assert!(r.admin.is_some(), "hasocks-announce.sh reads /ready");
    let s = hasocks_conf::sockd::load(&example("bgp/sockd.conf")).unwrap_or_else(|e| panic!("{e}"));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

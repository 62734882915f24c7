use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use hasocks_conf::sockd::{Command, SocksVersion};

use super::health::Registry;
use super::*;
use crate::rules::RequestFacts;

fn routes(text: &str, registry: &Registry) -> Routes {
    let cfg = hasocks_conf::sockd::parse(
        &format!("internal: lo\nsocksmethod: none username\n{text}"),
        Path::new("r.conf"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    Routes::build(&cfg, registry, &|_| Vec::new()).unwrap_or_else(|e| panic!("{e}"))
}

fn facts(client: &str, command: Command, target: &str) -> RequestFacts<'static> {
    let t: SocketAddr = target.parse().unwrap();
    RequestFacts {
        client: client.parse().unwrap(),
        command,
        version: SocksVersion::V5,
        target_ip: Some(t.ip()),
        target_name: None,
        target_port: t.port(),
    }
}

/// The route numbers of a plan (0 stands for "direct after them").
fn order(p: Plan<'_>) -> Vec<usize> {
    match p {
        Plan::Unrouted => vec![],
        Plan::Direct(r) => vec![r.number, 0],
        Plan::Chain(ups, d) => ups.iter().map(|r| r.number).chain(d.map(|_| 0)).collect(),
    }
}

const THREE: &str = "route { to: 10.0.0.0/8 via: 192.0.2.1 port = 1 }\n\
                     route { via: 192.0.2.2 port = 1 }\n\
                     route { via: 192.0.2.3 port = 1 }\n";

#[test]
fn the_matching_routes_form_the_group_in_file_order() {
    let reg = Registry::default();
    let r = routes(THREE, &reg);
    let f = facts("192.0.2.9:1", Command::Connect, "10.1.1.1:80");
    assert_eq!(order(r.plan(&f, None).unwrap()), vec![1, 2, 3]);
    let f = facts("192.0.2.9:1", Command::Connect, "198.51.100.1:80");
    assert_eq!(order(r.plan(&f, None).unwrap()), vec![2, 3]);
}

#[test]
fn a_bad_upstream_goes_last_or_is_skipped_for_a_direct_route() {
    let reg = Registry::default();
    let r = routes(THREE, &reg);
    r.list[1]
        .upstream
        .as_ref()
        .unwrap()
        .health
        .failed(1, false, None);
    let f = facts("192.0.2.9:1", Command::Connect, "198.51.100.1:80");
    assert_eq!(order(r.plan(&f, None).unwrap()), vec![3, 2]);
    let text = format!("{THREE}route {{ via: direct }}\n");
    let r = routes(&text, &reg);
    assert_eq!(
        order(r.plan(&f, None).unwrap()),
        vec![3, 0],
        "health is kept by upstream"
    );
}

#[test]
fn a_direct_route_ends_the_group_and_unmatched_requests_are_unrouted() {
    let reg = Registry::default();
    let r = routes(
        "route { to: 198.51.100.0/24 via: direct }\nroute { to: 10.0.0.0/8 via: 192.0.2.1 }\n",
        &reg,
    );
    let f = facts("192.0.2.9:1", Command::Connect, "198.51.100.1:80");
    assert_eq!(order(r.plan(&f, None).unwrap()), vec![1, 0]);
    let f = facts("192.0.2.9:1", Command::Connect, "203.0.113.1:80");
    assert!(matches!(r.plan(&f, None).unwrap(), Plan::Unrouted));
}

#[test]
fn http_routes_match_connect_only_and_commands_narrow_routes() {
    let reg = Registry::default();
    let r = routes(
        "route { via: 192.0.2.1 port = 3128 proxyprotocol: http }\n\
         route { via: 192.0.2.2 command: bind }\n",
        &reg,
    );
    let t = "198.51.100.1:80";
    assert_eq!(
        order(
            r.plan(&facts("192.0.2.9:1", Command::Connect, t), None)
                .unwrap()
        ),
        vec![1]
    );
    assert_eq!(
        order(
            r.plan(&facts("192.0.2.9:1", Command::Bind, t), None)
                .unwrap()
        ),
        vec![2]
    );
    let udp = facts("192.0.2.9:1", Command::UdpAssociate, t);
    assert!(matches!(r.plan(&udp, None).unwrap(), Plan::Unrouted));
}

#[test]
fn a_name_target_asks_for_its_addresses_only_when_a_route_needs_them() {
    let reg = Registry::default();
    let r = routes("route { to: 10.0.0.0/8 via: 192.0.2.1 }\n", &reg);
    let mut f = facts("192.0.2.9:1", Command::Connect, "10.0.0.1:80");
    f.target_ip = None;
    f.target_name = Some("intranet.example");
    assert!(r.plan(&f, None).is_none(), "needs the name resolved");
    let ips = [IpAddr::from([10, 2, 3, 4])];
    assert_eq!(order(r.plan(&f, Some(&ips)).unwrap()), vec![1]);
    let r = routes("route { to: .example via: 192.0.2.1 }\n", &reg);
    assert_eq!(
        order(r.plan(&f, None).unwrap()),
        vec![1],
        "a domain decides on the name"
    );
}

#[test]
fn source_hash_gives_each_client_a_stable_order_and_moves_only_the_dead_ones_clients() {
    let reg = Registry::default();
    let text = format!("hasocks.route.select: source-hash\n{THREE}");
    let r = routes(&text, &reg);
    let first = |client: &str| {
        let f = facts(client, Command::Connect, "198.51.100.1:80");
        order(r.plan(&f, None).unwrap())
    };
    let before: Vec<Vec<usize>> = (1..=40)
        .map(|n| first(&format!("203.0.113.{n}:1")))
        .collect();
    let again: Vec<Vec<usize>> = (1..=40)
        .map(|n| first(&format!("203.0.113.{n}:1")))
        .collect();
    assert_eq!(before, again);
    assert!(before.iter().any(|o| o[0] == 2) && before.iter().any(|o| o[0] == 3));
    // Upstream 2 dies: its clients move to 3; the others stay.
    r.list[1]
        .upstream
        .as_ref()
        .unwrap()
        .health
        .failed(1, false, None);
    for (n, old) in before.iter().enumerate() {
        let now = first(&format!("203.0.113.{}:1", n + 1));
        assert_eq!(now[0], 3, "client {} now on 3", n + 1);
        if old[0] == 3 {
            assert_eq!(now, *old);
        }
    }
}

#[test]
fn describe_shows_each_route_and_what_it_carries() {
    let cfg = hasocks_conf::sockd::parse(
        "internal: lo\nsocksmethod: none\nroute { via: 192.0.2.1 port = 3128 proxyprotocol: http }\n",
        Path::new("r.conf"),
    )
    .unwrap();
    let lines = describe(&cfg);
    assert!(
        lines[0].starts_with(
            "route #1 (line 3): from 0/0 to 0/0 via 192.0.2.1 port = 3128 speaking http"
        ),
        "{lines:?}"
    );
    assert!(lines[0].ends_with("commands connect"), "{lines:?}");
    assert!(lines[1].contains("carries connect only"), "{lines:?}");
    assert!(
        lines[2].contains("unmatched requests go direct"),
        "{lines:?}"
    );
}

//! Property: any config the grammar can express prints to text that parses back equal
//! (source lines and warnings aside), and printing is a fixpoint.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use hasocks_conf::sockd::{
    parse, AddrSpec, Command, Endpoint, HostSpec, Internal, Limits, LogFlags, LogTarget, Method,
    PortOp, PortSpec, Protocol, ProxyProtocol, Rotation, Route, RouteSelect, Routing, Rule,
    RuleAuth, RuleTimeouts, SockdConfig, SocksVersion, StateKey, Throttle, Timeouts, Verdict, Via,
};
use ipnet::IpNet;
use proptest::prelude::*;
use proptest::sample::select;

fn ip() -> impl Strategy<Value = IpAddr> {
    any::<IpAddr>()
}

fn net() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (any::<std::net::Ipv4Addr>(), 0u8..=32)
            .prop_map(|(a, p)| IpNet::new(a.into(), p).unwrap().trunc()),
        (any::<std::net::Ipv6Addr>(), 0u8..=128)
            .prop_map(|(a, p)| IpNet::new(a.into(), p).unwrap().trunc()),
    ]
}

fn hostspec() -> impl Strategy<Value = HostSpec> {
    prop_oneof![
        ip().prop_map(HostSpec::Ip),
        "[A-Za-z][A-Za-z0-9_.-]{0,8}".prop_map(HostSpec::Name)
    ]
}

fn log_target() -> impl Strategy<Value = LogTarget> {
    prop_oneof![
        Just(LogTarget::Stderr),
        Just(LogTarget::Stdout),
        select(vec!["daemon", "auth", "local0", "local7", "user"])
            .prop_map(|f| LogTarget::Syslog(f.into())),
        "(/[a-z0-9._-]{1,8}){1,3}".prop_map(|p| LogTarget::File(PathBuf::from(p))),
    ]
}

fn port_spec() -> impl Strategy<Value = PortSpec> {
    let op = select(vec![
        PortOp::Eq,
        PortOp::Neq,
        PortOp::Ge,
        PortOp::Le,
        PortOp::Gt,
        PortOp::Lt,
    ]);
    prop_oneof![
        Just(PortSpec::Any),
        (op, any::<u16>()).prop_map(|(o, p)| PortSpec::Op(o, p)),
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| PortSpec::Range(a.min(b), a.max(b))),
    ]
}

fn endpoint() -> impl Strategy<Value = Endpoint> {
    let addr = prop_oneof![
        Just(AddrSpec::Any),
        net().prop_map(AddrSpec::Net),
        "[a-z0-9][a-z0-9._-]{0,10}".prop_map(AddrSpec::Domain),
        "[a-z][a-z0-9._-]{0,10}".prop_map(AddrSpec::Name),
    ];
    (addr, port_spec()).prop_map(|(addr, port)| Endpoint { addr, port })
}

fn rule() -> impl Strategy<Value = Rule> {
    let cmds = prop::collection::vec(
        select(vec![
            Command::Connect,
            Command::Bind,
            Command::UdpAssociate,
            Command::BindReply,
            Command::UdpReply,
        ]),
        0..4,
    );
    let protos = prop::collection::vec(select(vec![Protocol::Tcp, Protocol::Udp]), 0..3);
    let versions = prop::collection::vec(select(vec![SocksVersion::V4, SocksVersion::V5]), 0..3);
    let log = any::<[bool; 6]>().prop_map(|b| LogFlags {
        connect: b[0],
        disconnect: b[1],
        data: b[2],
        error: b[3],
        iooperation: b[4],
        tcpinfo: b[5],
    });
    let timeouts = any::<[Option<u32>; 4]>().prop_map(|t| RuleTimeouts {
        negotiate: t[0],
        connect: t[1],
        io_tcp: t[2],
        io_udp: t[3],
    });
    let range =
        proptest::option::of((any::<u16>(), any::<u16>()).prop_map(|(a, b)| (a.min(b), a.max(b))));
    (
        any::<bool>(),
        endpoint(),
        endpoint(),
        cmds,
        protos,
        versions,
        prop::collection::vec(method(), 0..3),
        log,
        timeouts,
        range,
        limits(),
    )
        .prop_map(
            |(
                pass,
                from,
                to,
                commands,
                protocols,
                proxyprotocols,
                socksmethods,
                log,
                timeouts,
                udp_portrange,
                limits,
            )| Rule {
                line: 0,
                verdict: if pass { Verdict::Pass } else { Verdict::Block },
                from,
                to,
                commands,
                protocols,
                proxyprotocols,
                socksmethods,
                log,
                timeouts,
                udp_portrange,
                auth: RuleAuth::default(),
                limits,
            },
        )
}

/// Routes as the checks let them be: SOCKS or HTTP upstreams, commands and protocols the
/// upstream carries (at least one), methods `none`.
fn route() -> impl Strategy<Value = Route> {
    let via = prop_oneof![
        Just(Via::Direct),
        (hostspec(), 1u16..).prop_filter_map("a usable upstream", |(h, p)| match &h {
            HostSpec::Ip(ip) if ip.is_unspecified() => None,
            HostSpec::Name(n) if n == "direct" => None,
            _ => Some(Via::Proxy(h, p)),
        }),
    ];
    let protos = select(vec![
        vec![],
        vec![ProxyProtocol::SocksV5],
        vec![ProxyProtocol::SocksV4],
        vec![ProxyProtocol::SocksV4, ProxyProtocol::SocksV5],
        vec![ProxyProtocol::Http],
    ]);
    let cmds = prop::collection::vec(
        select(vec![Command::Connect, Command::Bind, Command::UdpAssociate]),
        0..3,
    );
    let protocols = prop::collection::vec(select(vec![Protocol::Tcp, Protocol::Udp]), 0..3);
    let methods = prop::collection::vec(Just(Method::None), 0..2);
    (
        endpoint(),
        endpoint(),
        via,
        protos,
        cmds,
        protocols,
        methods,
    )
        .prop_filter_map(
            "a route the checks accept",
            |(from, to, via, proxyprotocols, commands, protocols, methods)| {
                let r = Route {
                    line: 0,
                    from,
                    to,
                    via,
                    commands,
                    protocols,
                    proxyprotocols,
                    methods: methods.into_iter().take(1).collect(),
                };
                let carried = r.effective_commands();
                let fits = r.via == Via::Direct
                    || (r.commands.iter().all(|c| carried.contains(c))
                        && (r.upstream_protocol() == ProxyProtocol::SocksV5
                            || r.protocols.is_empty()
                            || r.protocols.contains(&Protocol::Tcp)));
                (fits && !carried.is_empty()).then_some(r)
            },
        )
}

fn routing() -> impl Strategy<Value = Routing> {
    (
        prop::collection::vec(route(), 0..3),
        any::<[u32; 4]>(),
        any::<bool>(),
    )
        .prop_map(|(routes, n, hash)| Routing {
            routes,
            maxfail: n[0],
            badexpire: n[1],
            timeout: n[2],
            check_interval: n[3],
            select: if hash {
                RouteSelect::SourceHash
            } else {
                RouteSelect::Failover
            },
        })
}

fn method() -> impl Strategy<Value = Method> {
    select(vec![
        Method::None,
        Method::Username,
        Method::PamAny,
        Method::PamAddress,
        Method::PamUsername,
        Method::Socks4UserId,
        Method::Gssapi,
    ])
}

fn limits() -> impl Strategy<Value = Limits> {
    let count = proptest::option::of(1u32..);
    let rate = proptest::option::of(
        (1u32.., 1u32..).prop_map(|(sessions, seconds)| Throttle { sessions, seconds }),
    );
    (
        count.clone(),
        rate.clone(),
        count,
        rate,
        proptest::option::of(1u64..),
    )
        .prop_map(
            |(max, throttle, state_max, state_throttle, bandwidth)| Limits {
                max,
                throttle,
                // A key needs a per-key limit and a per-key limit needs the key.
                state_key: (state_max.is_some() || state_throttle.is_some())
                    .then_some(StateKey::From),
                state_max,
                state_throttle,
                bandwidth,
            },
        )
}

fn config() -> impl Strategy<Value = SockdConfig> {
    let internals = prop::collection::vec(
        (hostspec(), any::<u16>()).prop_map(|(host, port)| Internal {
            host,
            port,
            line: 0,
        }),
        1..4,
    );
    let user = proptest::option::of("[a-z_][a-z0-9_-]{0,7}");
    let settings = (
        internals,
        prop::collection::vec(hostspec(), 0..3),
        select(vec![Rotation::None, Rotation::SameSame, Rotation::Route]),
        prop::collection::vec(log_target(), 0..4),
        prop::collection::vec(log_target(), 0..3),
        prop::collection::vec(Just(Method::None), 0..2),
        prop::collection::vec(Just(Method::None), 0..2),
        user.clone(),
        user,
        any::<[u32; 4]>(),
        any::<u32>(),
    );
    let rest = (
        prop::collection::vec(rule(), 0..3),
        prop::collection::vec(rule(), 0..3),
        proptest::option::of(ip()),
        prop::collection::vec(net(), 0..3),
        (
            proptest::option::of(1u32..),
            proptest::option::of(1u32..),
            proptest::option::of(any::<u32>()),
        ),
        routing(),
    );
    (settings, rest).prop_map(|(s, r)| {
        // A rule's methods must be among the global ones.
        let mut socksmethods = s.5;
        for m in
            r.0.iter()
                .chain(r.1.iter())
                .flat_map(|r| r.socksmethods.iter())
        {
            if !socksmethods.contains(m) {
                socksmethods.push(*m);
            }
        }
        SockdConfig {
            internals: s.0,
            externals: s.1,
            external_rotation: s.2,
            logoutput: s.3,
            errorlog: s.4,
            socksmethods,
            clientmethods: s.6,
            pam_servicename: None,
            gssapi: Default::default(),
            password_file: None,
            socket: None,
            auth_cache: None,
            admission: hasocks_conf::sockd::AdmissionCaps {
                total: r.4 .0,
                negotiating: r.4 .1,
                negotiating_per_source: r.4 .2,
            },
            user_privileged: s.7,
            user_unprivileged: s.8,
            timeouts: Timeouts {
                negotiate: s.9[0],
                connect: s.9[1],
                io_tcp: s.9[2],
                io_udp: s.9[3],
            },
            debug: s.10,
            client_rules: r.0,
            socks_rules: r.1,
            udp_advertise: r.2,
            admin: None,
            proxy_from: r.3,
            warnings: Vec::new(),
            method_uses: Vec::new(),
            routing: r.5,
        }
    })
}

/// Drops what printing cannot keep: source lines, warnings and method positions.
fn normalized(c: SockdConfig) -> SockdConfig {
    c.without_positions()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn printed_config_parses_back_equal(cfg in config()) {
        let text = cfg.to_string();
        let back = parse(&text, Path::new("p.conf"))
            .map_err(|e| TestCaseError::fail(format!("{e}\n--- text ---\n{text}")))?;
        prop_assert_eq!(normalized(back.clone()), cfg);
        // Printing what was parsed gives the same text, and parsing that the same config.
        let again = back.to_string();
        prop_assert_eq!(&again, &text);
        prop_assert_eq!(parse(&again, Path::new("p.conf")).unwrap(), back);
    }
}

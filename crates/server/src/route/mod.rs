//! Server chaining: Dante's `route { }` blocks compiled into a generation's route table, and
//! the plan of one request: the routes that match it form a group, tried in failover order
//! (file order, healthy first) or by rendezvous hashing of the client's address, up to a
//! `via: direct` route of the group (which ends it). A request no route matches goes direct.
//!
//! Long-lived per upstream and per route ([`health`]): the bad marks (`route.maxfail`,
//! `route.badexpire`), the active checks' verdicts ([`checks`]), the counters.

pub mod checks;
pub mod health;
mod status;

pub use status::{RouteStatus, STATES};

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use hasocks_conf::sockd::{
    Command, HostSpec, Method, ProxyProtocol, Route, RouteSelect, Routing, Rule, SockdConfig,
    Verdict, Via,
};
use hasocks_probe::placement::{score, HostKey};

use crate::rules::{socks_rule_matches, AuthDefaults, CompiledRule, RequestFacts};
use health::{Health, Registry, RouteStats};

/// The key of the server's rendezvous hashing (`hasocks.route.select: source-hash`): fixed,
/// so every server and every restart maps a client to the same upstream.
pub const ROUTE_KEY: [u8; 16] = *b"hasocks-route-v1";

/// One upstream proxy as a generation has it: where it is, how to talk to it, its health.
#[derive(Debug)]
pub struct Upstream {
    /// Host as written in `via:` (its identity for hashing, metrics and logs).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Its addresses, resolved when the config was loaded.
    pub addrs: Vec<SocketAddr>,
    /// The protocol spoken to it.
    pub protocol: ProxyProtocol,
    /// Offer method `none`.
    pub offer_none: bool,
    /// Offer method `username` (the client's own name and password).
    pub offer_username: bool,
    /// Its health (long-lived, shared by the routes naming it).
    pub health: Arc<Health>,
    /// Its identity for rendezvous hashing.
    pub key: HostKey,
}

impl Upstream {
    /// `host:port` as logs and metrics name it.
    pub fn name(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One route, compiled.
#[derive(Debug)]
pub struct CompiledRoute {
    /// 1-based number in file order (`route #N` in logs and metrics).
    pub number: usize,
    /// Its line in the config.
    pub line: u32,
    /// Its addresses and commands as a rule (so it matches exactly as rules do).
    matcher: CompiledRule,
    /// The upstream; None = `via: direct`.
    pub upstream: Option<Upstream>,
    /// Its counters (long-lived).
    pub stats: Arc<RouteStats>,
    /// `from ... to ...` as written (for the status page).
    pub condition: String,
}

/// A generation's routes and the settings about them.
#[derive(Debug, Default)]
pub struct Routes {
    /// The routes, file order.
    pub list: Vec<CompiledRoute>,
    /// `hasocks.route.select`.
    pub select: RouteSelect,
    /// `route.maxfail`.
    pub maxfail: u32,
    /// `route.badexpire` (None = a mark does not expire by time).
    pub badexpire: Option<Duration>,
    /// `hasocks.route.timeout` (None = only the connect timeout).
    pub attempt: Option<Duration>,
    /// `hasocks.route.check.interval` (None = no active checks).
    pub check_interval: Option<Duration>,
    /// Whether a route forwards the client's credentials (then the session keeps them).
    pub forwards_credentials: bool,
}

/// Why the routes could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// A `via:` host name does not resolve.
    #[error("route at line {line}: via {host} does not resolve")]
    Unresolvable {
        /// The route's line.
        line: u32,
        /// The name.
        host: String,
    },
}

/// The plan of one request.
#[derive(Debug)]
pub enum Plan<'a> {
    /// No route matches: direct, as Dante's server does.
    Unrouted,
    /// A `via: direct` route matches first.
    Direct(&'a CompiledRoute),
    /// Upstreams to try in this order, then (if the group has one) a `via: direct` route.
    Chain(Vec<&'a CompiledRoute>, Option<&'a CompiledRoute>),
}

impl Routes {
    /// Compiles `cfg`'s routes, taking long-lived records from `registry` (and dropping
    /// the ones no longer named). Blocking: `via:`, `from:` and `to:` names are resolved.
    pub fn build(
        cfg: &SockdConfig,
        registry: &Registry,
        resolve: &dyn Fn(&str) -> Vec<IpAddr>,
    ) -> Result<Routes, RouteError> {
        let r: &Routing = &cfg.routing;
        let secs = |s: u32| (s > 0).then(|| Duration::from_secs(u64::from(s)));
        let mut routes = Routes {
            select: r.select,
            maxfail: r.maxfail,
            badexpire: secs(r.badexpire),
            attempt: secs(r.timeout),
            check_interval: secs(r.check_interval),
            ..Routes::default()
        };
        let (mut upstream_keys, mut route_keys) = (Vec::new(), Vec::new());
        for (i, route) in r.routes.iter().enumerate() {
            let text = route_identity(route, &r.routes[..i]);
            let stats = registry.stats(&text);
            route_keys.push(text);
            let upstream = match &route.via {
                Via::Direct => None,
                Via::Proxy(host, port) => {
                    let u = upstream(route, host, *port, registry)?;
                    upstream_keys.push((u.host.clone(), u.port, u.protocol.word()));
                    routes.forwards_credentials |= u.offer_username;
                    Some(u)
                }
            };
            routes.list.push(CompiledRoute {
                number: i + 1,
                line: route.line,
                matcher: as_rule(route, resolve),
                upstream,
                stats,
                condition: format!("from {} to {}", route.from, route.to),
            });
        }
        registry.retain(&upstream_keys, &route_keys);
        Ok(routes)
    }

    /// The plan for a request; None when a route needs the target's addresses to decide
    /// (the caller resolves the name and asks again with them).
    pub fn plan(&self, facts: &RequestFacts<'_>, resolved: Option<&[IpAddr]>) -> Option<Plan<'_>> {
        let mut ups: Vec<&CompiledRoute> = Vec::new();
        let mut direct = None;
        for r in &self.list {
            if !socks_rule_matches(&r.matcher, facts, resolved)? {
                continue;
            }
            match &r.upstream {
                None => {
                    direct = Some(r);
                    break;
                }
                // The same upstream named twice in a group is tried once.
                Some(u) if ups.iter().any(|x| same_upstream(x, u)) => {}
                Some(_) => ups.push(r),
            }
        }
        Some(match (ups.is_empty(), direct) {
            (true, None) => Plan::Unrouted,
            (true, Some(d)) => Plan::Direct(d),
            (false, d) => Plan::Chain(self.order(ups, facts.client.ip(), d.is_some()), d),
        })
    }

    /// The order of a group's upstreams: healthy ones first (in file order, or by score
    /// for `source-hash`), then, unless a direct route follows, the bad ones in the same
    /// order (tried last rather than failing the client).
    fn order<'a>(
        &self,
        mut ups: Vec<&'a CompiledRoute>,
        client: IpAddr,
        then_direct: bool,
    ) -> Vec<&'a CompiledRoute> {
        if self.select == RouteSelect::SourceHash && ups.len() > 1 {
            let (buf, len) = ip_bytes(client);
            let input = buf.get(..len).unwrap_or_default();
            let s = |r: &CompiledRoute| {
                r.upstream
                    .as_ref()
                    .map_or(0, |u| score(&ROUTE_KEY, input, &u.key))
            };
            ups.sort_by_key(|r| std::cmp::Reverse(s(r)));
        }
        let bad = |r: &CompiledRoute| {
            r.upstream
                .as_ref()
                .is_some_and(|u| u.health.is_bad(self.badexpire))
        };
        let (mut good, rest): (Vec<_>, Vec<_>) = ups.into_iter().partition(|r| !bad(r));
        if !then_direct {
            good.extend(rest);
        }
        good
    }

    /// Every distinct upstream of the table (the active checks' list).
    pub fn upstreams(&self) -> Vec<&Upstream> {
        let mut out: Vec<&Upstream> = Vec::new();
        for u in self.list.iter().filter_map(|r| r.upstream.as_ref()) {
            if !out.iter().any(|x| Arc::ptr_eq(&x.health, &u.health)) {
                out.push(u);
            }
        }
        out
    }
}

fn same_upstream(r: &CompiledRoute, u: &Upstream) -> bool {
    r.upstream
        .as_ref()
        .is_some_and(|x| Arc::ptr_eq(&x.health, &u.health))
}

/// The client's address as hashed: IPv4 (IPv4-mapped too) as 4 bytes, IPv6 as 16, as the
/// relay's `source-hash` does.
fn ip_bytes(ip: IpAddr) -> ([u8; 16], usize) {
    let mut buf = [0u8; 16];
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            buf[..4].copy_from_slice(&v4.octets());
            (buf, 4)
        }
        IpAddr::V6(v6) => (v6.octets(), 16),
    }
}

/// A route's identity for its counters: its canonical text, and which copy of that text
/// it is (two equal routes keep two sets of counters).
fn route_identity(route: &Route, before: &[Route]) -> String {
    let text = strip_line(route).to_string();
    let copy = before
        .iter()
        .filter(|r| strip_line(r).to_string() == text)
        .count();
    format!("{copy} {text}")
}

fn strip_line(r: &Route) -> Route {
    Route {
        line: 0,
        ..r.clone()
    }
}

/// The route's conditions as a rule, so it matches exactly as rules do.
fn as_rule(route: &Route, resolve: &dyn Fn(&str) -> Vec<IpAddr>) -> CompiledRule {
    let rule = Rule {
        from: route.from.clone(),
        to: route.to.clone(),
        commands: route.effective_commands(),
        ..Rule::new(route.line, Verdict::Pass)
    };
    CompiledRule::compile(0, &rule, resolve, &AuthDefaults::default())
}

/// The upstream of a `via: HOST port = N` route.
fn upstream(
    route: &Route,
    host: &HostSpec,
    port: u16,
    registry: &Registry,
) -> Result<Upstream, RouteError> {
    let (name, addrs) = match host {
        HostSpec::Ip(ip) => (ip.to_string(), vec![SocketAddr::new(*ip, port)]),
        HostSpec::Name(n) => {
            let addrs: Vec<SocketAddr> = (n.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect)
                .unwrap_or_default();
            if addrs.is_empty() {
                return Err(RouteError::Unresolvable {
                    line: route.line,
                    host: n.clone(),
                });
            }
            (n.clone(), addrs)
        }
    };
    let protocol = route.upstream_protocol();
    let offer_username = route.methods.contains(&Method::Username);
    Ok(Upstream {
        key: HostKey {
            name: name.clone(),
            port,
        },
        health: registry.health((name.clone(), port, protocol.word())),
        host: name,
        port,
        addrs,
        protocol,
        offer_none: route.methods.is_empty() || route.methods.contains(&Method::None),
        offer_username,
    })
}

/// `-V`'s view of the routes: one line each as parsed, with what hasocks makes of it.
pub fn describe(cfg: &SockdConfig) -> Vec<String> {
    let mut out = Vec::new();
    for (i, r) in cfg.routing.routes.iter().enumerate() {
        let cmds: Vec<&str> = r
            .effective_commands()
            .iter()
            .map(|c| match c {
                Command::Connect => "connect",
                Command::Bind => "bind",
                _ => "udpassociate",
            })
            .collect();
        let how = match &r.via {
            Via::Direct => "direct".to_string(),
            Via::Proxy(..) => {
                let methods: Vec<&str> = if r.methods.is_empty() {
                    vec!["none"]
                } else {
                    r.methods.iter().map(|m| m.word()).collect()
                };
                format!(
                    "via {} speaking {}, methods {}",
                    r.via,
                    r.upstream_protocol().word(),
                    methods.join(" ")
                )
            }
        };
        out.push(format!(
            "route #{} (line {}): from {} to {} {how}; commands {}",
            i + 1,
            r.line,
            r.from,
            r.to,
            cmds.join(" ")
        ));
        let proto = r.upstream_protocol();
        if r.via != Via::Direct && r.commands.is_empty() && proto != ProxyProtocol::SocksV5 {
            out.push(format!(
                "route #{}: note: a {} upstream carries connect only; bind and udpassociate \
                 requests skip this route",
                i + 1,
                proto.word()
            ));
        }
    }
    let r = &cfg.routing;
    if !r.routes.is_empty() {
        let select = match r.select {
            RouteSelect::Failover => "failover",
            RouteSelect::SourceHash => "source-hash",
        };
        out.push(format!(
            "routes: select {select}, maxfail {}, badexpire {} s, attempt timeout {} s, \
             checks every {} s (0 = off); unmatched requests go direct",
            r.maxfail, r.badexpire, r.timeout, r.check_interval
        ));
    }
    out
}

#[cfg(test)]
mod tests;

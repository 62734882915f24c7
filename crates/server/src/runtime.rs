//! The server's working state built from a parsed sockd.conf: names resolved, rules compiled,
//! log destinations opened. Swapped whole on SIGHUP; sessions keep the one they started with.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use conf::sockd::{HostSpec, Method, Rotation, SockdConfig, Timeouts};
use ipnet::IpNet;

use crate::logger::Logger;
use crate::rules::CompiledRule;

/// Everything a session needs to decide and act, immutable once built.
pub struct Runtime {
    /// Client rules, compiled.
    pub client_rules: Vec<CompiledRule>,
    /// Socks rules, compiled.
    pub socks_rules: Vec<CompiledRule>,
    /// The implicit block rule.
    pub default_rule: CompiledRule,
    /// External addresses in config order.
    pub externals: Vec<IpAddr>,
    /// `external.rotation`.
    pub rotation: Rotation,
    /// Global timeouts.
    pub timeouts: Timeouts,
    /// `socksmethod: none` present (the only method supported so far).
    pub method_none: bool,
    /// Peers that must send a PROXY header.
    pub proxy_from: Vec<IpNet>,
    /// Address advertised in UDP ASSOCIATE replies, if configured.
    pub udp_advertise: Option<IpAddr>,
    /// `debug:` level.
    pub debug: u32,
    /// Log destinations.
    pub logger: Arc<Logger>,
}

/// Resolves an `internal:`/`external:` host: an interface's addresses, an IP, or a host name.
pub fn resolve_host(spec: &HostSpec) -> Result<Vec<IpAddr>, String> {
    match spec {
        HostSpec::Ip(ip) => Ok(vec![*ip]),
        HostSpec::Name(name) => {
            if let Ok(Some(addrs)) = net::sock::interface_addrs(name) {
                if addrs.is_empty() {
                    return Err(format!("interface {name} has no address"));
                }
                return Ok(addrs);
            }
            resolve_name(name)
                .ok_or_else(|| format!("{name} is neither an interface nor a resolvable host name"))
        }
    }
}

fn resolve_name(name: &str) -> Option<Vec<IpAddr>> {
    let addrs: Vec<IpAddr> = (name, 0).to_socket_addrs().ok()?.map(|a| a.ip()).collect();
    (!addrs.is_empty()).then_some(addrs)
}

fn resolve_rule_name(name: &str) -> Vec<IpAddr> {
    match net::sock::interface_addrs(name) {
        Ok(Some(addrs)) => addrs,
        _ => resolve_name(name).unwrap_or_default(),
    }
}

impl Runtime {
    /// Builds the working state. Blocking (name resolution): call from a blocking context.
    pub fn build(cfg: &SockdConfig, logger: Arc<Logger>) -> Result<Self, String> {
        let mut externals = Vec::new();
        for e in &cfg.externals {
            externals.extend(resolve_host(e).map_err(|m| format!("external: {m}"))?);
        }
        let compile = |rules: &[conf::sockd::Rule]| {
            rules
                .iter()
                .enumerate()
                .map(|(i, r)| CompiledRule::compile(i + 1, r, &resolve_rule_name))
                .collect::<Vec<_>>()
        };
        Ok(Self {
            client_rules: compile(&cfg.client_rules),
            socks_rules: compile(&cfg.socks_rules),
            default_rule: CompiledRule::default_block(),
            externals,
            rotation: cfg.external_rotation,
            timeouts: cfg.timeouts,
            method_none: cfg.socksmethods.contains(&Method::None),
            proxy_from: cfg.proxy_from.clone(),
            udp_advertise: cfg.udp_advertise,
            debug: cfg.debug,
            logger,
        })
    }

    /// Whether a peer must (and may) send a PROXY protocol header.
    pub fn expects_proxy_header(&self, peer: IpAddr) -> bool {
        self.proxy_from.iter().any(|n| n.contains(&peer))
    }

    /// The source address for an outgoing connection to `target`, per `external.rotation`.
    /// `internal` is the local address the client reached. `Ok(None)` = let the kernel choose.
    pub fn outgoing_source(
        &self,
        target: IpAddr,
        internal: SocketAddr,
    ) -> Result<Option<IpAddr>, String> {
        match self.rotation {
            Rotation::Route => Ok(None),
            Rotation::SameSame => {
                if internal.ip().is_ipv4() == target.is_ipv4() {
                    Ok(Some(internal.ip()))
                } else {
                    Err(format!(
                        "external.rotation same-same: {} and {target} differ in family",
                        internal.ip()
                    ))
                }
            }
            Rotation::None => {
                if self.externals.is_empty() {
                    return Ok(None);
                }
                self.externals
                    .iter()
                    .find(|e| e.is_ipv4() == target.is_ipv4())
                    .map(|e| Some(*e))
                    .ok_or_else(|| format!("no external address of the family of {target}"))
            }
        }
    }

    /// The external address to listen on for a BIND towards `dst`, per `external.rotation`
    /// (none: first external of the family; same-same: the internal address the client
    /// reached; route: the kernel's source towards `dst`). An unspecified `dst` (the client
    /// did not name its peer) and a `none` config without externals fall back to the route
    /// source, then to the internal address, so the reply never names 0.0.0.0.
    pub fn bind_source(&self, dst: IpAddr, internal: SocketAddr) -> Result<IpAddr, String> {
        let route = || {
            if dst.is_unspecified() {
                return Ok(internal.ip());
            }
            net::sock::route_source(dst)
                .map_err(|e| format!("external.rotation route: no route to {dst}: {e}"))
        };
        match self.rotation {
            Rotation::Route => route(),
            Rotation::SameSame | Rotation::None => match self.outgoing_source(dst, internal)? {
                Some(ip) => Ok(ip),
                None => route(),
            },
        }
    }

    /// The address to bind an outgoing UDP socket of `dst`'s family to, per
    /// `external.rotation`; unspecified lets the kernel pick the source per datagram (route).
    pub fn udp_source(&self, dst: IpAddr, internal: SocketAddr) -> Result<IpAddr, String> {
        let any = match dst {
            IpAddr::V4(_) => IpAddr::from([0u8; 4]),
            IpAddr::V6(_) => IpAddr::from([0u16; 8]),
        };
        Ok(self.outgoing_source(dst, internal)?.unwrap_or(any))
    }
}

/// Seconds to a Duration where 0 means "none".
pub fn secs(s: u32) -> Option<Duration> {
    (s > 0).then(|| Duration::from_secs(u64::from(s)))
}

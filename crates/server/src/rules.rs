//! Rule matching: client rules (TCP level) and socks rules (per request). First match wins;
//! no match is the implicit block rule, as in Dante.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hasocks_conf::sockd::{
    AddrSpec, Command, LogFlags, Method, PortSpec, Protocol, Rule, RuleTimeouts, SocksVersion,
    Verdict,
};
use ipnet::IpNet;

use crate::limits::RuleState;

/// The global settings a rule's authentication items default to.
#[derive(Debug, Clone, Default)]
pub struct AuthDefaults {
    /// Global `socksmethod:`.
    pub socksmethods: Vec<Method>,
    /// Global `clientmethod:` (empty = `none`).
    pub clientmethods: Vec<Method>,
    /// Global `pam.servicename:` (default `sockd`).
    pub pam_service: String,
    /// Global `gssapi.*` settings.
    pub gssapi: hasocks_conf::sockd::Gssapi,
}

/// The address side of a rule, with names resolved at load time.
#[derive(Debug, Clone)]
pub enum AddrMatcher {
    /// `0/0`.
    Any,
    /// A network.
    Net(IpNet),
    /// `.domain` suffix (stored without the dot).
    Domain(String),
    /// A host or interface name and the addresses it stood for at load time.
    Name {
        /// The name, lower-case.
        name: String,
        /// Its addresses when the config was loaded.
        ips: Vec<IpAddr>,
    },
}

/// A rule ready for matching.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    /// 1-based number within its kind (client or socks), as Dante numbers rules in logs.
    pub number: usize,
    /// Line of the rule in the config.
    pub line: u32,
    /// pass or block.
    pub verdict: Verdict,
    /// `from:` address.
    pub from: AddrMatcher,
    /// `from:` port.
    pub from_port: PortSpec,
    /// `to:` address.
    pub to: AddrMatcher,
    /// `to:` port.
    pub to_port: PortSpec,
    /// `command:` (empty = all).
    pub commands: Vec<Command>,
    /// `protocol:` (empty = all).
    pub protocols: Vec<Protocol>,
    /// `proxyprotocol:` (empty = all).
    pub versions: Vec<SocksVersion>,
    /// `log:`.
    pub log: LogFlags,
    /// Per-rule timeouts.
    pub timeouts: RuleTimeouts,
    /// `udp.portrange`.
    pub udp_portrange: Option<(u16, u16)>,
    /// `socksmethod:` as written; in a client rule, the list the greeting chooses from.
    pub socksmethods: Vec<Method>,
    /// The methods a session must have to match (a socks rule's condition): the rule's
    /// own list, else the global one; a `user:`/`group:` rule keeps only the methods that
    /// give a name (Dante's inheritance). Empty = no condition.
    pub methods: Vec<Method>,
    /// `clientmethod:` in force (the rule's, else the global one, else `none`).
    pub clientmethods: Vec<Method>,
    /// `user:` names.
    pub users: Vec<Vec<u8>>,
    /// `group:` names.
    pub groups: Vec<String>,
    /// `pam.servicename` in force for this rule.
    pub pam_service: String,
    /// `gssapi.*` in force for this rule (the rule's over the global ones).
    pub gssapi: hasocks_conf::sockd::Gssapi,
    /// Its `session.*`/`bandwidth:` state (long-lived, see [`crate::limits`]).
    pub limits: Option<Arc<RuleState>>,
}

impl CompiledRule {
    /// Compiles `rule`; `resolve` turns a name into the addresses it stands for; `auth`
    /// gives the global lists the rule inherits.
    pub fn compile(
        number: usize,
        rule: &Rule,
        resolve: &dyn Fn(&str) -> Vec<IpAddr>,
        auth: &AuthDefaults,
    ) -> Self {
        let matcher = |spec: &AddrSpec| match spec {
            AddrSpec::Any => AddrMatcher::Any,
            AddrSpec::Net(n) => AddrMatcher::Net(*n),
            AddrSpec::Domain(d) => AddrMatcher::Domain(d.to_ascii_lowercase()),
            AddrSpec::Name(n) => AddrMatcher::Name {
                name: n.to_ascii_lowercase(),
                ips: resolve(n),
            },
        };
        Self {
            number,
            line: rule.line,
            verdict: rule.verdict,
            from: matcher(&rule.from.addr),
            from_port: rule.from.port,
            to: matcher(&rule.to.addr),
            to_port: rule.to.port,
            commands: rule.commands.clone(),
            protocols: rule.protocols.clone(),
            versions: rule.proxyprotocols.clone(),
            log: rule.log,
            timeouts: rule.timeouts,
            udp_portrange: rule.udp_portrange,
            socksmethods: rule.socksmethods.clone(),
            methods: effective_methods(rule, auth),
            clientmethods: first_non_empty(&rule.auth.clientmethods, &auth.clientmethods)
                .unwrap_or_else(|| vec![Method::None]),
            users: rule
                .auth
                .users
                .iter()
                .map(|u| u.as_bytes().to_vec())
                .collect(),
            groups: rule.auth.groups.clone(),
            pam_service: rule
                .auth
                .pam_servicename
                .clone()
                .unwrap_or_else(|| auth.pam_service.clone()),
            gssapi: rule.auth.gssapi.or(&auth.gssapi),
            limits: None,
        }
    }

    /// Whether the rule names users or groups.
    pub fn wants_name(&self) -> bool {
        !self.users.is_empty() || !self.groups.is_empty()
    }

    /// The implicit rule that blocks what no rule matched.
    pub fn default_block() -> Self {
        Self {
            number: 0,
            line: 0,
            verdict: Verdict::Block,
            from: AddrMatcher::Any,
            from_port: PortSpec::Any,
            to: AddrMatcher::Any,
            to_port: PortSpec::Any,
            commands: Vec::new(),
            protocols: Vec::new(),
            versions: Vec::new(),
            // Dante logs what its default rule blocks; so do we.
            log: LogFlags {
                connect: true,
                error: true,
                ..LogFlags::default()
            },
            timeouts: RuleTimeouts::default(),
            udp_portrange: None,
            socksmethods: Vec::new(),
            methods: Vec::new(),
            clientmethods: vec![Method::None],
            users: Vec::new(),
            groups: Vec::new(),
            pam_service: hasocks_conf::sockd::DEFAULT_PAM_SERVICE.to_string(),
            gssapi: Default::default(),
            limits: None,
        }
    }

    /// "pass(3)" / "block(0)", as in Dante's log lines.
    pub fn label(&self) -> String {
        let v = match self.verdict {
            Verdict::Pass => "pass",
            Verdict::Block => "block",
        };
        format!("{v}({})", self.number)
    }
}

/// The first of two lists that is not empty, as an owned list.
fn first_non_empty(a: &[Method], b: &[Method]) -> Option<Vec<Method>> {
    [a, b]
        .into_iter()
        .find(|l| !l.is_empty())
        .map(<[Method]>::to_vec)
}

/// A socks rule's method condition (see [`CompiledRule::methods`]).
fn effective_methods(rule: &Rule, auth: &AuthDefaults) -> Vec<Method> {
    if !rule.socksmethods.is_empty() {
        return rule.socksmethods.clone();
    }
    let named = !rule.auth.users.is_empty() || !rule.auth.groups.is_empty();
    auth.socksmethods
        .iter()
        .copied()
        .filter(|m| !named || m.provides_name())
        .collect()
}

impl AddrMatcher {
    /// Whether this matcher needs the target's addresses (a name target must be resolved).
    pub fn needs_ips_for_name(&self, name: &str) -> bool {
        match self {
            AddrMatcher::Net(_) => true,
            AddrMatcher::Name { name: n, .. } => !n.eq_ignore_ascii_case(name),
            _ => false,
        }
    }

    /// Matches an IP address.
    pub fn matches_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match self {
            AddrMatcher::Any => true,
            AddrMatcher::Net(n) => n.contains(&ip),
            AddrMatcher::Domain(_) => false,
            AddrMatcher::Name { ips, .. } => ips.iter().any(|a| canonical(*a) == ip),
        }
    }

    /// Matches a host name as requested, with its resolved addresses when known.
    pub fn matches_name(&self, name: &str, resolved: Option<&[IpAddr]>) -> bool {
        let name = name.trim_end_matches('.');
        match self {
            AddrMatcher::Any => true,
            AddrMatcher::Domain(d) => {
                name.eq_ignore_ascii_case(d)
                    || (name.len() > d.len()
                        && name.as_bytes()[name.len() - d.len() - 1] == b'.'
                        && name[name.len() - d.len()..].eq_ignore_ascii_case(d))
            }
            AddrMatcher::Name { name: n, .. } if n.eq_ignore_ascii_case(name) => true,
            AddrMatcher::Net(_) | AddrMatcher::Name { .. } => {
                resolved.is_some_and(|ips| ips.iter().any(|ip| self.matches_ip(*ip)))
            }
        }
    }
}

/// IPv4-mapped IPv6 addresses are matched as IPv4 (a dual-stack listener sees them).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Whether a client rule's addresses match a connection from `client` accepted on
/// `internal` (its clientmethod is judged by the session).
pub fn client_rule_matches(r: &CompiledRule, client: SocketAddr, internal: SocketAddr) -> bool {
    r.from.matches_ip(client.ip())
        && r.from_port.matches(client.port())
        && r.to.matches_ip(internal.ip())
        && r.to_port.matches(internal.port())
}

/// The first client rule matching a connection from `client` accepted on `internal`.
pub fn match_client<'a>(
    rules: &'a [CompiledRule],
    client: SocketAddr,
    internal: SocketAddr,
    default: &'a CompiledRule,
) -> &'a CompiledRule {
    rules
        .iter()
        .find(|r| client_rule_matches(r, client, internal))
        .unwrap_or(default)
}

/// What a socks request looks like to the rules.
#[derive(Debug, Clone)]
pub struct RequestFacts<'a> {
    /// The client (after a PROXY header, the real client).
    pub client: SocketAddr,
    /// The command.
    pub command: Command,
    /// The SOCKS version.
    pub version: SocksVersion,
    /// Target as an address, when the client sent one.
    pub target_ip: Option<IpAddr>,
    /// Target as a name, when the client sent one.
    pub target_name: Option<&'a str>,
    /// Target port.
    pub target_port: u16,
}

impl RequestFacts<'_> {
    fn protocol(&self) -> Protocol {
        match self.command {
            Command::UdpAssociate | Command::UdpReply => Protocol::Udp,
            _ => Protocol::Tcp,
        }
    }
}

/// Does `rule` match, given the target's resolved addresses when the target is a name?
/// Returns None when the answer needs the name resolved first.
pub fn socks_rule_matches(
    rule: &CompiledRule,
    facts: &RequestFacts<'_>,
    resolved: Option<&[IpAddr]>,
) -> Option<bool> {
    let conds = rule.from.matches_ip(facts.client.ip())
        && rule.from_port.matches(facts.client.port())
        && (rule.commands.is_empty() || rule.commands.contains(&facts.command))
        && (rule.protocols.is_empty() || rule.protocols.contains(&facts.protocol()))
        && (rule.versions.is_empty() || rule.versions.contains(&facts.version))
        && rule.to_port.matches(facts.target_port);
    if !conds {
        return Some(false);
    }
    match (facts.target_ip, facts.target_name) {
        (Some(ip), _) => Some(rule.to.matches_ip(ip)),
        (None, Some(name)) => {
            if resolved.is_none() && rule.to.needs_ips_for_name(name) {
                None
            } else {
                Some(rule.to.matches_name(name, resolved))
            }
        }
        (None, None) => Some(matches!(rule.to, AddrMatcher::Any)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hasocks_conf::sockd::PortOp;

    fn rule(verdict: Verdict, to: AddrMatcher) -> CompiledRule {
        CompiledRule {
            verdict,
            to,
            number: 1,
            ..CompiledRule::default_block()
        }
    }

    fn facts(name: Option<&str>, ip: Option<IpAddr>) -> RequestFacts<'_> {
        RequestFacts {
            client: "127.0.0.1:5000".parse().unwrap(),
            command: Command::Connect,
            version: SocksVersion::V5,
            target_ip: ip,
            target_name: name,
            target_port: 80,
        }
    }

    #[test]
    fn domain_suffix_matches_name_and_subdomains_only() {
        let m = AddrMatcher::Domain("example.com".into());
        assert!(m.matches_name("example.com", None));
        assert!(m.matches_name("www.Example.COM", None));
        assert!(!m.matches_name("badexample.com", None));
        assert!(!m.matches_name("example.org", None));
    }

    #[test]
    fn ipv4_only_net_does_not_match_ipv6() {
        let m = AddrMatcher::Net("0.0.0.0/0".parse().unwrap());
        assert!(m.matches_ip("10.1.2.3".parse().unwrap()));
        assert!(!m.matches_ip("::1".parse().unwrap()));
        assert!(m.matches_ip("::ffff:10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn name_target_against_net_rule_asks_for_resolution() {
        let r = rule(
            Verdict::Pass,
            AddrMatcher::Net("10.0.0.0/8".parse().unwrap()),
        );
        let f = facts(Some("host.test"), None);
        assert_eq!(socks_rule_matches(&r, &f, None), None);
        let ips = ["10.9.9.9".parse().unwrap()];
        assert_eq!(socks_rule_matches(&r, &f, Some(&ips)), Some(true));
        let ips = ["192.0.2.1".parse().unwrap()];
        assert_eq!(socks_rule_matches(&r, &f, Some(&ips)), Some(false));
    }

    #[test]
    fn domain_rule_decides_without_resolution() {
        let r = rule(Verdict::Block, AddrMatcher::Domain("blocked.test".into()));
        assert_eq!(
            socks_rule_matches(&r, &facts(Some("a.blocked.test"), None), None),
            Some(true)
        );
        assert_eq!(
            socks_rule_matches(&r, &facts(Some("ok.test"), None), None),
            Some(false)
        );
    }

    #[test]
    fn port_and_command_conditions_filter() {
        let mut r = rule(Verdict::Pass, AddrMatcher::Any);
        r.to_port = PortSpec::Op(PortOp::Eq, 443);
        assert_eq!(
            socks_rule_matches(&r, &facts(None, Some("1.2.3.4".parse().unwrap())), None),
            Some(false)
        );
        r.to_port = PortSpec::Any;
        r.commands = vec![Command::Bind];
        assert_eq!(
            socks_rule_matches(&r, &facts(None, Some("1.2.3.4".parse().unwrap())), None),
            Some(false)
        );
    }

    #[test]
    fn first_client_rule_wins_and_default_blocks() {
        let default = CompiledRule::default_block();
        let mut a = rule(Verdict::Block, AddrMatcher::Any);
        a.from = AddrMatcher::Net("127.0.0.2/32".parse().unwrap());
        a.number = 1;
        let mut b = rule(Verdict::Pass, AddrMatcher::Any);
        b.from = AddrMatcher::Net("127.0.0.0/8".parse().unwrap());
        b.number = 2;
        let rules = vec![a, b];
        let internal = "127.0.0.1:1080".parse().unwrap();
        assert_eq!(
            match_client(&rules, "127.0.0.2:1".parse().unwrap(), internal, &default).number,
            1
        );
        assert_eq!(
            match_client(&rules, "127.0.0.3:1".parse().unwrap(), internal, &default).number,
            2
        );
        let r = match_client(&rules, "10.0.0.1:1".parse().unwrap(), internal, &default);
        assert_eq!((r.number, r.verdict), (0, Verdict::Block));
    }
}

//! The typed form of a sockd.conf: what the server runs from.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::ConfWarning;

/// A whole sockd.conf, settings and rules.
#[derive(Debug, Clone, PartialEq)]
pub struct SockdConfig {
    /// `internal:` lines: where clients are accepted. Empty is a parse error (Dante needs one).
    pub internals: Vec<Internal>,
    /// `external:` lines: where outgoing traffic leaves from, in file order.
    pub externals: Vec<HostSpec>,
    /// `external.rotation:`; default `None`.
    pub external_rotation: Rotation,
    /// `logoutput:`; empty = nowhere (as Dante).
    pub logoutput: Vec<LogTarget>,
    /// `errorlog:`; empty = nowhere.
    pub errorlog: Vec<LogTarget>,
    /// `socksmethod:`, in order of preference. Empty means every request is refused.
    pub socksmethods: Vec<Method>,
    /// `clientmethod:`; empty = derived (none).
    pub clientmethods: Vec<Method>,
    /// `user.privileged:`.
    pub user_privileged: Option<String>,
    /// `user.unprivileged:`: drop to this user after binding when started as root.
    pub user_unprivileged: Option<String>,
    /// Global timeouts.
    pub timeouts: Timeouts,
    /// `debug:` level.
    pub debug: u32,
    /// `client pass|block` rules, file order.
    pub client_rules: Vec<Rule>,
    /// `socks pass|block` rules, file order.
    pub socks_rules: Vec<Rule>,
    /// Ours: `hasocks.udp.advertise: ADDR`: the address put in UDP ASSOCIATE replies
    /// (for NAT / containers) instead of the local address of the control connection.
    pub udp_advertise: Option<IpAddr>,
    /// Ours: `hasocks.proxyprotocol.from: NET ...`: peers allowed to send a PROXY v1/v2
    /// header first; from them the header is required and its source is the client address.
    pub proxy_from: Vec<IpNet>,
    /// Remarks for the operator (harmless ignored keywords, no socksmethod, ...).
    pub warnings: Vec<ConfWarning>,
}

/// One `internal:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Internal {
    /// Address or interface name.
    pub host: HostSpec,
    /// `port = N`, default 1080.
    pub port: u16,
    /// 1-based line of the keyword (for messages).
    pub line: u32,
}

/// An address or a name that is either an interface or a host name (decided at start-up:
/// an existing interface wins, as in Dante).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSpec {
    /// A literal IP address.
    Ip(IpAddr),
    /// An interface name or a host name.
    Name(String),
}

/// `external.rotation:` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rotation {
    /// First external address of the right family.
    #[default]
    None,
    /// The internal address the client reached.
    SameSame,
    /// The kernel's source address towards the destination.
    Route,
}

/// A log destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// `stderr`.
    Stderr,
    /// `stdout`.
    Stdout,
    /// `syslog` or `syslog/FACILITY` (facility lower-case, default "daemon").
    Syslog(String),
    /// A file path (opened for append, reopened on SIGHUP).
    File(std::path::PathBuf),
}

/// An authentication method name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `none`.
    None,
    /// `username` (RFC 1929 against the system passwords; later issue).
    Username,
    /// `pam.address`, `pam.any`, `pam.username` (later issue).
    Pam,
    /// `gssapi`, `rfc931`, `bsdauth`: parsed so that the error can name them.
    Other,
}

/// Timeouts in seconds; 0 = none where Dante says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `timeout.negotiate`, default 30.
    pub negotiate: u32,
    /// `timeout.connect`, default 30.
    pub connect: u32,
    /// `timeout.io` / `timeout.io.tcp`, default 0 (none).
    pub io_tcp: u32,
    /// `timeout.io` / `timeout.io.udp`, default 0 (none).
    pub io_udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            negotiate: 30,
            connect: 30,
            io_tcp: 0,
            io_udp: 0,
        }
    }
}

/// Per-rule timeout overrides (None = use the global one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RuleTimeouts {
    /// `timeout.negotiate` in the rule.
    pub negotiate: Option<u32>,
    /// `timeout.connect` in the rule.
    pub connect: Option<u32>,
    /// `timeout.io` / `timeout.io.tcp` in the rule.
    pub io_tcp: Option<u32>,
    /// `timeout.io` / `timeout.io.udp` in the rule.
    pub io_udp: Option<u32>,
}

/// `pass` or `block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through.
    Pass,
    /// Refuse it.
    Block,
}

/// A SOCKS command as named in `command:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// `connect`.
    Connect,
    /// `bind`.
    Bind,
    /// `udpassociate`.
    UdpAssociate,
    /// `bindreply`: the inbound connection of a BIND.
    BindReply,
    /// `udpreply`: a datagram coming back to a UDP client.
    UdpReply,
}

/// `protocol:` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `tcp`.
    Tcp,
    /// `udp`.
    Udp,
}

/// `proxyprotocol:` values (the SOCKS version, not HAProxy's PROXY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocksVersion {
    /// `socks_v4` (covers 4a).
    V4,
    /// `socks_v5`.
    V5,
}

/// What a rule logs (`log:` keywords).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogFlags {
    /// `connect`.
    pub connect: bool,
    /// `disconnect`.
    pub disconnect: bool,
    /// `data`.
    pub data: bool,
    /// `error`.
    pub error: bool,
    /// `iooperation` / `ioop`.
    pub iooperation: bool,
    /// `tcpinfo` (accepted, logged as nothing extra).
    pub tcpinfo: bool,
}

/// The address part of `from:` / `to:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrSpec {
    /// `0/0`: every IPv4 and IPv6 address and every name.
    Any,
    /// A network: CIDR or address/netmask; a bare address is a /32 or /128.
    /// Note `0.0.0.0/0` is IPv4 only.
    Net(IpNet),
    /// `.example.com`: names ending in the suffix (and `example.com` itself). Stored without
    /// the leading dot, lower-case.
    Domain(String),
    /// A host name or an interface name (lower-case), decided at start-up.
    Name(String),
}

/// The port part of `from:` / `to:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PortSpec {
    /// No port condition.
    #[default]
    Any,
    /// `port OP N` (`=` when written `port = N`).
    Op(PortOp, u16),
    /// `port N - M`, inclusive.
    Range(u16, u16),
}

/// Port comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortOp {
    /// `eq` / `=`.
    Eq,
    /// `neq` / `!=`.
    Neq,
    /// `ge` / `>=`.
    Ge,
    /// `le` / `<=`.
    Le,
    /// `gt` / `>`.
    Gt,
    /// `lt` / `<`.
    Lt,
}

impl PortSpec {
    /// Whether `port` satisfies this condition.
    pub fn matches(&self, port: u16) -> bool {
        match *self {
            PortSpec::Any => true,
            PortSpec::Range(a, b) => (a..=b).contains(&port),
            PortSpec::Op(op, n) => match op {
                PortOp::Eq => port == n,
                PortOp::Neq => port != n,
                PortOp::Ge => port >= n,
                PortOp::Le => port <= n,
                PortOp::Gt => port > n,
                PortOp::Lt => port < n,
            },
        }
    }
}

/// An address with an optional port condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The address part.
    pub addr: AddrSpec,
    /// The port part.
    pub port: PortSpec,
}

impl Endpoint {
    /// `0/0` with no port condition.
    pub fn any() -> Self {
        Self {
            addr: AddrSpec::Any,
            port: PortSpec::Any,
        }
    }
}

/// One `client` or `socks` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// 1-based line of the rule's opening keyword; the rule number in logs.
    pub line: u32,
    /// `pass` or `block`.
    pub verdict: Verdict,
    /// `from:`; default `0/0`.
    pub from: Endpoint,
    /// `to:`; default `0/0`.
    pub to: Endpoint,
    /// `command:`; empty = all.
    pub commands: Vec<Command>,
    /// `protocol:`; empty = all.
    pub protocols: Vec<Protocol>,
    /// `proxyprotocol:`; empty = all.
    pub proxyprotocols: Vec<SocksVersion>,
    /// `socksmethod:` in a rule; empty = all.
    pub socksmethods: Vec<Method>,
    /// `log:`.
    pub log: LogFlags,
    /// Per-rule `timeout.*`.
    pub timeouts: RuleTimeouts,
    /// `udp.portrange: A-B` (inclusive).
    pub udp_portrange: Option<(u16, u16)>,
}

//! The typed form of a sockd.conf: what the server runs from.

use std::net::IpAddr;

/// Dante's default PAM service name (`DEFAULT_PAMSERVICENAME`), even in Debian's build.
pub const DEFAULT_PAM_SERVICE: &str = "sockd";

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
    /// `clientmethod:`; empty = `none` (what Dante's code sets when it is unset).
    pub clientmethods: Vec<Method>,
    /// `pam.servicename:`; None = `sockd`, as in Dante.
    pub pam_servicename: Option<String>,
    /// `gssapi.servicename:`, `gssapi.keytab:`, `gssapi.enctype:` outside the rules.
    pub gssapi: Gssapi,
    /// Ours: `hasocks.passwordfile: FILE`: the htpasswd file of method `hasocks.passwordfile`.
    pub password_file: Option<std::path::PathBuf>,
    /// `hasocks.socket: PATH`: the control socket a successor takes the listeners over
    /// from at a binary upgrade (`hasocks server --upgrade`); default
    /// `/run/hasocks/server.sock`.
    pub socket: Option<std::path::PathBuf>,
    /// Ours: `hasocks.auth.cache: SECONDS`: how long a successful check is remembered
    /// (None = the built-in 30 s; 0 = never).
    pub auth_cache: Option<u32>,
    /// Ours: the server's admission caps (`hasocks.maxconn*`); unset ones are derived from
    /// the descriptor limit.
    pub admission: AdmissionCaps,
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
    /// Ours: `hasocks.admin: ADDR port = N`: the admin HTTP listener (metrics, status page,
    /// health); None = off.
    pub admin: Option<Internal>,
    /// Ours: `hasocks.proxyprotocol.from: NET ...`: peers allowed to send a PROXY v1/v2
    /// header first; from them the header is required and its source is the client address.
    pub proxy_from: Vec<IpNet>,
    /// Remarks for the operator (harmless ignored keywords, no socksmethod, ...).
    pub warnings: Vec<ConfWarning>,
    /// Every method word in the file (global and in rules), in file order: where a method
    /// that needs a run-time library is refused when that library is missing.
    pub method_uses: Vec<MethodUse>,
    /// `route { }` blocks and `route.*` settings (server chaining).
    pub routing: super::Routing,
}

impl SockdConfig {
    /// The config as its printed form keeps it: source lines, warnings and method positions
    /// dropped. A config and the parse of its printing are equal in this form (what the
    /// round-trip tests and the fuzz target compare).
    pub fn without_positions(mut self) -> SockdConfig {
        self.warnings.clear();
        self.method_uses.clear();
        self.internals.iter_mut().for_each(|i| i.line = 0);
        self.client_rules
            .iter_mut()
            .chain(self.socks_rules.iter_mut())
            .for_each(|r| r.line = 0);
        self.routing.routes.iter_mut().for_each(|r| r.line = 0);
        self
    }
}

/// Ours: `hasocks.maxconn: N` (connections at most), `hasocks.maxconn.negotiating: N` (of
/// those, still negotiating at most) and `hasocks.maxconn.negotiating.source: N` (still
/// negotiating from one address at most; 0 = no limit). None = derived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmissionCaps {
    /// `hasocks.maxconn`.
    pub total: Option<u32>,
    /// `hasocks.maxconn.negotiating`.
    pub negotiating: Option<u32>,
    /// `hasocks.maxconn.negotiating.source`.
    pub negotiating_per_source: Option<u32>,
}

/// One method word and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodUse {
    /// The method.
    pub method: Method,
    /// The file it is in.
    pub file: std::path::PathBuf,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
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

/// An authentication method name, as written in `socksmethod:` / `clientmethod:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `none`: no authentication (wire method 0x00).
    None,
    /// `username`: RFC 1929 checked against the system's shadow database (getspnam + crypt).
    Username,
    /// `pam.any`: PAM with whatever the client gives (a name and password, or nothing).
    PamAny,
    /// `pam.address`: PAM on the client address alone (user "rhostusr", empty password)
    /// unless the client sends a name and password.
    PamAddress,
    /// `pam.username`: RFC 1929 checked by PAM.
    PamUsername,
    /// Ours: `hasocks.passwordfile`: RFC 1929 checked against the htpasswd file named by the
    /// `hasocks.passwordfile:` setting (no system accounts needed).
    PasswordFile,
    /// Ours: `hasocks.socks4userid`: a SOCKS4 request's USERID, unverified, is the session's
    /// user name (for `user:` rules). SOCKS4 only; SOCKS5 clients never get it.
    Socks4UserId,
    /// `gssapi`: GSS-API (Kerberos) authentication, RFC 1961 (wire method 0x01); the
    /// client's principal (`alice@EXAMPLE.COM`) is the user name.
    Gssapi,
}

impl Method {
    /// The word as written in a config and in log prefixes (`username%alice@...`).
    pub fn word(self) -> &'static str {
        match self {
            Method::None => "none",
            Method::Username => "username",
            Method::PamAny => "pam.any",
            Method::PamAddress => "pam.address",
            Method::PamUsername => "pam.username",
            Method::PasswordFile => "hasocks.passwordfile",
            Method::Socks4UserId => "hasocks.socks4userid",
            Method::Gssapi => "gssapi",
        }
    }

    /// Whether a session authenticated by this method can be depended on to have a user
    /// name (Dante's `methodcanprovide()`): what `user:`/`group:` rules need.
    pub fn provides_name(self) -> bool {
        matches!(
            self,
            Method::Username
                | Method::PamUsername
                | Method::PasswordFile
                | Method::Socks4UserId
                | Method::Gssapi
        )
    }

    /// Whether this method checks a password with PAM.
    pub fn is_pam(self) -> bool {
        matches!(
            self,
            Method::PamAny | Method::PamAddress | Method::PamUsername
        )
    }

    /// Whether the method can be a `clientmethod:` (decided before any SOCKS byte is read).
    pub fn is_client_method(self) -> bool {
        matches!(self, Method::None | Method::PamAny | Method::PamAddress)
    }
}

/// `session.state.key:` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateKey {
    /// `from`: the client's IP address.
    From,
}

/// `N/S`: at most N new sessions per window of S seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Throttle {
    /// Sessions per window (> 0).
    pub sessions: u32,
    /// Window length in seconds (> 0).
    pub seconds: u32,
}

/// A rule's `session.*` and `bandwidth:` limits (Dante 1.4 semantics; rule-level only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Limits {
    /// `session.max`: concurrent sessions matching the rule, all clients together.
    pub max: Option<u32>,
    /// `session.throttle: N/S`.
    pub throttle: Option<Throttle>,
    /// `session.state.key`.
    pub state_key: Option<StateKey>,
    /// `session.state.max`: concurrent sessions per key.
    pub state_max: Option<u32>,
    /// `session.state.throttle: N/S` per key.
    pub state_throttle: Option<Throttle>,
    /// `bandwidth: BYTES_PER_SECOND`, shared by the sessions matching the rule (ours: a
    /// licensed module in Dante).
    pub bandwidth: Option<u64>,
}

impl Limits {
    /// Whether the rule sets any limit.
    pub fn any(&self) -> bool {
        *self != Limits::default()
    }
}

/// A rule's authentication items.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct RuleAuth {
    /// `clientmethod:` in a rule; empty = the global list.
    pub clientmethods: Vec<Method>,
    /// `user:` names (the list runs to the end of its line).
    pub users: Vec<String>,
    /// `group:` names (the list runs to the end of its line).
    pub groups: Vec<String>,
    /// `pam.servicename:` in the rule; None = the global one.
    pub pam_servicename: Option<String>,
    /// `gssapi.*` in the rule; each unset one is the global one.
    pub gssapi: Gssapi,
}

/// Dante's default `gssapi.servicename`.
pub const DEFAULT_GSSAPI_SERVICE: &str = "rcmd";
/// Dante's default `gssapi.keytab` (Debian's build).
pub const DEFAULT_GSSAPI_KEYTAB: &str = "FILE:/etc/danted.keytab";

/// The `gssapi.*` settings of the config or of one rule (None = not set there).
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct Gssapi {
    /// `gssapi.servicename:` (`rcmd`, or a whole principal `rcmd/host@REALM`).
    pub servicename: Option<String>,
    /// `gssapi.keytab:` (`FILE:/etc/danted.keytab`).
    pub keytab: Option<String>,
    /// `gssapi.enctype:`.
    pub enctype: Option<GssEnctypes>,
}

impl Gssapi {
    /// These settings where set, else `outer`'s (a rule's over the global ones).
    pub fn or(&self, outer: &Gssapi) -> Gssapi {
        Gssapi {
            servicename: self
                .servicename
                .clone()
                .or_else(|| outer.servicename.clone()),
            keytab: self.keytab.clone().or_else(|| outer.keytab.clone()),
            enctype: self.enctype.or(outer.enctype),
        }
    }

    /// Whether none is set.
    pub fn is_empty(&self) -> bool {
        *self == Gssapi::default()
    }
}

/// The protection levels `gssapi.enctype:` allows after GSS-API authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GssEnctypes {
    /// `clear`: no per-message protection (not in RFC 1961; what curl asks for).
    pub clear: bool,
    /// `integrity`: every message signed.
    pub integrity: bool,
    /// `confidentiality`: every message signed and encrypted.
    pub confidentiality: bool,
}

impl Default for GssEnctypes {
    /// Dante's default: whatever the client offers except clear.
    fn default() -> Self {
        GssEnctypes {
            clear: false,
            integrity: true,
            confidentiality: true,
        }
    }
}

impl GssEnctypes {
    /// The words, in Dante's order.
    pub fn words(&self) -> Vec<&'static str> {
        [
            (self.clear, "clear"),
            (self.integrity, "integrity"),
            (self.confidentiality, "confidentiality"),
        ]
        .into_iter()
        .filter_map(|(on, w)| on.then_some(w))
        .collect()
    }
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
    /// the leading dot, lower-case. Dante's `.` alone (stored empty) matches every name.
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
    /// `clientmethod:`, `user:`, `group:`, `pam.servicename:`.
    pub auth: RuleAuth,
    /// `session.*` and `bandwidth:`.
    pub limits: Limits,
}

impl Rule {
    /// A rule at `line` with `verdict` and nothing else: `0/0` to `0/0`, every command,
    /// no items.
    pub fn new(line: u32, verdict: Verdict) -> Rule {
        Rule {
            line,
            verdict,
            from: Endpoint::any(),
            to: Endpoint::any(),
            commands: Vec::new(),
            protocols: Vec::new(),
            proxyprotocols: Vec::new(),
            socksmethods: Vec::new(),
            log: LogFlags::default(),
            timeouts: RuleTimeouts::default(),
            udp_portrange: None,
            auth: RuleAuth::default(),
            limits: Limits::default(),
        }
    }
}

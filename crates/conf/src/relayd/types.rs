//! The typed form of a relayd.conf: what the relay runs from.

use std::path::PathBuf;

use crate::ConfWarning;

/// A whole relayd.conf after macro expansion and includes.
#[derive(Debug, Clone, PartialEq)]
pub struct RelaydConfig {
    /// Global `interval` in seconds (default 10).
    pub interval_s: u32,
    /// Global check `timeout` in milliseconds (default 200).
    pub timeout_ms: u32,
    /// `log state changes` (default on) / `log host checks`.
    pub log_host_checks: bool,
    /// `log connection` / `log connection errors`.
    pub log_connections: LogConnections,
    /// `socket "path"` for the control socket (default /var/run/relayd.sock is NOT assumed:
    /// None means the relay picks its own default).
    pub socket: Option<PathBuf>,
    /// `prefork N`: the relay's worker-thread count (default: one per CPU).
    pub prefork: Option<u32>,
    /// Ours: `hasocks.admin listen on ADDR port P`: the admin HTTP listener (metrics, status
    /// page, health); None = off.
    pub admin: Option<Listen>,
    /// Ours: `hasocks.maxconn N`: concurrent sessions at most, over all relays (at the cap the
    /// relay stops accepting); None = derived from the descriptor limit.
    pub max_sessions: Option<u32>,
    /// Ours: `hasocks.maxconn.source N`: concurrent connections from one client address at
    /// most (0 = no limit); None = a quarter of the global cap.
    pub max_sessions_per_source: Option<u32>,
    /// Ours: `hasocks.timeout.firstbyte S` (global): seconds a client may take to send its
    /// first byte before it is closed, without a host ever being contacted; 0 = off (connect
    /// at once, for protocols where the server speaks first). Default 30.
    pub first_byte_timeout_s: u32,
    /// Ours: `hasocks.freebind yes|no` (default yes): a `listen on` address that is not on
    /// this machine (yet: the shared address of a VRRP pair on the backup) is bound with
    /// IP_FREEBIND instead of being an error.
    pub freebind: bool,
    /// Ours: `hasocks.tcp.keepalive S` (default 60; 0 = off): TCP keepalive on client
    /// connections, idle S seconds, then 4 probes S/4 apart. It ends sessions whose client
    /// is gone without a word (a failover moved the shared address away, a link died), which
    /// `session timeout 0` would otherwise keep, with their UDP associations, for ever.
    pub tcp_keepalive_s: u32,
    /// Tables in file order.
    pub tables: Vec<Table>,
    /// `protocol NAME { tcp { ... } }` blocks in file order (TCP ones only: layer 7
    /// protocols are refused).
    pub protocols: Vec<Protocol>,
    /// Relays in file order.
    pub relays: Vec<Relay>,
    /// Redirects in file order (the kernel data path).
    pub redirects: Vec<Redirect>,
    /// Ours: `hasocks.redirect.on-exit flush|keep` (default flush): whether a clean stop
    /// removes the redirects' nftables table, or leaves the kernel forwarding with the last
    /// map.
    pub redirect_keep_on_exit: bool,
    /// Remarks for the operator.
    pub warnings: Vec<ConfWarning>,
}

/// `log connection` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogConnections {
    /// Not logged.
    #[default]
    Off,
    /// Every connection.
    All,
    /// Only failed ones.
    Errors,
}

/// `table <name> [disable] { hosts }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Name without the angle brackets.
    pub name: String,
    /// `disable` given.
    pub disabled: bool,
    /// Hosts in file order; at least one.
    pub hosts: Vec<HostEntry>,
    /// Global `interval` as it stood when the table was defined (relayd semantics).
    pub interval_s: u32,
    /// Global `timeout` as it stood when the table was defined.
    pub timeout_ms: u32,
    /// 1-based line of the `table` keyword.
    pub line: u32,
}

/// One host of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// As written (address, host name, macro value): also the name shown in logs and ctl,
    /// and the argument of a check script.
    pub name: String,
    /// Ours: `port N` after the host, overriding the `forward to` port.
    pub port: Option<u16>,
    /// `retry N` (default 0).
    pub retry: u32,
    /// 1-based line.
    pub line: u32,
}

/// `relay "name" { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Relay {
    /// Name without quotes.
    pub name: String,
    /// `listen on ADDR port P` lines (at least one).
    pub listens: Vec<Listen>,
    /// `forward to <table> ...` lines; later ones are backups.
    pub forwards: Vec<Forward>,
    /// `session timeout S`: inactivity timeout in seconds; default 600; 0 = never.
    pub session_timeout_s: u32,
    /// `disable` given.
    pub disabled: bool,
    /// Ours: `send proxy-v2` inside the relay block: send a PROXY v2 header to backends.
    pub send_proxy_v2: bool,
    /// Ours: `hasocks.timeout.firstbyte S` inside the relay block (else the global one).
    pub first_byte_timeout_s: Option<u32>,
    /// `protocol NAME`: the protocol block named, if any.
    pub protocol: Option<String>,
    /// The TCP options of that protocol (all unset without one), copied here so that the
    /// relay needs no lookup.
    pub tcp: TcpOptions,
    /// 1-based line of the `relay` keyword.
    pub line: u32,
}

/// `[tcp] protocol NAME { tcp { ... } }`: a TCP protocol block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    /// Name without quotes.
    pub name: String,
    /// Its `tcp` options.
    pub tcp: TcpOptions,
    /// 1-based line of the `protocol` (or `tcp`) keyword.
    pub line: u32,
}

/// relayd's `tcp` options of a protocol; None = not given (the system's or hasocks' default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpOptions {
    /// `backlog N`: the listen(2) backlog of the relay's listeners (hasocks' default 1024).
    pub backlog: Option<u32>,
    /// `nodelay` / `no nodelay`: TCP_NODELAY on both sockets of a session (hasocks' default
    /// is on).
    pub nodelay: Option<bool>,
    /// `socket buffer N`: SO_SNDBUF and SO_RCVBUF in bytes on both sockets.
    pub socket_buffer: Option<u32>,
    /// `no splice`: false = copy through user space only; true (default) = splice(2) allowed.
    pub splice: bool,
    /// `ip ttl N`: IP_TTL (IPv6: unicast hops) on both sockets.
    pub ip_ttl: Option<u8>,
    /// `ip minttl N`: IP_MINTTL (RFC 5082, GTSM) on both sockets (IPv4 only).
    pub ip_minttl: Option<u8>,
}

impl Default for TcpOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TcpOptions {
    /// No option given: relayd's and hasocks' defaults.
    pub const DEFAULT: TcpOptions = TcpOptions {
        backlog: None,
        nodelay: None,
        socket_buffer: None,
        splice: true,
        ip_ttl: None,
        ip_minttl: None,
    };
}

/// `redirect "name" { ... }`: relayd's layer 3 redirection, done by the kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct Redirect {
    /// Name without quotes.
    pub name: String,
    /// `listen on ADDR port P [interface IF]` lines (at least one).
    pub listens: Vec<RedirectListen>,
    /// `forward to <table> ...` lines; later ones are backups.
    pub forwards: Vec<Forward>,
    /// `sticky-address`: a client keeps its host (placement by source address buckets).
    pub sticky: bool,
    /// `session timeout S` (default 600): conntrack forgets an established flow idle that
    /// long (0: as long as conntrack can).
    pub session_timeout_s: u32,
    /// `disable` given.
    pub disabled: bool,
    /// `file:line:col` of the `redirect` keyword, for errors found when it is put into effect.
    pub at: String,
    /// 1-based line of the `redirect` keyword.
    pub line: u32,
}

/// A redirect's `listen on` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectListen {
    /// Address and port.
    pub listen: Listen,
    /// `interface IF`.
    pub interface: Option<String>,
}

/// A `listen on` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Address or host name as written (after macro expansion).
    pub addr: String,
    /// Port.
    pub port: u16,
}

/// A `forward to <table>` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    /// The table name (without brackets).
    pub table: String,
    /// `port P`; default: the first `listen on` port.
    pub port: u16,
    /// `mode ...`; default round robin.
    pub mode: Mode,
    /// `check ...`; None = no check (hosts are always up).
    pub check: Option<Check>,
    /// `timeout ms` for checks (default: the table's).
    pub timeout_ms: Option<u32>,
    /// `interval s` for checks (default: the table's).
    pub interval_s: Option<u32>,
    /// 1-based line.
    pub line: u32,
}

/// A 128-bit hash key: `0x` + 32 hex digits, or a string (hashed to 16 bytes).
pub type HashKey = [u8; 16];

/// Scheduling modes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mode {
    /// `roundrobin` (default).
    #[default]
    RoundRobin,
    /// `random`.
    Random,
    /// `loadbalance [key]`: client IP (no port) + relay listen address and port.
    LoadBalance(Option<HashKey>),
    /// `source-hash [key]`: client IP alone.
    SourceHash(Option<HashKey>),
    /// `hash [key]`: relay listen address and port only.
    Hash(Option<HashKey>),
    /// `least-states`: fewest open sessions.
    LeastStates,
}

/// Health checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `check tcp`.
    Tcp,
    /// `check send "data" expect "glob"` (empty data or `nothing`: send nothing).
    Send {
        /// Bytes to send (may be empty).
        send: Vec<u8>,
        /// Shell glob matched against what is read.
        expect: String,
    },
    /// `check binary send "hex" expect "hex"`.
    Binary {
        /// Bytes to send.
        send: Vec<u8>,
        /// Bytes expected (prefix compare).
        expect: Vec<u8>,
    },
    /// `check script "path"`.
    Script(PathBuf),
    /// Ours: `check socks [connect ADDR port P] [user "u" password "p"]`.
    Socks {
        /// Target to CONNECT to; None = the relay listens on an ephemeral port of its own.
        target: Option<(String, u16)>,
        /// RFC 1929 credentials.
        auth: Option<(String, String)>,
    },
    /// Ours: `check socks hasocks.gssapi keytab "K" principal "P" [service "S"]`: the
    /// socks check through the relay's own listener, authenticated with GSS-API (RFC 1961) as
    /// the keytab's principal, its data encapsulated at the integrity level.
    SocksGssapi {
        /// Who the check authenticates as.
        gssapi: GssapiCheck,
    },
}

/// The credentials of a `check socks ... hasocks.gssapi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GssapiCheck {
    /// `keytab "FILE:/etc/hasocks/probe.keytab"`: the client keytab.
    pub keytab: String,
    /// `principal "probe@EXAMPLE.COM"`: the principal whose key it holds.
    pub principal: String,
    /// `service "rcmd@proxy.example.com"`: the servers' service; None = `rcmd@` and the host
    /// as the table names it.
    pub service: Option<String>,
}

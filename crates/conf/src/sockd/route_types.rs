//! The typed form of `route { }` blocks and the settings about them (server chaining).

use super::{Command, Endpoint, HostSpec, Method, Protocol};

/// The `route { }` blocks and the settings about them (server chaining).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// `route { }` blocks, file order.
    pub routes: Vec<Route>,
    /// `route.maxfail:` failures in a row before an upstream is marked bad (default 1;
    /// 0 = never marked by failures).
    pub maxfail: u32,
    /// `route.badexpire:` seconds a bad mark lasts (default 300; 0 = until a health check
    /// passes or the config is reloaded).
    pub badexpire: u32,
    /// Ours: `hasocks.route.select:` the order in which a group's upstreams are tried.
    pub select: RouteSelect,
    /// Ours: `hasocks.route.timeout:` seconds one upstream may take to connect and answer
    /// its handshake before the next one of the group is tried (default 5; 0 = only
    /// `timeout.connect` bounds it).
    pub timeout: u32,
    /// Ours: `hasocks.route.check.interval:` seconds between active end-to-end checks of
    /// every upstream (default 0 = no active checks).
    pub check_interval: u32,
}

/// Dante's `route.maxfail` default.
pub const DEFAULT_ROUTE_MAXFAIL: u32 = 1;
/// Dante's `route.badexpire` default.
pub const DEFAULT_ROUTE_BADEXPIRE: u32 = 300;
/// The default of `hasocks.route.timeout`.
pub const DEFAULT_ROUTE_TIMEOUT: u32 = 5;

impl Default for Routing {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            maxfail: DEFAULT_ROUTE_MAXFAIL,
            badexpire: DEFAULT_ROUTE_BADEXPIRE,
            select: RouteSelect::Failover,
            timeout: DEFAULT_ROUTE_TIMEOUT,
            check_interval: 0,
        }
    }
}

/// `hasocks.route.select:` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouteSelect {
    /// `failover`: the group's routes in file order, the first healthy one (Dante's).
    #[default]
    Failover,
    /// `source-hash`: by rendezvous hashing of the client's address (as the relay's
    /// `source-hash`), so a client keeps its upstream while that upstream is healthy.
    SourceHash,
}

/// One `route { }` block: requests it matches go through `via`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// 1-based line of the `route` keyword.
    pub line: u32,
    /// `from:`; default `0/0`.
    pub from: Endpoint,
    /// `to:`; default `0/0`.
    pub to: Endpoint,
    /// `via:`: the upstream proxy, or `direct`.
    pub via: Via,
    /// `command:` as written; empty = every command the upstream's protocol carries.
    pub commands: Vec<Command>,
    /// `protocol:` as written; empty = both.
    pub protocols: Vec<Protocol>,
    /// `proxyprotocol:` as written; empty = `socks_v4 socks_v5` (Dante's default).
    pub proxyprotocols: Vec<ProxyProtocol>,
    /// `method:` / `socksmethod:` offered to the upstream (`none`, `username`) as written;
    /// empty = `none`.
    pub methods: Vec<Method>,
}

impl Route {
    /// The protocol the server speaks to this route's upstream: SOCKS5 when the route
    /// allows it (it carries every command and authentication), else SOCKS4, else HTTP.
    pub fn upstream_protocol(&self) -> ProxyProtocol {
        let allows = |p| self.proxyprotocols.is_empty() || self.proxyprotocols.contains(&p);
        if allows(ProxyProtocol::SocksV5) {
            ProxyProtocol::SocksV5
        } else if allows(ProxyProtocol::SocksV4) {
            ProxyProtocol::SocksV4
        } else {
            ProxyProtocol::Http
        }
    }

    /// The commands this route is chosen for: those written (or every one), less what its
    /// upstream protocol cannot carry (HTTP: CONNECT; SOCKS4: CONNECT and BIND, which
    /// hasocks chains through SOCKS5 only, so CONNECT) and, with `protocol:`, only those of
    /// the protocols written.
    pub fn effective_commands(&self) -> Vec<Command> {
        let all = [Command::Connect, Command::Bind, Command::UdpAssociate];
        let carried: &[Command] = match (&self.via, self.upstream_protocol()) {
            (Via::Direct, _) | (_, ProxyProtocol::SocksV5) => &all,
            _ => &[Command::Connect],
        };
        all.iter()
            .copied()
            .filter(|c| self.commands.is_empty() || self.commands.contains(c))
            .filter(|c| carried.contains(c))
            .filter(|c| {
                let p = if *c == Command::UdpAssociate {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                };
                self.protocols.is_empty() || self.protocols.contains(&p)
            })
            .collect()
    }
}

/// `via:` of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// `direct`: matching requests go out directly, not through a proxy.
    Direct,
    /// An upstream proxy: an address or host name, and its port (default 1080).
    Proxy(HostSpec, u16),
}

/// `proxyprotocol:` values of a route: what the upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyProtocol {
    /// `socks_v4`.
    SocksV4,
    /// `socks_v5`.
    SocksV5,
    /// `http`: HTTP CONNECT (RFC 9110), CONNECT requests only.
    Http,
}

impl ProxyProtocol {
    /// The word as written in a config.
    pub fn word(self) -> &'static str {
        match self {
            ProxyProtocol::SocksV4 => "socks_v4",
            ProxyProtocol::SocksV5 => "socks_v5",
            ProxyProtocol::Http => "http",
        }
    }
}

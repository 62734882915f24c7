//! The server's working state built from a parsed sockd.conf: names resolved, rules compiled,
//! log destinations opened. Swapped whole on SIGHUP; sessions keep the one they started with.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use hasocks_conf::sockd::{HostSpec, Method, Rotation, SockdConfig, Timeouts, DEFAULT_PAM_SERVICE};
use ipnet::IpNet;

use crate::limits::Registry;
use crate::logger::{Level, Logger};
use crate::rules::{AuthDefaults, CompiledRule};
use crate::session::auth::passwordfile::PasswordFile;
use crate::session::auth::{Db, SystemKind, Verifier};

/// What outlives config generations: the password checker (its caps, success cache and
/// counters), the limit states of rules, the last good password file.
#[derive(Default)]
pub struct Shared {
    /// Every password check goes through it.
    pub verifier: Verifier,
    /// Per-rule `session.*`/`bandwidth:` states.
    pub limits: Registry,
    /// The password file as last read, kept when a reload cannot read it.
    password_file: std::sync::Mutex<Option<Arc<PasswordFile>>>,
    /// Upstream health and route counters, by key.
    pub routes: crate::route::health::Registry,
}

/// Everything a session needs to decide and act, immutable once built.
pub struct Generation {
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
    /// Global `socksmethod:`, in order of preference.
    pub socksmethods: Vec<Method>,
    /// Global `pam.servicename:` (default `sockd`).
    pub pam_service: String,
    /// The `hasocks.passwordfile:` file, loaded.
    pub password_file: Option<Arc<PasswordFile>>,
    /// Whether the methods name exactly one password database: then, as in Dante, RFC 1929
    /// credentials are checked at once (`01 01` and close when wrong); with several, the
    /// client gets `01 00` and the socks rule's method decides.
    pub single_password_db: bool,
    /// Long-lived state shared by every generation.
    pub shared: Arc<Shared>,
    /// Peers that must send a PROXY header.
    pub proxy_from: Vec<IpNet>,
    /// Address advertised in UDP ASSOCIATE replies, if configured.
    pub udp_advertise: Option<IpAddr>,
    /// `debug:` level.
    pub debug: u32,
    /// Log destinations.
    pub logger: Arc<Logger>,
    /// The `route { }` blocks, compiled.
    pub routes: crate::route::Routes,
}

/// Why a config generation could not be built (the running one then stays).
#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    /// An `internal:`, `external:` or `hasocks.admin:` host does not resolve.
    #[error("{keyword}: {source}")]
    Resolve {
        /// The keyword.
        keyword: &'static str,
        /// Why.
        source: ResolveError,
    },
    /// The password file cannot be read, and no earlier read of it is kept.
    #[error(transparent)]
    PasswordFile(#[from] crate::session::auth::passwordfile::LoadError),
    /// A log destination cannot be opened.
    #[error("log output: {0}")]
    Log(std::io::Error),
    /// A route cannot be put into effect.
    #[error(transparent)]
    Route(#[from] crate::route::RouteError),
}

/// Why a host of the config has no address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// An interface without an address.
    #[error("interface {0} has no address")]
    NoAddress(String),
    /// Neither an interface nor a name that resolves.
    #[error("{0} is neither an interface nor a resolvable host name")]
    Unresolvable(String),
}

/// Why no source address fits an outgoing connection or socket.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// `same-same` with a target of the other family.
    #[error("external.rotation same-same: {internal} and {target} differ in family")]
    Family {
        /// The address the client reached.
        internal: IpAddr,
        /// The target.
        target: IpAddr,
    },
    /// No `external:` address of the target's family.
    #[error("no external address of the family of {0}")]
    NoExternal(IpAddr),
    /// The kernel has no route (`route`, or a BIND without externals).
    #[error("external.rotation route: no route to {dst}: {source}")]
    NoRoute {
        /// The destination.
        dst: IpAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Resolves an `internal:`/`external:` host: an interface's addresses, an IP, or a host name.
pub fn resolve_host(spec: &HostSpec) -> Result<Vec<IpAddr>, ResolveError> {
    match spec {
        HostSpec::Ip(ip) => Ok(vec![*ip]),
        HostSpec::Name(name) => {
            if let Ok(Some(addrs)) = hasocks_net::sock::interface_addrs(name) {
                if addrs.is_empty() {
                    return Err(ResolveError::NoAddress(name.clone()));
                }
                return Ok(addrs);
            }
            resolve_name(name).ok_or_else(|| ResolveError::Unresolvable(name.clone()))
        }
    }
}

fn resolve_name(name: &str) -> Option<Vec<IpAddr>> {
    let addrs: Vec<IpAddr> = (name, 0).to_socket_addrs().ok()?.map(|a| a.ip()).collect();
    (!addrs.is_empty()).then_some(addrs)
}

fn resolve_rule_name(name: &str) -> Vec<IpAddr> {
    match hasocks_net::sock::interface_addrs(name) {
        Ok(Some(addrs)) => addrs,
        _ => resolve_name(name).unwrap_or_default(),
    }
}

impl Generation {
    /// Builds the working state with fresh long-lived state. Blocking (name resolution).
    pub fn build(cfg: &SockdConfig, logger: Arc<Logger>) -> Result<Self, GenerationError> {
        Self::build_with(cfg, logger, &Arc::default())
    }

    /// Builds the working state of a new generation beside `shared`, which it keeps: limit
    /// states of unchanged rules, counters, the password file if it cannot be read now.
    /// Blocking (name resolution, reading the password file).
    pub fn build_with(
        cfg: &SockdConfig,
        logger: Arc<Logger>,
        shared: &Arc<Shared>,
    ) -> Result<Self, GenerationError> {
        let mut externals = Vec::new();
        for e in &cfg.externals {
            externals.extend(resolve_host(e).map_err(|source| GenerationError::Resolve {
                keyword: "external",
                source,
            })?);
        }
        let password_file = match &cfg.password_file {
            Some(p) => Some(shared.load_password_file(p, &logger)?),
            None => None,
        };
        let pam_service = cfg
            .pam_servicename
            .clone()
            .unwrap_or_else(|| DEFAULT_PAM_SERVICE.to_string());
        let defaults = AuthDefaults {
            socksmethods: cfg.socksmethods.clone(),
            clientmethods: cfg.clientmethods.clone(),
            pam_service: pam_service.clone(),
            gssapi: cfg.gssapi.clone(),
        };
        let mut keys = Vec::new();
        let mut compile = |kind: &str, rules: &[hasocks_conf::sockd::Rule]| {
            let mut seen: Vec<String> = Vec::new();
            rules
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let mut c = CompiledRule::compile(i + 1, r, &resolve_rule_name, &defaults);
                    if r.limits.any() {
                        // Identity: kind, canonical text (no line numbers), and which copy
                        // of that text it is.
                        let text = format!("{kind} {r}");
                        let copy = seen.iter().filter(|t| **t == text).count();
                        seen.push(text.clone());
                        let key = format!("{copy} {text}");
                        c.limits = Some(shared.limits.get(&key, r.limits));
                        keys.push(key);
                    }
                    c
                })
                .collect::<Vec<_>>()
        };
        let routes = crate::route::Routes::build(cfg, &shared.routes, &resolve_rule_name)?;
        let client_rules = compile("client", &cfg.client_rules);
        let socks_rules = compile("socks", &cfg.socks_rules);
        shared.limits.retain(&keys);
        let ttl = cfg
            .auth_cache
            .map_or(crate::session::auth::cache::TTL, |s| {
                Duration::from_secs(u64::from(s))
            });
        shared.verifier.reset_cache(ttl);
        let single_password_db = password_dbs(cfg, &pam_service) == 1;
        Ok(Self {
            client_rules,
            socks_rules,
            default_rule: CompiledRule::default_block(),
            externals,
            rotation: cfg.external_rotation,
            timeouts: cfg.timeouts,
            socksmethods: cfg.socksmethods.clone(),
            pam_service,
            password_file,
            single_password_db,
            shared: shared.clone(),
            proxy_from: cfg.proxy_from.clone(),
            udp_advertise: cfg.udp_advertise,
            debug: cfg.debug,
            logger,
            routes,
        })
    }

    /// Where `method` checks passwords under a rule whose PAM service is `service`; None
    /// for methods without a password.
    pub fn db(&self, method: Method, service: &str) -> Option<Db> {
        match method {
            Method::Username => Some(Db::System(SystemKind::Shadow)),
            Method::PamAny | Method::PamAddress | Method::PamUsername => {
                Some(Db::System(SystemKind::Pam {
                    service: service.to_string(),
                }))
            }
            Method::PasswordFile => self.password_file.clone().map(Db::File),
            Method::None | Method::Socks4UserId | Method::Gssapi => None,
        }
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
    ) -> Result<Option<IpAddr>, SourceError> {
        match self.rotation {
            Rotation::Route => Ok(None),
            Rotation::SameSame => {
                if internal.ip().is_ipv4() == target.is_ipv4() {
                    Ok(Some(internal.ip()))
                } else {
                    Err(SourceError::Family {
                        internal: internal.ip(),
                        target,
                    })
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
                    .ok_or(SourceError::NoExternal(target))
            }
        }
    }

    /// The external address to listen on for a BIND towards `dst`, per `external.rotation`
    /// (none: first external of the family; same-same: the internal address the client
    /// reached; route: the kernel's source towards `dst`). An unspecified `dst` (the client
    /// did not name its peer) and a `none` config without externals fall back to the route
    /// source, then to the internal address, so the reply never names 0.0.0.0.
    pub fn bind_source(&self, dst: IpAddr, internal: SocketAddr) -> Result<IpAddr, SourceError> {
        let route = || {
            if dst.is_unspecified() {
                return Ok(internal.ip());
            }
            hasocks_net::sock::route_source(dst)
                .map_err(|source| SourceError::NoRoute { dst, source })
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
    pub fn udp_source(&self, dst: IpAddr, internal: SocketAddr) -> Result<IpAddr, SourceError> {
        let any = match dst {
            IpAddr::V4(_) => IpAddr::from([0u8; 4]),
            IpAddr::V6(_) => IpAddr::from([0u16; 8]),
        };
        Ok(self.outgoing_source(dst, internal)?.unwrap_or(any))
    }
}

/// How many password databases the config's methods name: the shadow file, the password
/// file, and one per PAM service in use (global or set in a rule).
fn password_dbs(cfg: &SockdConfig, pam_service: &str) -> usize {
    let mut dbs: Vec<String> = Vec::new();
    let mut add = |d: String| {
        if !dbs.contains(&d) {
            dbs.push(d);
        }
    };
    for m in &cfg.socksmethods {
        match m {
            Method::Username => add("shadow".into()),
            Method::PasswordFile => add("file".into()),
            m if m.is_pam() => {
                add(format!("pam:{pam_service}"));
                for r in cfg.client_rules.iter().chain(&cfg.socks_rules) {
                    if let Some(s) = &r.auth.pam_servicename {
                        add(format!("pam:{s}"));
                    }
                }
            }
            _ => {}
        }
    }
    dbs.len()
}

impl Shared {
    /// Reads the password file; when it cannot be read but an earlier read of the same file
    /// succeeded (say the server dropped privileges since), keeps that one and says so.
    fn load_password_file(
        &self,
        path: &std::path::Path,
        logger: &Logger,
    ) -> Result<Arc<PasswordFile>, GenerationError> {
        let mut last = self.password_file.lock().unwrap_or_else(|p| p.into_inner());
        match PasswordFile::load(path) {
            Ok(f) => {
                let f = Arc::new(f);
                *last = Some(f.clone());
                Ok(f)
            }
            Err(e) => match last.as_ref().filter(|f| f.path() == path) {
                Some(old) => {
                    logger.log(
                        Level::Error,
                        &format!(
                            "{e}; keeping the password file read before ({} users)",
                            old.len()
                        ),
                    );
                    Ok(old.clone())
                }
                None => Err(e.into()),
            },
        }
    }
}

/// Seconds to a Duration where 0 means "none".
pub fn secs(s: u32) -> Option<Duration> {
    (s > 0).then(|| Duration::from_secs(u64::from(s)))
}

//! Canonical sockd.conf text for a config: what `parse` reads back to an equal config
//! (source line numbers and warnings aside).

use std::fmt::{self, Display, Formatter, Write};

use super::{
    AddrSpec, Command, Endpoint, HostSpec, LogTarget, Method, PortOp, PortSpec, Protocol, Rotation,
    Route, RouteSelect, Routing, Rule, SockdConfig, SocksVersion, Verdict, Via,
};

impl Display for HostSpec {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            HostSpec::Ip(ip) => write!(f, "{ip}"),
            HostSpec::Name(n) => f.write_str(n),
        }
    }
}

impl Display for LogTarget {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            LogTarget::Stderr => f.write_str("stderr"),
            LogTarget::Stdout => f.write_str("stdout"),
            LogTarget::Syslog(fac) => write!(f, "syslog/{fac}"),
            LogTarget::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl Display for Method {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

impl Display for AddrSpec {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            AddrSpec::Any => f.write_str("0/0"),
            AddrSpec::Net(n) => write!(f, "{n}"),
            AddrSpec::Domain(d) => write!(f, ".{d}"),
            AddrSpec::Name(n) => f.write_str(n),
        }
    }
}

impl Display for Endpoint {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)?;
        match self.port {
            PortSpec::Any => Ok(()),
            PortSpec::Range(a, b) => write!(f, " port {a} - {b}"),
            PortSpec::Op(op, n) => {
                let op = match op {
                    PortOp::Eq => "=",
                    PortOp::Neq => "!=",
                    PortOp::Ge => ">=",
                    PortOp::Le => "<=",
                    PortOp::Gt => ">",
                    PortOp::Lt => "<",
                };
                write!(f, " port {op} {n}")
            }
        }
    }
}

/// Writes `key: v1 v2 ...` when the list is not empty.
fn list<T: Display>(f: &mut impl Write, indent: &str, key: &str, items: &[T]) -> fmt::Result {
    if items.is_empty() {
        return Ok(());
    }
    write!(f, "{indent}{key}:")?;
    for i in items {
        write!(f, " {i}")?;
    }
    writeln!(f)
}

/// The words of a command list.
fn command_words(cmds: &[Command]) -> Vec<&'static str> {
    cmds.iter()
        .map(|c| match c {
            Command::Connect => "connect",
            Command::Bind => "bind",
            Command::UdpAssociate => "udpassociate",
            Command::BindReply => "bindreply",
            Command::UdpReply => "udpreply",
        })
        .collect()
}

/// The words of a protocol list.
fn protocol_words(protos: &[Protocol]) -> Vec<&'static str> {
    protos
        .iter()
        .map(|p| match p {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
        .collect()
}

impl Display for Via {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Via::Direct => f.write_str("direct"),
            Via::Proxy(host, port) => write!(f, "{host} port = {port}"),
        }
    }
}

impl Display for Route {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "route {{")?;
        let ind = "        ";
        writeln!(
            f,
            "{ind}from: {} to: {} via: {}",
            self.from, self.to, self.via
        )?;
        list(f, ind, "command", &command_words(&self.commands))?;
        list(f, ind, "protocol", &protocol_words(&self.protocols))?;
        let pp: Vec<&str> = self.proxyprotocols.iter().map(|p| p.word()).collect();
        list(f, ind, "proxyprotocol", &pp)?;
        list(f, ind, "method", &self.methods)?;
        f.write_str("}\n")
    }
}

impl Routing {
    /// The `route.*` and `hasocks.route.*` settings that differ from their defaults.
    fn fmt_settings(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let d = Routing::default();
        for (kw, v, dv) in [
            ("route.maxfail", self.maxfail, d.maxfail),
            ("route.badexpire", self.badexpire, d.badexpire),
            ("hasocks.route.timeout", self.timeout, d.timeout),
            (
                "hasocks.route.check.interval",
                self.check_interval,
                d.check_interval,
            ),
        ] {
            if v != dv {
                writeln!(f, "{kw}: {v}")?;
            }
        }
        if self.select == RouteSelect::SourceHash {
            writeln!(f, "hasocks.route.select: source-hash")?;
        }
        Ok(())
    }
}

impl Display for Rule {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let verdict = match self.verdict {
            Verdict::Pass => "pass",
            Verdict::Block => "block",
        };
        writeln!(f, "{verdict} {{")?;
        let ind = "        ";
        writeln!(f, "{ind}from: {} to: {}", self.from, self.to)?;
        list(f, ind, "command", &command_words(&self.commands))?;
        list(f, ind, "protocol", &protocol_words(&self.protocols))?;
        let versions: Vec<&str> = self
            .proxyprotocols
            .iter()
            .map(|v| match v {
                SocksVersion::V4 => "socks_v4",
                SocksVersion::V5 => "socks_v5",
            })
            .collect();
        list(f, ind, "proxyprotocol", &versions)?;
        list(f, ind, "socksmethod", &self.socksmethods)?;
        let l = &self.log;
        let flags: Vec<&str> = [
            (l.connect, "connect"),
            (l.disconnect, "disconnect"),
            (l.data, "data"),
            (l.error, "error"),
            (l.iooperation, "iooperation"),
            (l.tcpinfo, "tcpinfo"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        list(f, ind, "log", &flags)?;
        let t = &self.timeouts;
        for (v, key) in [
            (t.negotiate, "timeout.negotiate"),
            (t.connect, "timeout.connect"),
            (t.io_tcp, "timeout.io.tcp"),
            (t.io_udp, "timeout.io.udp"),
        ] {
            if let Some(v) = v {
                writeln!(f, "{ind}{key}: {v}")?;
            }
        }
        if let Some((a, b)) = self.udp_portrange {
            writeln!(f, "{ind}udp.portrange: {a}-{b}")?;
        }
        let a = &self.auth;
        list(f, ind, "clientmethod", &a.clientmethods)?;
        // Name lists run to the end of their line: each gets a line of its own.
        list(f, ind, "user", &a.users)?;
        list(f, ind, "group", &a.groups)?;
        if let Some(s) = &a.pam_servicename {
            writeln!(f, "{ind}pam.servicename: {s}")?;
        }
        write_gssapi(f, ind, &a.gssapi)?;
        let l = &self.limits;
        if let Some(n) = l.max {
            writeln!(f, "{ind}session.max: {n}")?;
        }
        if let Some(t) = l.throttle {
            writeln!(f, "{ind}session.throttle: {}/{}", t.sessions, t.seconds)?;
        }
        if l.state_key.is_some() {
            writeln!(f, "{ind}session.state.key: from")?;
        }
        if let Some(n) = l.state_max {
            writeln!(f, "{ind}session.state.max: {n}")?;
        }
        if let Some(t) = l.state_throttle {
            writeln!(
                f,
                "{ind}session.state.throttle: {}/{}",
                t.sessions, t.seconds
            )?;
        }
        if let Some(n) = l.bandwidth {
            writeln!(f, "{ind}bandwidth: {n}")?;
        }
        f.write_str("}\n")
    }
}

impl Display for SockdConfig {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for i in &self.internals {
            writeln!(f, "internal: {} port = {}", i.host, i.port)?;
        }
        for e in &self.externals {
            writeln!(f, "external: {e}")?;
        }
        let rotation = match self.external_rotation {
            Rotation::None => "none",
            Rotation::SameSame => "same-same",
            Rotation::Route => "route",
        };
        writeln!(f, "external.rotation: {rotation}")?;
        list(f, "", "logoutput", &self.logoutput)?;
        list(f, "", "errorlog", &self.errorlog)?;
        list(f, "", "socksmethod", &self.socksmethods)?;
        list(f, "", "clientmethod", &self.clientmethods)?;
        if let Some(s) = &self.pam_servicename {
            writeln!(f, "pam.servicename: {s}")?;
        }
        write_gssapi(f, "", &self.gssapi)?;
        if let Some(p) = &self.password_file {
            writeln!(f, "hasocks.passwordfile: {}", p.display())?;
        }
        if let Some(p) = &self.socket {
            writeln!(f, "hasocks.socket: {}", p.display())?;
        }
        if let Some(n) = self.auth_cache {
            writeln!(f, "hasocks.auth.cache: {n}")?;
        }
        let a = &self.admission;
        for (kw, v) in [
            ("hasocks.maxconn", a.total),
            ("hasocks.maxconn.negotiating", a.negotiating),
            (
                "hasocks.maxconn.negotiating.source",
                a.negotiating_per_source,
            ),
        ] {
            if let Some(n) = v {
                writeln!(f, "{kw}: {n}")?;
            }
        }
        if let Some(u) = &self.user_privileged {
            writeln!(f, "user.privileged: {u}")?;
        }
        if let Some(u) = &self.user_unprivileged {
            writeln!(f, "user.unprivileged: {u}")?;
        }
        let t = &self.timeouts;
        writeln!(f, "timeout.negotiate: {}", t.negotiate)?;
        writeln!(f, "timeout.connect: {}", t.connect)?;
        writeln!(f, "timeout.io.tcp: {}", t.io_tcp)?;
        writeln!(f, "timeout.io.udp: {}", t.io_udp)?;
        writeln!(f, "debug: {}", self.debug)?;
        if let Some(ip) = self.udp_advertise {
            writeln!(f, "hasocks.udp.advertise: {ip}")?;
        }
        list(f, "", "hasocks.proxyprotocol.from", &self.proxy_from)?;
        if let Some(a) = &self.admin {
            writeln!(f, "hasocks.admin: {} port = {}", a.host, a.port)?;
        }
        self.routing.fmt_settings(f)?;
        for r in &self.client_rules {
            write!(f, "\nclient {r}")?;
        }
        for r in &self.socks_rules {
            write!(f, "\nsocks {r}")?;
        }
        for r in &self.routing.routes {
            write!(f, "\n{r}")?;
        }
        Ok(())
    }
}

/// The `gssapi.*` lines that are set.
fn write_gssapi(f: &mut Formatter<'_>, ind: &str, g: &super::Gssapi) -> fmt::Result {
    if let Some(s) = &g.servicename {
        writeln!(f, "{ind}gssapi.servicename: {s}")?;
    }
    if let Some(k) = &g.keytab {
        writeln!(f, "{ind}gssapi.keytab: {k}")?;
    }
    if let Some(e) = &g.enctype {
        writeln!(f, "{ind}gssapi.enctype: {}", e.words().join(" "))?;
    }
    Ok(())
}

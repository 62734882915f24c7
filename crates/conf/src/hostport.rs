//! `HOST:PORT` as an operator writes it on a command line (`hasocks check -s`, `-I`, `-b`,
//! `hasocks bench -s`, `--target`): a host (an IP address or a name) and a port that is a
//! number or a service name of the fixed table in [`crate::services`].

use std::fmt;
use std::net::IpAddr;

use crate::services::service_port;

/// A host and a port, parsed but not resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// The host as written: an IP address, or a name someone must resolve.
    pub host: Host,
    /// The port (0 only where the caller's default or the text says so, as for a bind).
    pub port: u16,
}

/// The host part of a [`HostPort`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A literal address (IPv6 written bare or in brackets).
    Ip(IpAddr),
    /// A name, not resolved here.
    Name(String),
}

/// Why a `HOST:PORT` text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostPortError {
    /// Not of the form `HOST:PORT`, `[V6]:PORT` (or a bare host where a default port exists).
    #[error("bad address {0:?}, want HOST:PORT")]
    Malformed(String),
    /// The port is neither a number 0-65535 nor a service name of the table.
    #[error("unknown port or service {0:?}")]
    UnknownPort(String),
}

impl HostPort {
    /// Parses `host:port`, `[v6]:port` or, when `default_port` is given, a bare host or a bare
    /// IPv6 address. The port follows the one policy of [`crate::services`].
    pub fn parse(s: &str, default_port: Option<u16>) -> Result<Self, HostPortError> {
        let bad = || HostPortError::Malformed(s.to_owned());
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(bad)?;
            match after.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None if after.is_empty() => (h, None),
                None => return Err(bad()),
            }
        } else if s.matches(':').count() > 1 {
            (s, None) // a bare IPv6 address
        } else {
            match s.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        if host.is_empty() {
            return Err(bad());
        }
        let port = match port {
            Some(p) => {
                port_or_service(p).ok_or_else(|| HostPortError::UnknownPort(p.to_owned()))?
            }
            None => default_port.ok_or_else(bad)?,
        };
        let host = match host.parse() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(host.to_owned()),
        };
        Ok(Self { host, port })
    }
}

/// A decimal port, or a service name of the table.
fn port_or_service(p: &str) -> Option<u16> {
    if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
        return p.parse().ok();
    }
    service_port(p)
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => ip.fmt(f),
            Host::Name(n) => f.write_str(n),
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str, default_port: Option<u16>) -> (String, u16) {
        let hp = HostPort::parse(s, default_port).unwrap();
        (hp.host.to_string(), hp.port)
    }

    #[test]
    fn host_port_forms_parse() {
        assert_eq!(parsed("10.0.1.2:1080", None), ("10.0.1.2".into(), 1080));
        assert_eq!(parsed("[::1]:9", None), ("::1".into(), 9));
        assert_eq!(parsed("::1", Some(0)), ("::1".into(), 0));
        assert_eq!(parsed("host", Some(1080)), ("host".into(), 1080));
        assert_eq!(parsed("h:socks", None), ("h".into(), 1080));
    }

    #[test]
    fn literal_addresses_are_ips_and_the_rest_are_names() {
        let hp = HostPort::parse("[::1]:9", None).unwrap();
        assert_eq!(hp.host, Host::Ip("::1".parse().unwrap()));
        assert_eq!(hp.to_string(), "[::1]:9");
        let hp = HostPort::parse("proxy.example:80", None).unwrap();
        assert_eq!(hp.host, Host::Name("proxy.example".into()));
    }

    #[test]
    fn malformed_addresses_and_unknown_services_are_told_apart() {
        assert!(matches!(
            HostPort::parse("host", None),
            Err(HostPortError::Malformed(_))
        ));
        assert!(matches!(
            HostPort::parse(":80", None),
            Err(HostPortError::Malformed(_))
        ));
        assert!(matches!(
            HostPort::parse("[::1]x", None),
            Err(HostPortError::Malformed(_))
        ));
        assert_eq!(
            HostPort::parse("h:nosuchservice", None),
            Err(HostPortError::UnknownPort("nosuchservice".into()))
        );
        assert_eq!(
            HostPort::parse("h:65536", None),
            Err(HostPortError::UnknownPort("65536".into()))
        );
    }

    #[test]
    fn service_names_mean_the_fixed_table_whatever_etc_services_says() {
        // The names configs accept, and only those: the same text means the same port on
        // every machine, with or without /etc/services (which lists "gopher" as 70/tcp).
        assert_eq!(parsed("h:http-alt", None), ("h".into(), 8080));
        assert_eq!(parsed("h:www", None), ("h".into(), 80));
        assert!(HostPort::parse("h:gopher", None).is_err());
    }
}

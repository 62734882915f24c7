//! From a parsed `HOST:PORT` ([`hasocks_conf::HostPort`]) to what a SOCKS client needs: an address to
//! connect to here, or a target for the proxy to reach (a name goes to the proxy unresolved).

use std::net::SocketAddr;

use hasocks_conf::{Host, HostPort, HostPortError};
use hasocks_socks_wire::{TargetAddr, WireError};

use crate::client::Auth;

/// Why a `HOST:PORT` gave no address.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    /// The text itself is wrong (see the policy in `hasocks_conf::services`).
    #[error(transparent)]
    Syntax(#[from] HostPortError),
    /// The name did not resolve here.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The name.
        host: String,
        /// What the resolver said.
        source: std::io::Error,
    },
    /// The name resolved to no address.
    #[error("{0} has no address")]
    NoAddress(String),
    /// The name cannot travel in a SOCKS request (too long, or a NUL in it).
    #[error("{0}: {1}")]
    Target(String, WireError),
}

/// Parses and resolves `text` (`default_port` for a bare host) to the first address.
pub async fn resolve(text: &str, default_port: Option<u16>) -> Result<SocketAddr, AddressError> {
    resolve_parsed(&HostPort::parse(text, default_port)?).await
}

/// Resolves an already parsed `HOST:PORT`: an IP as it is, a name by the system resolver.
pub async fn resolve_parsed(hp: &HostPort) -> Result<SocketAddr, AddressError> {
    let name = match &hp.host {
        Host::Ip(ip) => return Ok(SocketAddr::new(*ip, hp.port)),
        Host::Name(n) => n,
    };
    tokio::net::lookup_host((name.as_str(), hp.port))
        .await
        .map_err(|source| AddressError::Resolve {
            host: name.clone(),
            source,
        })?
        .next()
        .ok_or_else(|| AddressError::NoAddress(name.clone()))
}

/// The SOCKS target a `HOST:PORT` names: an IP as it is, a name as a domain for the proxy.
pub fn target_of(hp: &HostPort) -> Result<TargetAddr, AddressError> {
    match &hp.host {
        Host::Ip(ip) => Ok(TargetAddr::Ip(SocketAddr::new(*ip, hp.port))),
        Host::Name(n) => TargetAddr::domain(n.clone(), hp.port)
            .map_err(|e| AddressError::Target(hp.to_string(), e)),
    }
}

impl Auth {
    /// Credentials written `USER:PASS` (the password may contain ':'); `None` without a ':'.
    pub fn parse(text: &str) -> Option<Auth> {
        let (user, pass) = text.split_once(':')?;
        Some(Auth {
            user: user.to_owned(),
            pass: pass.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_ip_resolves_to_itself_and_a_bad_text_is_a_syntax_error() {
        assert_eq!(
            resolve("127.0.0.1:socks", None).await.unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 1080))
        );
        assert!(matches!(
            resolve("nohost", None).await,
            Err(AddressError::Syntax(_))
        ));
    }

    #[test]
    fn names_travel_to_the_proxy_unresolved() {
        let hp = HostPort::parse("example.org:80", None).unwrap();
        assert_eq!(
            target_of(&hp).unwrap(),
            TargetAddr::Domain("example.org".into(), 80)
        );
        let long = format!("{}:80", "a".repeat(300));
        assert!(target_of(&HostPort::parse(&long, None).unwrap()).is_err());
    }

    #[test]
    fn credentials_split_at_the_first_colon() {
        let a = Auth::parse("u:p:q").unwrap();
        assert_eq!((a.user.as_str(), a.pass.as_str()), ("u", "p:q"));
        assert!(Auth::parse("nocolon").is_none());
    }
}

//! Service names, wherever hasocks takes a port: both config languages (`port = http`,
//! `listen on ... port socks`) and the command line (`hasocks check -s host:socks`, through
//! [`crate::hostport`]).

const SERVICES: &[(&str, u16)] = &[
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("http", 80),
    ("www", 80),
    ("pop3", 110),
    ("nntp", 119),
    ("imap", 143),
    ("https", 443),
    ("submission", 587),
    ("imaps", 993),
    ("pop3s", 995),
    ("socks", 1080),
    ("squid", 3128),
    ("http-alt", 8080),
];

/// The one policy for service names: a port is a number or a name of this fixed table, in a
/// config file and on the command line alike, and /etc/services is never read. A name then
/// means the same port on every machine, and a config or a check script that works on one
/// machine works on the next.
///
/// The port of a service name, if known.
pub fn service_port(name: &str) -> Option<u16> {
    SERVICES.iter().find(|(n, _)| *n == name).map(|&(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_services_resolve_and_unknown_ones_do_not() {
        assert_eq!(service_port("socks"), Some(1080));
        assert_eq!(service_port("http"), Some(80));
        assert_eq!(service_port("gopher-ish"), None);
    }
}

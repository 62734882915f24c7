//! Service names both config languages accept where a port goes (`port = http`,
//! `listen on ... port socks`). A fixed table, so a config means the same on every machine
//! whatever its /etc/services says.

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

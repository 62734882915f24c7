//! Keyword tables of sockd.conf as hasocks reads it: the settings, the rule items, the
//! authentication methods, and what Dante has that hasocks refuses.
//!
//! The parser dispatches on these tables (a word outside them is never accepted), so they are
//! the one list of what hasocks understands; the documentation test walks them to prove every
//! keyword is described in `docs/sockd.conf.md` and in hasocks-sockd.conf(5).

use super::Method;

/// Server settings (the part before the rules): Dante's and the `hasocks.*` additions,
/// including the Dante settings that are accepted only with a warning (`user.libwrap`,
/// `compatibility`, `srchost`, `udp.connectdst`, `timeout.tcp_fin_wait`).
pub const SETTINGS: &[&str] = &[
    "internal",
    "external",
    "external.rotation",
    "logoutput",
    "errorlog",
    "socksmethod",
    "clientmethod",
    "user.privileged",
    "user.unprivileged",
    "user.notprivileged",
    "user.libwrap",
    "timeout.negotiate",
    "timeout.connect",
    "timeout.io",
    "timeout.io.tcp",
    "timeout.io.udp",
    "timeout.tcp_fin_wait",
    "debug",
    "compatibility",
    "srchost",
    "udp.connectdst",
    "hasocks.udp.advertise",
    "hasocks.admin",
    "hasocks.proxyprotocol.from",
    "pam.servicename",
    "hasocks.passwordfile",
    "hasocks.auth.cache",
    "hasocks.socket",
    "hasocks.maxconn",
    "hasocks.maxconn.negotiating",
    "hasocks.maxconn.negotiating.source",
    "gssapi.servicename",
    "gssapi.keytab",
    "gssapi.enctype",
    "route.maxfail",
    "route.badexpire",
    "hasocks.route.select",
    "hasocks.route.timeout",
    "hasocks.route.check.interval",
    "extension",
];

/// Items valid inside a `client pass|block { }` or `socks pass|block { }` rule.
pub const RULE_ITEMS: &[&str] = &[
    "from",
    "to",
    "command",
    "protocol",
    "proxyprotocol",
    "socksmethod",
    "clientmethod",
    "log",
    "timeout.negotiate",
    "timeout.connect",
    "timeout.io",
    "timeout.io.tcp",
    "timeout.io.udp",
    "timeout.tcp_fin_wait",
    "udp.portrange",
    "user",
    "group",
    "pam.servicename",
    "session.max",
    "session.throttle",
    "session.state.key",
    "session.state.max",
    "session.state.throttle",
    "bandwidth",
    "gssapi.servicename",
    "gssapi.keytab",
    "gssapi.enctype",
];

/// Items valid inside a `route { }` block (`method` is Dante's route word for what rules
/// call `socksmethod`; both are read). `extension` is accepted with a warning.
pub const ROUTE_ITEMS: &[&str] = &[
    "from",
    "to",
    "via",
    "command",
    "protocol",
    "proxyprotocol",
    "method",
    "socksmethod",
    "extension",
];

/// The authentication methods `socksmethod:` and `clientmethod:` accept, by their word
/// ([`Method::word`]).
pub const METHODS: &[Method] = &[
    Method::None,
    Method::Username,
    Method::PamAny,
    Method::PamAddress,
    Method::PamUsername,
    Method::PasswordFile,
    Method::Socks4UserId,
    Method::Gssapi,
];

/// Dante methods hasocks refuses with "not supported" (not "unknown").
pub const UNSUPPORTED_METHODS: &[&str] = &["rfc931", "bsdauth", "ldapauth"];

/// Deprecated method words Dante still reads, and the method each stands for. Dante 1.4
/// reads `pam` as a PAM check of a user name and password (it answers `05 FF` to a client
/// offering only method 00), that is `pam.username`.
pub const DEPRECATED_METHODS: &[(&str, Method)] = &[("pam", Method::PamUsername)];

/// Why a refused method is refused, where the reason is more than "not implemented".
pub(super) fn method_refusal(word: &str) -> Option<&'static str> {
    match word {
        "rfc931" => Some(
            "an ident (RFC 1413) answer is the client host's own claim, not authentication \
             (RFC 1413 section 6: any host can answer any name), and it costs a connection back \
             to every client; use username, pam.* or hasocks.passwordfile",
        ),
        _ => None,
    }
}

/// The method a deprecated method word stands for.
pub(super) fn deprecated_method(word: &str) -> Option<Method> {
    DEPRECATED_METHODS
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, m)| *m)
}

/// Dante 1.4 keywords (settings, rule items or rule kinds) that hasocks does not implement.
/// Naming them gives "not supported by hasocks" instead of "unknown keyword".
pub const UNSUPPORTED: &[&str] = &[
    "hostid",
    "hostindex",
    "redirect",
    "libwrap",
    "libwrap.hosts_access",
    "method",
    "clientcompatibility",
    "monitor",
    "maxsessions",
    "connecttimeout",
    "iotimeout",
    "realm",
    "resolveprotocol",
    "internal.protocol",
    "external.protocol",
    "oldsocksmethod",
    "errorlog.mode",
    "logoutput.mode",
    "global.bandwidth",
    "proxyprotocol.from",
];

/// Prefixes of Dante keyword families hasocks does not implement (a keyword of such a family
/// that is not in [`SETTINGS`] or [`RULE_ITEMS`] is refused as "not supported").
pub const UNSUPPORTED_PREFIXES: &[&str] = &[
    "session.",
    "cpu.",
    "socket.",
    "child.",
    "gssapi.",
    "pam.",
    "bsdauth.",
    "ldap.",
    "internal.log.",
    "external.log.",
    "alarm.",
    "monitor.",
];

/// Syslog facilities accepted after `syslog/` in `logoutput:` and `errorlog:`.
pub const FACILITIES: &[&str] = &[
    "auth", "authpriv", "cron", "daemon", "kern", "lpr", "mail", "news", "syslog", "user", "uucp",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

/// Whether `word` names a server setting.
pub(super) fn is_setting(word: &str) -> bool {
    SETTINGS.contains(&word)
}

/// Whether `word` is a route item.
pub(super) fn is_route_item(word: &str) -> bool {
    ROUTE_ITEMS.contains(&word)
}

/// Whether `word` is a rule item.
pub(super) fn is_rule_item(word: &str) -> bool {
    RULE_ITEMS.contains(&word)
}

/// The method a `socksmethod:`/`clientmethod:` word names.
pub(super) fn method(word: &str) -> Option<Method> {
    METHODS.iter().copied().find(|m| m.word() == word)
}

/// The message for a refused Dante keyword: "not supported", and why where the reason is
/// more than "not implemented".
pub(super) fn refused(word: &str) -> String {
    let why = match word {
        "libwrap" | "libwrap.hosts_access" => {
            ": it runs TCP wrappers (hosts_access(5)) commands for each request, a program per \
             connection; write the addresses as client and socks rules"
        }
        _ => "",
    };
    format!("{}{why}", crate::error::not_supported(word))
}

/// Whether `word` is a Dante keyword that hasocks refuses.
pub(super) fn is_unsupported(word: &str) -> bool {
    UNSUPPORTED.contains(&word) || UNSUPPORTED_PREFIXES.iter().any(|p| word.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_and_unimplemented_session_keywords_are_unsupported() {
        assert!(is_unsupported("session.inheritable"));
        assert!(is_unsupported("redirect"));
        assert!(!is_unsupported("from"));
        assert!(!is_unsupported("sessionx"));
    }

    #[test]
    fn every_method_word_names_its_method() {
        for m in METHODS {
            assert_eq!(method(m.word()), Some(*m));
        }
        assert_eq!(method("rfc931"), None);
    }

    #[test]
    fn every_setting_is_accepted_before_the_rules() {
        // A setting the parser did not know would be "unknown keyword"; a value error is fine.
        for kw in SETTINGS {
            let text = format!("internal: 127.0.0.1\n{kw}: x\n");
            if let Err(e) = super::super::parse(&text, std::path::Path::new("t")) {
                assert!(!e.message.contains("unknown keyword"), "{kw}: {e}");
                assert!(!e.message.contains("not supported"), "{kw}: {e}");
            }
        }
    }

    #[test]
    fn every_rule_item_is_accepted_inside_a_rule() {
        for kw in RULE_ITEMS {
            let text =
                format!("internal: 127.0.0.1\nsocksmethod: none\nsocks pass {{\n{kw}: x\n}}\n");
            if let Err(e) = super::super::parse(&text, std::path::Path::new("t")) {
                assert!(!e.message.contains("unknown keyword"), "{kw}: {e}");
                assert!(!e.message.contains("not supported"), "{kw}: {e}");
                assert!(!e.message.contains("only valid"), "{kw}: {e}");
            }
        }
    }
}

//! Keyword tables: what Dante has that hasocks refuses, service names, syslog facilities.

/// Dante 1.4 keywords (settings, rule items or rule kinds) that hasocks does not implement.
/// Naming them gives "not supported by hasocks" instead of "unknown keyword".
const UNSUPPORTED: &[&str] = &[
    "route",
    "hostid",
    "hostindex",
    "redirect",
    "libwrap",
    "libwrap.hosts_access",
    "via",
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
    "extension",
    "oldsocksmethod",
    "errorlog.mode",
    "logoutput.mode",
    "global.bandwidth",
    "proxyprotocol.from",
];

/// Prefixes of Dante keyword families hasocks does not implement.
const UNSUPPORTED_PREFIXES: &[&str] = &[
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

/// Whether `word` is a Dante keyword that hasocks refuses.
pub(super) fn is_unsupported(word: &str) -> bool {
    UNSUPPORTED.contains(&word) || UNSUPPORTED_PREFIXES.iter().any(|p| word.starts_with(p))
}

/// Syslog facilities accepted after `syslog/`.
pub(super) const FACILITIES: &[&str] = &[
    "auth", "authpriv", "cron", "daemon", "kern", "lpr", "mail", "news", "syslog", "user", "uucp",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

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
}

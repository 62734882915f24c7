//! The `gssapi.*` items, the same in the settings and in a rule (Dante's meaning):
//! `gssapi.servicename: NAME`, `gssapi.keytab: KEYTAB`,
//! `gssapi.enctype: clear integrity confidentiality` (any of the three).

use super::cursor::{Cursor, Word};
use super::{GssEnctypes, Gssapi};
use crate::ConfError;

/// Parses the value of a `gssapi.*` keyword (consumed with its `:`) into `g`.
pub(super) fn item(c: &mut Cursor<'_>, kw: &Word, g: &mut Gssapi) -> Result<(), ConfError> {
    match kw.text.as_str() {
        "gssapi.servicename" => g.servicename = Some(c.one_value(kw)?.text),
        "gssapi.keytab" => g.keytab = Some(c.one_value(kw)?.text),
        _ => {
            let mut e = GssEnctypes {
                clear: false,
                integrity: false,
                confidentiality: false,
            };
            for w in c.values(kw)? {
                match w.text.as_str() {
                    "clear" => e.clear = true,
                    "integrity" => e.integrity = true,
                    "confidentiality" => e.confidentiality = true,
                    other => {
                        return Err(c.err_word(
                            &w,
                            format!(
                                "unknown gssapi.enctype \"{other}\" (clear, integrity, confidentiality)"
                            ),
                        ))
                    }
                }
            }
            g.enctype = Some(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{parse, Method};
    use std::path::Path;

    #[test]
    fn gssapi_settings_and_rule_items_take_dantes_values() {
        let c = parse(
            "internal: lo\nsocksmethod: gssapi none\ngssapi.servicename: rcmd\n\
             gssapi.keytab: FILE:/etc/danted.keytab\ngssapi.enctype: integrity confidentiality\n\
             client pass {\nfrom: 0/0 to: 0/0\n\
             gssapi.servicename: socks/proxy.example.com@EXAMPLE.COM\ngssapi.enctype: clear\n}\n\
             socks pass {\nfrom: 0/0 to: 0/0\nsocksmethod: gssapi\nuser: alice@EXAMPLE.COM\n}\n",
            Path::new("t"),
        )
        .unwrap();
        assert_eq!(c.socksmethods, vec![Method::Gssapi, Method::None]);
        assert_eq!(c.gssapi.servicename.as_deref(), Some("rcmd"));
        assert_eq!(c.gssapi.keytab.as_deref(), Some("FILE:/etc/danted.keytab"));
        let e = c.gssapi.enctype.unwrap();
        assert!(!e.clear && e.integrity && e.confidentiality);
        assert_eq!(c.socks_rules[0].auth.users, vec!["alice@EXAMPLE.COM"]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let g = c.client_rules[0].auth.gssapi.or(&c.gssapi);
        assert_eq!(
            g.servicename.as_deref(),
            Some("socks/proxy.example.com@EXAMPLE.COM")
        );
        assert_eq!(g.keytab.as_deref(), Some("FILE:/etc/danted.keytab"));
        assert_eq!(g.enctype.unwrap().words(), vec!["clear"]);
        // The printed form reads back the same.
        let again = parse(&c.to_string(), Path::new("t")).unwrap();
        assert_eq!(again.without_positions(), c.without_positions());
    }

    #[test]
    fn an_unknown_enctype_is_an_error_at_its_word() {
        let e = parse(
            "internal: lo\nsocksmethod: gssapi\ngssapi.enctype: integrity des\n",
            Path::new("f.conf"),
        )
        .unwrap_err();
        assert_eq!((e.line, e.col), (3, 27), "{e}");
        assert!(e.message.contains("unknown gssapi.enctype \"des\""), "{e}");
    }

    #[test]
    fn gssapi_items_in_a_socks_rule_are_taken_with_a_warning() {
        let c = parse(
            "internal: lo\nsocksmethod: gssapi\nsocks pass {\nfrom: 0/0 to: 0/0\n\
             gssapi.keytab: FILE:/k\n}\n",
            Path::new("t"),
        )
        .unwrap();
        assert_eq!(c.warnings.len(), 1);
        assert!(
            c.warnings[0].message.contains("changes nothing"),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn other_gssapi_keywords_are_refused_as_unsupported() {
        let e = parse("internal: lo\ngssapi.realm: X\n", Path::new("t")).unwrap_err();
        assert!(e.message.contains("not supported"), "{e}");
    }
}

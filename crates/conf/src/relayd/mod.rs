//! OpenBSD relayd.conf (relay subset plus hasocks additions): lexer, parser and typed config.
//!
//! What relayd accepts and hasocks implements means the same here; relayd keywords hasocks
//! does not implement are errors (`keyword "redirect" is not supported by hasocks`), never
//! silently ignored. Deliberate differences from relayd: a forward's `timeout` longer than the
//! check interval is a warning (relayd refuses it), unquoted words may contain `/`, and a
//! table not used by any relay is a warning (relayd refuses it).

pub mod keywords;
mod lexer;
mod parser;
mod protocol;
mod redirect;
mod relay;
mod stream;
mod types;
mod words;

use std::path::Path;

pub use lexer::MAX_EXPANDED_CHARS;
pub use stream::MAX_INCLUDES;
pub use types::*;

use crate::ConfError;

/// Parses relayd.conf text. `file` names it in errors and anchors relative `include`s.
/// `overrides`: -D name=value macro definitions (they win over the file's).
pub fn parse(
    text: &str,
    file: &Path,
    overrides: &[(String, String)],
) -> Result<RelaydConfig, ConfError> {
    let mut s = stream::Stream::new(text, file);
    for (name, value) in overrides {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(ConfError::new(
                file,
                0,
                0,
                format!("-D {name}={value}: invalid macro name \"{name}\""),
            ));
        }
        if words::is_reserved(name) {
            return Err(ConfError::new(
                file,
                0,
                0,
                format!(
                    "-D {name}={value}: \"{name}\" is a reserved word and cannot be a macro name"
                ),
            ));
        }
        s.define_override(name, value);
    }
    parser::Parser::new(s).run()
}

/// Reads and parses the file; `include "path"` is resolved relative to the including file's
/// folder when not absolute.
pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<RelaydConfig, ConfError> {
    let text = crate::read::read_config(path)
        .map_err(|e| ConfError::new(path, 0, 0, format!("cannot read the file: {e}")))?;
    parse(&text, path, overrides)
}

/// A `-D name=value` argument that is not `name=value`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("-D {0}: expected name=value")]
pub struct DefineError(pub String);

/// Parses `-D name=value` arguments (relayd's macro overrides).
pub fn parse_defines(defines: &[String]) -> Result<Vec<(String, String)>, DefineError> {
    defines
        .iter()
        .map(|d| match d.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(DefineError(d.clone())),
        })
        .collect()
}

/// The 128-bit hash key for a string key (`mode loadbalance "secret"`): the MD5 digest
/// (RFC 1321) of the string's UTF-8 bytes, as relayd derives its key from a string. Stable
/// across releases and machines, so two relays with the same key map clients alike.
pub fn key_from_str(s: &str) -> HashKey {
    use md5::{Digest, Md5};
    Md5::digest(s.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<RelaydConfig, ConfError> {
        parse(text, Path::new("relayd.conf"), &[])
    }

    #[test]
    fn string_keys_are_the_md5_of_the_string_as_in_the_rfc_1321_test_suite() {
        let cases = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in cases {
            let hex: String = key_from_str(input)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(hex, want, "md5({input:?})");
        }
        assert_eq!(
            key_from_str("abc"),
            [
                0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0, 0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1,
                0x7f, 0x72
            ]
        );
    }

    #[test]
    fn empty_file_has_relayd_defaults() {
        let c = p("").unwrap();
        assert_eq!(
            (c.interval_s, c.timeout_ms, c.log_host_checks),
            (10, 200, false)
        );
        assert_eq!(c.log_connections, LogConnections::Off);
        assert!(c.tables.is_empty() && c.relays.is_empty());
    }

    #[test]
    fn invalid_override_names_are_refused() {
        let o = [("table".to_string(), "x".to_string())];
        assert!(parse("", Path::new("f"), &o)
            .unwrap_err()
            .message
            .contains("reserved"));
        let o = [("a-b".to_string(), "x".to_string())];
        assert!(parse("", Path::new("f"), &o)
            .unwrap_err()
            .message
            .contains("invalid macro name"));
    }

    #[test]
    fn minimal_relay_gets_its_defaults() {
        let c = p("table <t> { 10.0.0.1 }\nrelay r {\n listen on 127.0.0.1 port 1080\n forward to <t>\n}\n").unwrap();
        let r = &c.relays[0];
        assert_eq!(r.name, "r");
        assert_eq!(r.session_timeout_s, 600);
        assert_eq!(r.forwards[0].port, 1080);
        assert_eq!(r.forwards[0].mode, Mode::RoundRobin);
        assert_eq!(r.forwards[0].check, None);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    /// A fresh directory under the system temp dir, unique to this test.
    fn temp_dir(tag: &str) -> std::path::PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "hasocks-relayd-unit-{tag}-{}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn dev_zero_is_refused() {
        let e = load(Path::new("/dev/zero"), &[]).unwrap_err();
        assert_eq!(e.file, Path::new("/dev/zero"));
        assert!(e.message.contains("not a regular file"), "{e}");
    }

    #[test]
    fn an_include_of_dev_zero_is_refused_at_the_include() {
        let dir = temp_dir("devzero");
        let main = dir.join("relayd.conf");
        std::fs::write(&main, "\n  include \"/dev/zero\"\n").unwrap();
        let e = load(&main, &[]).unwrap_err();
        assert_eq!((e.file.as_path(), e.line, e.col), (main.as_path(), 2, 3));
        assert!(e.message.contains("\"/dev/zero\""), "{e}");
        assert!(e.message.contains("not a regular file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn includes_past_the_total_cap_are_refused_at_the_include_line() {
        let dir = temp_dir("cap");
        std::fs::write(dir.join("empty.conf"), "").unwrap();
        let main = dir.join("relayd.conf");
        let ok = "include \"empty.conf\"\n".repeat(MAX_INCLUDES);
        std::fs::write(&main, &ok).unwrap();
        assert!(load(&main, &[]).is_ok());
        std::fs::write(&main, format!("{ok}include \"empty.conf\"\n")).unwrap();
        let e = load(&main, &[]).unwrap_err();
        let line = u32::try_from(MAX_INCLUDES).unwrap() + 1;
        assert_eq!((e.file.as_path(), e.line, e.col), (main.as_path(), line, 1));
        assert!(
            e.message
                .contains(&format!("more than {MAX_INCLUDES} includes")),
            "{e}"
        );
        assert!(e.message.contains("\"empty.conf\""), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn include_fan_out_is_cut_at_the_total_cap() {
        // Each level includes the next four times, 14 levels deep: 4^14 files unbounded.
        let dir = temp_dir("fanout");
        for level in 0..14 {
            let line = format!("include \"l{}.conf\"\n", level + 1);
            std::fs::write(dir.join(format!("l{level}.conf")), line.repeat(4)).unwrap();
        }
        std::fs::write(dir.join("l14.conf"), "").unwrap();
        let e = load(&dir.join("l0.conf"), &[]).unwrap_err();
        assert!(
            e.message
                .contains(&format!("more than {MAX_INCLUDES} includes")),
            "{e}"
        );
        assert!(e.file.starts_with(&dir) && (1..=4).contains(&e.line), "{e}");
        assert_eq!(e.col, 1, "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn macro_expansion_is_cut_at_the_total_budget() {
        // A million commas per use: four uses fit the budget, the fifth does not.
        let commas = ",".repeat(1_000_000);
        let fits = format!("a=\"{commas}\"\ntable <t> {{ $a $a $a $a h }}\n");
        assert_eq!(p(&fits).unwrap().tables[0].hosts.len(), 1);
        let over = format!("a=\"{commas}\"\ntable <t> {{ $a $a $a $a $a h }}\n");
        let e = p(&over).unwrap_err();
        assert_eq!((e.line, e.col), (2, 25), "{e}");
        assert!(
            e.message
                .contains(&format!("{MAX_EXPANDED_CHARS} characters")),
            "{e}"
        );
    }

    #[test]
    fn missing_file_is_an_error_naming_it() {
        let e = load(Path::new("/nonexistent/relayd.conf"), &[]).unwrap_err();
        assert_eq!(e.file, Path::new("/nonexistent/relayd.conf"));
    }
}

//! Every keyword the parsers accept, and every one they refuse by name, is described in the
//! dialect's markdown page and in its man page, in the section where a reader looks for it.
//! The lists come from the parsers' own tables, so a keyword added without docs fails here.

use std::collections::HashSet;
use std::path::PathBuf;

use hasocks_conf::relayd::keywords as relayd;
use hasocks_conf::sockd::keywords as sockd;

/// A file of the repository's `docs/` folder.
fn doc(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The words of `text`: runs of keyword characters, a sentence's final dot dropped.
fn words(text: &str) -> HashSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "._*-".contains(c)))
        .map(|w| w.trim_end_matches('.').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// The markdown section under the `## ` heading `title` (up to the next `## `).
fn md_section<'a>(md: &'a str, title: &str) -> &'a str {
    let head = format!("\n## {title}\n");
    let start = md
        .find(&head)
        .unwrap_or_else(|| panic!("no section \"## {title}\""))
        + head.len();
    let rest = &md[start..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The words inside the code spans and code blocks of some markdown: keywords are written as
/// code, so a keyword only mentioned in passing prose does not count.
fn md_code_words(md: &str) -> HashSet<String> {
    let mut code = String::new();
    for (i, part) in md.split('`').enumerate() {
        if i % 2 == 1 {
            code.push_str(part);
            code.push(' ');
        }
    }
    words(&code)
}

/// The man page section under `.SH TITLE` (up to the next `.SH`), as a reader sees the text:
/// escapes for `-`, quotes and fonts undone.
fn man_section(roff: &str, title: &str) -> String {
    let heads = [format!("\n.SH {title}\n"), format!("\n.SH \"{title}\"\n")];
    let (start, len) = heads
        .iter()
        .find_map(|h| roff.find(h.as_str()).map(|i| (i, h.len())))
        .unwrap_or_else(|| panic!("no section \".SH {title}\""));
    let rest = &roff[start + len..];
    let body = &rest[..rest.find("\n.SH ").unwrap_or(rest.len())];
    let mut plain = body
        .replace("\\-", "-")
        .replace("\\&", "")
        .replace("\\(dq", "\"")
        .replace("\\e", "\\");
    for font in ["\\fB", "\\fI", "\\fR", "\\fP"] {
        plain = plain.replace(font, " ");
    }
    plain
}

/// Fails listing every keyword of `list` missing from the md section or the man section.
fn check(what: &str, list: &[&str], md: &str, md_title: &str, roff: &str, man_title: &str) {
    let in_md = md_code_words(md_section(md, md_title));
    let in_man = words(&man_section(roff, man_title));
    let mut missing = Vec::new();
    for kw in list {
        if !in_md.contains(*kw) {
            missing.push(format!("{kw} (markdown, \"## {md_title}\", as code)"));
        }
        if !in_man.contains(*kw) {
            missing.push(format!("{kw} (man page, \".SH {man_title}\")"));
        }
    }
    assert!(
        missing.is_empty(),
        "{what}: not documented:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_sockd_keyword_is_documented() {
    let md = doc("sockd.conf.md");
    let roff = doc("man/hasocks-sockd.conf.5");
    check(
        "sockd.conf settings",
        sockd::SETTINGS,
        &md,
        "Settings",
        &roff,
        "SETTINGS",
    );
    check(
        "sockd.conf rule items",
        sockd::RULE_ITEMS,
        &md,
        "Rules",
        &roff,
        "RULES",
    );
    check(
        "sockd.conf route items",
        sockd::ROUTE_ITEMS,
        &md,
        "Routes",
        &roff,
        "ROUTES",
    );
    let methods: Vec<&str> = sockd::METHODS
        .iter()
        .map(|m| m.word())
        .chain(sockd::DEPRECATED_METHODS.iter().map(|(w, _)| *w))
        .collect();
    check(
        "sockd.conf methods",
        &methods,
        &md,
        "Methods",
        &roff,
        "METHODS",
    );
    let families: Vec<String> = sockd::UNSUPPORTED_PREFIXES
        .iter()
        .map(|p| format!("{p}*"))
        .collect();
    let refused: Vec<&str> = sockd::UNSUPPORTED
        .iter()
        .chain(sockd::UNSUPPORTED_METHODS)
        .copied()
        .chain(families.iter().map(String::as_str))
        .collect();
    check(
        "Dante keywords hasocks refuses",
        &refused,
        &md,
        "Refused Dante keywords",
        &roff,
        "REFUSED DANTE KEYWORDS",
    );
}

#[test]
fn every_relayd_keyword_is_documented() {
    let md = doc("relayd.conf.md");
    let roff = doc("man/hasocks-relayd.conf.5");
    let global: Vec<&str> = relayd::GLOBAL.iter().chain(relayd::LOG).copied().collect();
    check(
        "relayd.conf global settings",
        &global,
        &md,
        "Global settings",
        &roff,
        "GLOBAL SETTINGS",
    );
    check(
        "relayd.conf host options",
        relayd::HOST_OPTIONS,
        &md,
        "Tables",
        &roff,
        "TABLES",
    );
    let relay: Vec<&str> = relayd::RELAY
        .iter()
        .chain(relayd::FORWARD)
        .copied()
        .collect();
    check(
        "relayd.conf relay statements and forward options",
        &relay,
        &md,
        "Relays",
        &roff,
        "RELAYS",
    );
    let protocol: Vec<&str> = relayd::PROTOCOL
        .iter()
        .chain(relayd::TCP)
        .copied()
        .collect();
    check(
        "relayd.conf protocol statements and tcp options",
        &protocol,
        &md,
        "Protocols",
        &roff,
        "PROTOCOLS",
    );
    check(
        "relayd.conf redirect statements",
        relayd::REDIRECT,
        &md,
        "Redirects",
        &roff,
        "REDIRECTS",
    );
    check(
        "relayd.conf modes",
        relayd::MODES,
        &md,
        "Modes",
        &roff,
        "MODES",
    );
    check(
        "relayd.conf checks",
        relayd::CHECKS,
        &md,
        "Checks",
        &roff,
        "CHECKS",
    );
    check(
        "relayd keywords hasocks refuses",
        relayd::UNSUPPORTED,
        &md,
        "Refused relayd keywords",
        &roff,
        "REFUSED RELAYD KEYWORDS",
    );
}

#[test]
fn a_keyword_missing_from_the_docs_is_caught() {
    // The checker itself: a page without the word fails, one with it as code passes.
    let md = "intro\n## Settings\nthe `internal:` setting, and prose about external\n";
    let roff = ".TH X 5\n.SH SETTINGS\n.B internal:\nexternal\n";
    assert!(md_code_words(md_section(md, "Settings")).contains("internal"));
    assert!(!md_code_words(md_section(md, "Settings")).contains("external"));
    assert!(words(&man_section(roff, "SETTINGS")).contains("external"));
    let caught = std::panic::catch_unwind(|| {
        check("t", &["external"], md, "Settings", roff, "SETTINGS");
    });
    assert!(caught.is_err());
}

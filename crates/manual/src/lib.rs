//! The manual of a command line, rendered from its clap definition so it cannot drift from
//! the options the binary takes: section-8 man pages (one for the command, one per visible
//! subcommand, as git and cargo split theirs) with clap_mangen, and shell completions with
//! clap_complete. The Debian package and CI call it through `hasocks generate`.
//!
//! Data flow: `clap::Command` + [`Meta`] -> [`man_pages`] (file name, roff) and
//! [`completions`] (a script for one shell).
#![forbid(unsafe_code)]

use clap_mangen::roff::{roman, Roff};
use clap_mangen::Man;

/// What every page says beside the command's own text.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    /// The date in the title line (a release's or commit's date).
    pub date: &'a str,
    /// The source line (`hasocks 0.1.0`).
    pub source: &'a str,
    /// The manual's name (`hasocks`).
    pub manual: &'a str,
    /// Pages every page points to besides the command pages (`hasocks-sockd.conf(5)`).
    pub see_also: &'a [&'a str],
}

/// Writes the completion script of `shell` for `cli` (hidden commands left out) to `out`.
pub fn completions(cli: &clap::Command, shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let name = cli.get_name().to_string();
    clap_complete::generate(shell, &mut without_hidden(cli), name, out);
}

/// The command line without its hidden commands, which clap_complete would offer.
pub fn without_hidden(cli: &clap::Command) -> clap::Command {
    let mut c = clap::Command::new(cli.get_name().to_string())
        .about(cli.get_about().cloned().unwrap_or_default())
        .args(cli.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .subcommands(cli.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(v) = cli.get_version() {
        c = c.version(v.to_string());
    }
    c
}

/// The section-8 pages: `hasocks.8` (its commands listed) and `hasocks-COMMAND.8` for each
/// visible command (its options), as git and cargo split theirs. File name and roff text.
pub fn man_pages(
    mut cli: clap::Command,
    meta: &Meta<'_>,
) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    // `help` is clap's, not ours: no page. Building gives each subcommand its display name
    // ("hasocks-server") and bin name ("hasocks server"), which page names and synopses use.
    cli = cli
        .disable_help_subcommand(true)
        .subcommand_help_heading("COMMANDS");
    cli.build();
    let mut cmds = vec![cli.clone()];
    cmds.extend(cli.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    let names: Vec<String> = cmds.iter().map(display_name).collect();
    let mut pages = Vec::new();
    for cmd in cmds {
        let name = display_name(&cmd);
        let see_also: Vec<String> = names
            .iter()
            .filter(|n| **n != name)
            .map(|n| format!("{n}(8)"))
            .chain(meta.see_also.iter().map(|p| p.to_string()))
            .collect();
        pages.push((format!("{name}.8"), page(cmd, &see_also, meta)?));
    }
    Ok(pages)
}

/// A command's name as its page is called: `hasocks`, `hasocks-server`.
pub fn display_name(cmd: &clap::Command) -> String {
    cmd.get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string()
}

/// One page: clap_mangen's sections, the after-help text kept as written, and SEE ALSO.
fn page(cmd: clap::Command, see_also: &[String], meta: &Meta<'_>) -> std::io::Result<Vec<u8>> {
    let after = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|s| s.to_string());
    let has_options = cmd.get_arguments().any(|a| !a.is_hide_set());
    let has_commands = cmd.get_subcommands().any(|s| !s.is_hide_set());
    let man = Man::new(cmd)
        .section("8")
        .date(meta.date.to_string())
        .source(meta.source.to_string())
        .manual(meta.manual.to_string());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    if has_options {
        man.render_options_section(&mut out)?;
    }
    if has_commands {
        man.render_subcommands_section(&mut out)?;
    }
    let mut roff = Roff::default();
    if let Some(text) = after {
        // The after-help is a preformatted list (ctl's command words): keep its lines.
        roff.control("SH", ["NOTES"]);
        roff.control("nf", []);
        for line in text.lines() {
            roff.text([roman(line)]);
        }
        roff.control("fi", []);
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(see_also.join(", "))]);
    roff.to_writer(&mut out)?;
    Ok(dedup_preamble(&out))
}

/// Each section rendered on its own repeats roff's two-line `Aq` string definition: keep the
/// first.
fn dedup_preamble(page: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(page);
    let mut seen = std::collections::HashSet::new();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let preamble = line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq");
        if !preamble || seen.insert(line.to_string()) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.into_bytes()
}

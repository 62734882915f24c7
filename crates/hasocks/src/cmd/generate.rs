//! `hasocks generate` (hidden): the man pages and shell completions, rendered from the CLI
//! definition itself so they cannot drift from the options the binary takes. The Debian
//! package and CI call it; the rendering is clap_mangen's and clap_complete's.

use std::io::Write;
use std::path::PathBuf;

use clap_mangen::roff::{roman, Roff};
use clap_mangen::Man;

/// The config-file pages (written by hand, in `docs/man/`) every command page points to.
const CONFIG_PAGES: &[&str] = &["hasocks-sockd.conf(5)", "hasocks-relayd.conf(5)"];

/// Options of `hasocks generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    /// What to generate.
    #[command(subcommand)]
    pub what: What,
}

/// What `hasocks generate` writes.
#[derive(clap::Subcommand)]
pub enum What {
    /// Writes hasocks.8 and one hasocks-COMMAND.8 per command into DIR.
    Man {
        /// The folder to write the pages into (it must exist).
        dir: PathBuf,
    },
    /// Prints the completion script for SHELL on stdout.
    Completions {
        /// The shell (bash, zsh, fish, elvish, powershell).
        shell: clap_complete::Shell,
    },
}

/// Writes what `args` asks for; `cli` is the whole command line definition.
pub fn run(args: GenerateArgs, cli: clap::Command) -> anyhow::Result<i32> {
    match args.what {
        What::Man { dir } => {
            for (name, page) in man_pages(cli)? {
                let path = dir.join(&name);
                std::fs::write(&path, page)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
                println!("{}", path.display());
            }
        }
        What::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut without_hidden(&cli), "hasocks", &mut out);
            out.flush()?;
        }
    }
    Ok(0)
}

/// The command line without its hidden commands, which clap_complete would offer.
fn without_hidden(cli: &clap::Command) -> clap::Command {
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
pub fn man_pages(mut cli: clap::Command) -> std::io::Result<Vec<(String, Vec<u8>)>> {
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
            .chain(CONFIG_PAGES.iter().map(|p| p.to_string()))
            .collect();
        pages.push((format!("{name}.8"), page(cmd, &see_also)?));
    }
    Ok(pages)
}

/// A command's name as its page is called: `hasocks`, `hasocks-server`.
fn display_name(cmd: &clap::Command) -> String {
    cmd.get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string()
}

/// One page: clap_mangen's sections, the after-help text kept as written, and SEE ALSO.
fn page(cmd: clap::Command, see_also: &[String]) -> std::io::Result<Vec<u8>> {
    let after = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|s| s.to_string());
    let has_options = cmd.get_arguments().any(|a| !a.is_hide_set());
    let has_commands = cmd.get_subcommands().any(|s| !s.is_hide_set());
    let man = Man::new(cmd)
        .section("8")
        .date(env!("HASOCKS_COMMIT_DATE"))
        .source(format!("hasocks {}", env!("CARGO_PKG_VERSION")))
        .manual("hasocks");
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn pages() -> Vec<(String, String)> {
        man_pages(crate::Cli::command())
            .unwrap()
            .into_iter()
            .map(|(n, p)| (n, String::from_utf8(p).unwrap()))
            .collect()
    }

    /// roff as a reader sees the words: escapes for `-` undone, font changes dropped.
    fn plain(roff: &str) -> String {
        roff.replace("\\-", "-")
            .replace("\\fB", "")
            .replace("\\fI", "")
            .replace("\\fR", "")
            .replace("\\fP", "")
    }

    #[test]
    fn every_visible_command_has_a_page_and_the_main_page_lists_it() {
        let pages = pages();
        let main = plain(&pages.iter().find(|(n, _)| n == "hasocks.8").unwrap().1);
        let cli = crate::Cli::command().disable_help_subcommand(true);
        let visible: Vec<_> = cli.get_subcommands().filter(|s| !s.is_hide_set()).collect();
        assert!(!visible.is_empty());
        for sub in visible {
            let name = format!("hasocks-{}", sub.get_name());
            assert!(
                pages.iter().any(|(n, _)| *n == format!("{name}.8")),
                "no page for {name}"
            );
            assert!(
                main.contains(&format!("{name}(8)")),
                "hasocks.8 lacks {name}"
            );
        }
        for hidden in cli.get_subcommands().filter(|s| s.is_hide_set()) {
            let name = format!("hasocks-{}.8", hidden.get_name());
            assert!(pages.iter().all(|(n, _)| *n != name), "{name} is hidden");
        }
    }

    #[test]
    fn every_option_of_every_command_is_on_its_page() {
        let pages = pages();
        let mut cli = crate::Cli::command().disable_help_subcommand(true);
        cli.build();
        let mut cmds = vec![cli.clone()];
        cmds.extend(cli.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
        let mut checked = 0;
        for cmd in cmds {
            let file = format!("{}.8", display_name(&cmd));
            let text = plain(&pages.iter().find(|(n, _)| *n == file).unwrap().1);
            for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                let mut forms: Vec<String> = Vec::new();
                if let Some(l) = arg.get_long() {
                    forms.push(format!("--{l}"));
                }
                if let Some(s) = arg.get_short() {
                    forms.push(format!("-{s}"));
                }
                if arg.is_positional() {
                    let v = arg.get_value_names().map(|v| v[0].to_string());
                    forms.push(v.unwrap_or_else(|| arg.get_id().to_string()));
                }
                for f in forms {
                    assert!(text.contains(&f), "{file} lacks {f}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 30, "only {checked} options found");
    }

    #[test]
    fn completions_offer_every_visible_command_and_no_hidden_one() {
        let cli = crate::Cli::command();
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Fish,
            &mut without_hidden(&cli),
            "hasocks",
            &mut script,
        );
        let script = String::from_utf8(script).unwrap();
        let offered = |name: &str| script.contains(&format!("-a \"{name}\""));
        for sub in cli.get_subcommands() {
            let name = sub.get_name();
            assert_eq!(offered(name), !sub.is_hide_set(), "{name}");
        }
        // Options of subcommands too: `hasocks server --config`.
        assert!(script.contains("-l config"), "{script}");
    }

    #[test]
    fn pages_are_plain_roff_with_a_whatis_line() {
        for (name, text) in pages() {
            let th = text.find("\n.TH ").unwrap_or(usize::MAX);
            assert!(
                th < text.find(".SH NAME").unwrap_or(0),
                "{name}: no .TH first"
            );
            // An empty .TH field written as nothing shifts the date into the source's place.
            let th_line = text[th + 1..].lines().next().unwrap_or_default();
            assert!(!th_line.contains("  "), "{name}: {th_line}");
            // mandb's whatis parser needs "NAME" followed by "name \- summary".
            let stem = name.trim_end_matches(".8").replace('-', "\\-");
            assert!(
                text.contains(&format!(".SH NAME\n{stem} \\- ")),
                "{name}: {}",
                &text[..200.min(text.len())]
            );
        }
    }
}

//! `hasocks generate` (hidden): the man pages and shell completions, rendered from the CLI
//! definition itself so they cannot drift from the options the binary takes. The Debian
//! package and CI call it; the rendering is clap_mangen's and clap_complete's.

use std::io::Write;
use std::path::PathBuf;

use hasocks_manual::{completions, man_pages, Meta};

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
            for (name, page) in man_pages(cli, &meta())? {
                let path = dir.join(&name);
                std::fs::write(&path, page)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
                println!("{}", path.display());
            }
        }
        What::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            completions(&cli, shell, &mut out);
            out.flush()?;
        }
    }
    Ok(0)
}

/// The pages' date, source and cross references.
fn meta() -> Meta<'static> {
    Meta {
        date: env!("HASOCKS_COMMIT_DATE"),
        source: concat!("hasocks ", env!("CARGO_PKG_VERSION")),
        manual: "hasocks",
        see_also: CONFIG_PAGES,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use hasocks_manual::{display_name, without_hidden};

    fn pages() -> Vec<(String, String)> {
        man_pages(crate::Cli::command(), &meta())
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

//! `hasocks generate`: the man pages it writes (and the two written by hand in docs/man) pass
//! groff's warnings, and the completion script it prints loads in bash.

use std::path::{Path, PathBuf};
use std::process::Command;

fn hasocks(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hasocks"))
        .args(args)
        .output()
        .expect("run hasocks")
}

/// groff's warnings (all of them) for one page; empty when it is clean.
fn groff_warnings(page: &Path) -> String {
    let out = Command::new("groff")
        .args(["-man", "-ww", "-z"])
        .arg(page)
        .output()
        .expect("run groff");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn every_man_page_is_silent_under_groff_warnings() {
    let dir = hasocks_test_support::temp_dir("man");
    let out = hasocks(&["generate", "man", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        pages.iter().any(|p| p.ends_with("hasocks.8")),
        "no hasocks.8 in {pages:?}"
    );
    let written = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/man");
    pages.extend(
        std::fs::read_dir(written)
            .unwrap()
            .map(|e| e.unwrap().path()),
    );
    if !hasocks_test_support::tool("groff") {
        return;
    }
    for page in &pages {
        let w = groff_warnings(page);
        assert!(w.is_empty(), "{}:\n{w}", page.display());
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_bash_completion_loads_and_completes_hasocks() {
    let out = hasocks(&["generate", "completions", "bash"]);
    assert!(out.status.success(), "{out:?}");
    let dir = hasocks_test_support::temp_dir("completion");
    let file = dir.join("hasocks");
    std::fs::write(&file, &out.stdout).unwrap();
    let shown = Command::new("bash")
        .arg("-c")
        .arg(format!("source {}; complete -p hasocks", file.display()))
        .output()
        .unwrap();
    assert!(shown.status.success(), "{shown:?}");
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("hasocks"),
        "{shown:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn man_pages_into_a_missing_folder_fail_naming_it() {
    let out = hasocks(&["generate", "man", "/nonexistent/hasocks-man"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/hasocks-man"), "{err}");
}

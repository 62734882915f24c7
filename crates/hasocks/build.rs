//! Records the git commit the binary is built from, for `hasocks --version`, and its date, for
//! the man pages. `HASOCKS_COMMIT` and `HASOCKS_COMMIT_DATE` override them (a package built
//! from a tarball); outside git they are "unknown".

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=HASOCKS_COMMIT");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let git_out = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(&root)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    // A new commit moves HEAD or the branch it points to. Only paths that exist are watched
    // (a missing one would rebuild every time); outside git, nothing but this file.
    println!("cargo:rerun-if-changed=build.rs");
    let dir = |arg: &str| git_out(&["rev-parse", arg]).map(|d| root.join(d));
    if let (Some(git), Some(common)) = (dir("--git-dir"), dir("--git-common-dir")) {
        let mut watch = vec![git.join("HEAD"), common.join("packed-refs")];
        if let Ok(head) = std::fs::read_to_string(git.join("HEAD")) {
            if let Some(r) = head.trim().strip_prefix("ref: ") {
                watch.push(common.join(r));
            }
        }
        for p in watch.iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    let commit = std::env::var("HASOCKS_COMMIT")
        .ok()
        .or_else(|| git_out(&["rev-parse", "--short=12", "HEAD"]));
    // The man pages' date: the commit's, so a rebuild of the same source gives the same pages.
    println!("cargo:rerun-if-env-changed=HASOCKS_COMMIT_DATE");
    let date = std::env::var("HASOCKS_COMMIT_DATE")
        .ok()
        .or_else(|| git_out(&["log", "-1", "--format=%cs"]));
    println!(
        "cargo:rustc-env=HASOCKS_COMMIT_DATE={}",
        date.filter(|d| !d.is_empty())
            .unwrap_or_else(|| "unknown".into())
    );
    println!(
        "cargo:rustc-env=HASOCKS_COMMIT={}",
        commit
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "unknown".into())
    );
}

//! A machine without `libpam.so.0`: PAM is loaded at run time, so the binary still starts,
//! a config that names a `pam.*` method is refused with the file, line, method and library,
//! and everything else works. The library is hidden in a private mount namespace
//! (`unshare -m` with /dev/null bound over it), so the rest of the machine keeps it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::bin;
use hasocks_test_support::blocking::{echo_server, socks5_rep, Running};
use hasocks_test_support::{free_port, temp_dir, tool, wait_blocking};

/// Where the dynamic loader finds libpam.so.0 (ldconfig's cache).
fn libpam_path() -> PathBuf {
    let out = Command::new("ldconfig")
        .arg("-p")
        .output()
        .expect("ldconfig -p");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.trim_start().starts_with("libpam.so.0 "))
        .and_then(|l| l.rsplit_once("=> "))
        .map(|(_, p)| PathBuf::from(p.trim()))
        .expect("libpam.so.0 in ldconfig's cache")
}

/// `hasocks ARGS` with libpam hidden from it.
fn without_pam(args: &str) -> Command {
    let mut c = Command::new("unshare");
    c.args(["-m", "sh", "-c"]).arg(format!(
        "mount --bind /dev/null {} && exec {} {args}",
        libpam_path().display(),
        bin()
    ));
    c
}

/// Whether this machine can hide a library (root and unshare); otherwise says why not.
fn can_hide() -> bool {
    if !nix::unistd::getuid().is_root() {
        assert!(
            std::env::var_os("HASOCKS_REQUIRE_TOOLS").is_none(),
            "hiding libpam needs root (HASOCKS_REQUIRE_TOOLS is set)"
        );
        eprintln!("skipped: hiding libpam in a mount namespace needs root");
        return false;
    }
    tool("unshare")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write_conf(dir: &Path, name: &str, port: u16, methods: &str) -> PathBuf {
    let f = dir.join(name);
    std::fs::write(
        &f,
        format!(
            "internal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\nsocksmethod: {methods}\n\
             client pass {{ from: 0/0 to: 0/0 }}\nsocks pass {{ from: 0/0 to: 0/0 }}\n"
        ),
    )
    .unwrap();
    f
}

#[test]
fn pam_config_is_refused_naming_file_line_method_and_library() {
    if !can_hide() {
        return;
    }
    let dir = temp_dir("nopam");
    let file = write_conf(
        &dir,
        "pam.conf",
        free_port("127.0.0.1"),
        "none pam.username",
    );
    let path = file.display();
    for args in [format!("server -V -f {path}"), format!("server -f {path}")] {
        let out = without_pam(&args).output().unwrap();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args}: {t}");
        assert!(t.contains(&format!("{path}:3:19:")), "{args}: {t}");
        assert!(t.contains("\"pam.username\""), "{args}: {t}");
        assert!(t.contains("libpam.so.0"), "{args}: {t}");
    }
    // With the library there, the same file is valid.
    let out = Command::new(bin())
        .args(["server", "-V", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn without_pam_a_none_config_serves_and_version_says_pam_is_missing() {
    if !can_hide() {
        return;
    }
    let out = without_pam("--version").output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("PAM: not available"), "{t}");
    let with = Command::new(bin()).arg("--version").output().unwrap();
    assert!(
        text(&with).contains("PAM: libpam.so.0 found"),
        "{}",
        text(&with)
    );

    let dir = temp_dir("nopam-none");
    let port = free_port("127.0.0.1");
    let file = write_conf(&dir, "none.conf", port, "none");
    let _server = Running(
        without_pam(&format!("server -f {}", file.display()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let proxy = format!("127.0.0.1:{port}").parse().unwrap();
    let target = echo_server("127.0.0.1");
    assert!(
        wait_blocking(
            || socks5_rep(proxy, target) == Some(0),
            Duration::from_secs(10)
        ),
        "a none config serves without libpam"
    );
}

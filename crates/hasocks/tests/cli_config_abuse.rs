//! Config files an operator (or a typo) can hand the daemons that must not hang, exhaust
//! memory or crash them: a FIFO, a device, a huge file, an include fan-out. `relay -n` and
//! `server -V` must each exit non-zero with a message naming the file and what is wrong.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::bin;
use hasocks_test_support::blocking::Running;
use hasocks_test_support::temp_dir;

/// Runs `hasocks ARGS FILE`; (exit code, stderr). A run still going after 20 s is a hang.
fn check(args: &[&str], file: &Path) -> (Option<i32>, String) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = temp_dir(&format!("abuse-out-{n}"));
    let err = dir.join("stderr");
    let mut p = Running(
        Command::new(bin())
            .args(args)
            .arg(file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("hasocks"),
    );
    let code = p.wait_exit(Duration::from_secs(20));
    let text = std::fs::read_to_string(&err).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        code.is_some(),
        "hasocks {args:?} {} hung or was killed",
        file.display()
    );
    (code, text)
}

fn both(file: &Path, needle: &str) {
    for args in [&["relay", "-n", "-f"][..], &["server", "-V", "-f"][..]] {
        let (code, err) = check(args, file);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&file.display().to_string()),
            "{args:?} names the file: {err}"
        );
        assert!(err.contains(needle), "{args:?} says {needle:?}: {err}");
    }
}

fn fifo(dir: &Path) -> PathBuf {
    let p = dir.join("config.fifo");
    let ok = Command::new("mkfifo").arg(&p).status().map(|s| s.success());
    assert_eq!(ok.ok(), Some(true), "mkfifo");
    p
}

#[test]
fn a_fifo_as_config_is_refused_without_waiting_for_a_writer() {
    let dir = temp_dir("abuse-fifo");
    both(&fifo(&dir), "not a regular file (it is a FIFO)");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_device_as_config_is_refused_without_reading_it() {
    both(
        Path::new("/dev/zero"),
        "not a regular file (it is a character device)",
    );
}

#[test]
fn a_100_mib_config_is_refused_without_reading_it_whole() {
    let dir = temp_dir("abuse-big");
    let p = dir.join("huge.conf");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(100 << 20).unwrap();
    both(&p, "larger than the limit");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_include_fan_out_is_cut_at_the_include_limit_naming_the_line() {
    let dir = temp_dir("abuse-fanout");
    // Each level includes the next one 16 times: 16^4 includes if nothing stopped it.
    for level in 0..4 {
        let next = dir.join(format!("level{}.conf", level + 1));
        let text = format!("include \"{}\"\n", next.display()).repeat(16);
        std::fs::write(dir.join(format!("level{level}.conf")), text).unwrap();
    }
    std::fs::write(dir.join("level4.conf"), "interval 10\n").unwrap();
    let main = dir.join("level0.conf");
    let (code, err) = check(&["relay", "-n", "-f"], &main);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("includes"), "{err}");
    assert!(err.contains("level"), "names a file of the chain: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_include_of_a_fifo_is_refused_at_the_include_line() {
    let dir = temp_dir("abuse-include-fifo");
    let f = fifo(&dir);
    let main = dir.join("relayd.conf");
    std::fs::write(&main, format!("interval 10\ninclude \"{}\"\n", f.display())).unwrap();
    let (code, err) = check(&["relay", "-n", "-f"], &main);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("relayd.conf:2"),
        "names the include line: {err}"
    );
    assert!(err.contains("FIFO"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_listen_address_in_use_is_named_with_its_os_error_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = temp_dir("abuse-in-use");
    let relayd = dir.join("relayd.conf");
    std::fs::write(
        &relayd,
        format!(
            "table <t> {{ 127.0.0.1 }}\nrelay \"r\" {{\n listen on 127.0.0.1 port {port}\n \
             forward to <t> port 9\n}}\n"
        ),
    )
    .unwrap();
    let sockd = dir.join("sockd.conf");
    std::fs::write(
        &sockd,
        hasocks_test_support::sockd_conf_on(
            "127.0.0.1",
            "pass",
            &format!("hasocks.socket: {}", dir.join("server.sock").display()),
        )
        .replace("port = 0", &format!("port = {port}")),
    )
    .unwrap();
    for (args, file) in [(&["relay", "-f"], &relayd), (&["server", "-f"], &sockd)] {
        let (code, err) = check(args, file);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!("127.0.0.1:{port}")),
            "{args:?}: {err}"
        );
        assert_eq!(
            err.matches("in use").count(),
            1,
            "{args:?} says why once: {err}"
        );
    }
    drop(taken);
    let _ = std::fs::remove_dir_all(&dir);
}

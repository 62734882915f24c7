//! Privilege separation as it runs: `hasocks server` started as root with
//! `user.unprivileged` serves as that user, while a root `hasocks auth-helper` child checks
//! `username` and `pam.username` logins of real accounts, ignores SIGHUP and ends with the
//! server. Needs root; skipped with a reason without.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::bin;
use hasocks_test_support::accounts::{root_or_skip, unique, Account, PamService};
use hasocks_test_support::blocking::Running;
use hasocks_test_support::{free_port, wait_blocking};

fn wait_for(f: impl FnMut() -> bool) -> bool {
    wait_blocking(f, std::time::Duration::from_secs(10))
}
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// An echo target on 127.0.0.1.
fn echo() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    a
}

/// RFC 1929 login then CONNECT with the probe client: (status, REP when logged in).
fn login(
    proxy: SocketAddr,
    user: &str,
    pass: &str,
    target: SocketAddr,
) -> Option<(u8, Option<u8>)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let auth = hasocks_probe::Auth {
        user: user.into(),
        pass: pass.into(),
    };
    let t = hasocks_socks_wire::TargetAddr::Ip(target);
    match rt.block_on(hasocks_probe::socks5_connect(
        proxy,
        &t,
        Some(&auth),
        Duration::from_secs(10),
    )) {
        Ok(_) => Some((0, Some(0))),
        Err(hasocks_probe::ProbeError::AuthFailed(st)) => Some((st, None)),
        Err(hasocks_probe::ProbeError::Rejected(rep)) => Some((0, Some(rep))),
        Err(_) => None,
    }
}

/// `Uid:` (real) of a process.
fn uid_of(pid: u32) -> Option<u32> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    st.lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The children of `pid` whose command line includes `auth-helper`.
fn helpers_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().nth(1))
                .and_then(|x| x.parse::<u32>().ok());
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            ppid == Some(pid) && String::from_utf8_lossy(&cmd).contains("auth-helper")
        })
        .collect()
}

#[test]
fn unprivileged_server_checks_real_accounts_through_the_root_helper() {
    if !root_or_skip("unprivileged_server_checks_real_accounts_through_the_root_helper") {
        return;
    }
    let y = Account::create(&unique("hy"), "helper yes", "YESCRYPT");
    let s = Account::create(&unique("hs"), "helper sha", "SHA512");
    let svc = PamService::create(
        &unique("hp"),
        "auth required pam_unix.so\naccount required pam_unix.so\n",
    );
    let dir = std::env::temp_dir().join(format!("hasocks-cli-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = echo();
    for (methods, extra) in [
        ("username", String::new()),
        ("pam.username", format!("pam.servicename: {}\n", svc.name)),
    ] {
        let port = free_port("127.0.0.1");
        let file = dir.join(format!("{methods}.conf"));
        std::fs::write(
            &file,
            format!(
                "internal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\nsocksmethod: {methods}\n\
                 {extra}user.privileged: root\nuser.unprivileged: nobody\n\
                 client pass {{ from: 0/0 to: 0/0 }}\nsocks pass {{ from: 0/0 to: 0/0 }}\n"
            ),
        )
        .unwrap();
        let child = Command::new(bin())
            .args(["server", "-f"])
            .arg(&file)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Running(child);
        let pid = server.0.id();
        let proxy: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        assert!(
            wait_for(|| TcpStream::connect(proxy).is_ok()),
            "{methods}: listening"
        );
        let nobody = nix::unistd::User::from_name("nobody")
            .unwrap()
            .unwrap()
            .uid
            .as_raw();
        assert!(
            wait_for(|| uid_of(pid) == Some(nobody)),
            "{methods}: network process runs as nobody"
        );
        let helpers = helpers_of(pid);
        assert_eq!(helpers.len(), 1, "{methods}: one helper child");
        let helper = helpers[0];
        assert_eq!(uid_of(helper), Some(0), "{methods}: the helper keeps root");

        assert_eq!(
            login(proxy, &y.name, "helper yes", target),
            Some((0, Some(0))),
            "{methods} yescrypt"
        );
        assert_eq!(
            login(proxy, &s.name, "helper sha", target),
            Some((0, Some(0))),
            "{methods} sha512"
        );
        assert_eq!(
            login(proxy, &s.name, "helper yes", target).map(|r| r.0),
            Some(1),
            "{methods} wrong"
        );

        // A stray SIGHUP (say from `pkill -HUP hasocks`) does not take the helper down.
        kill(Pid::from_raw(helper as i32), Signal::SIGHUP).unwrap();
        kill(Pid::from_raw(pid as i32), Signal::SIGHUP).unwrap();
        assert_eq!(
            login(proxy, &y.name, "helper yes", target),
            Some((0, Some(0))),
            "{methods} after SIGHUP"
        );

        drop(server);
        assert!(
            wait_for(
                || !std::path::Path::new(&format!("/proc/{helper}")).exists()
                    || std::fs::read_to_string(format!("/proc/{helper}/stat"))
                        .is_ok_and(|s| s.contains(") Z "))
            ),
            "{methods}: the helper ends with the server"
        );
    }
}

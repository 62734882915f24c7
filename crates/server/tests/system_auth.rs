//! `username` (shadow + crypt) and `pam.*` (pam_unix through Debian's common-auth) against
//! real system accounts with yescrypt and sha512-crypt hashes, checked in-process (the
//! helper path is in the hasocks crate's tests). Needs root; skipped with a reason without.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::accounts::{root_or_skip, unique, Account, PamService};
use common::*;
use tokio::net::{TcpSocket, TcpStream};

fn conf(methods: &str, settings: &str, rules: &str) -> String {
    format!(
        "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nsocksmethod: {methods}\n{settings}\n\
         client pass {{ from: 0/0 to: 0/0 }}\n{rules}\n"
    )
}

const PASS_ALL: &str = "socks pass { from: 0/0 to: 0/0 }";

async fn status_of(
    proxy: SocketAddr,
    user: &str,
    pass: &str,
    echo: SocketAddr,
) -> (u8, Option<u8>) {
    let (mut s, st, rep) = login_connect(proxy, user.as_bytes(), pass.as_bytes(), echo).await;
    if rep == Some(0) {
        assert_echo(&mut s, b"through a system account").await;
    }
    (st, rep)
}

#[tokio::test]
async fn username_checks_yescrypt_and_sha512_shadow_hashes() {
    if !root_or_skip("username_checks_yescrypt_and_sha512_shadow_hashes") {
        return;
    }
    let y = Account::create(&unique("y"), "yes pw 1", "YESCRYPT");
    let s = Account::create(&unique("s"), "sha pw 2", "SHA512");
    assert!(y.hash().starts_with("$y$"), "{}", y.hash());
    assert!(s.hash().starts_with("$6$"), "{}", s.hash());
    let (h, proxy) = start(&conf("username", "", PASS_ALL)).await;
    let echo = echo_server("127.0.0.1").await;
    assert_eq!(
        status_of(proxy, &y.name, "yes pw 1", echo).await,
        (0, Some(0))
    );
    assert_eq!(
        status_of(proxy, &s.name, "sha pw 2", echo).await,
        (0, Some(0))
    );
    assert_eq!(status_of(proxy, &y.name, "yes pw 2", echo).await.0, 1);
    assert_eq!(status_of(proxy, &s.name, "sha pw 1", echo).await.0, 1);
    assert_eq!(
        status_of(proxy, "no-such-user-hasocks", "x", echo).await.0,
        1
    );
    let c = h.auth_stats();
    assert_eq!((c.successes, c.failures), (2, 3));
}

#[tokio::test]
async fn locked_account_never_passes() {
    if !root_or_skip("locked_account_never_passes") {
        return;
    }
    let a = Account::create(&unique("l"), "locked pw", "SHA512");
    assert!(std::process::Command::new("usermod")
        .args(["-L", &a.name])
        .status()
        .unwrap()
        .success());
    assert!(a.hash().starts_with('!'));
    let (_h, proxy) = start(&conf("username", "", PASS_ALL)).await;
    let echo = echo_server("127.0.0.1").await;
    assert_eq!(status_of(proxy, &a.name, "locked pw", echo).await.0, 1);
}

#[tokio::test]
async fn pam_username_with_pam_unix_right_and_wrong_for_both_hash_kinds() {
    if !root_or_skip("pam_username_with_pam_unix_right_and_wrong_for_both_hash_kinds") {
        return;
    }
    let y = Account::create(&unique("py"), "pam yes", "YESCRYPT");
    let s = Account::create(&unique("ps"), "pam sha", "SHA512");
    let svc = PamService::create(
        &unique("svc"),
        "auth required pam_unix.so\naccount required pam_unix.so\n",
    );
    let settings = format!("pam.servicename: {}", svc.name);
    let (_h, proxy) = start(&conf("pam.username", &settings, PASS_ALL)).await;
    let echo = echo_server("127.0.0.1").await;
    assert_eq!(
        status_of(proxy, &y.name, "pam yes", echo).await,
        (0, Some(0))
    );
    assert_eq!(
        status_of(proxy, &s.name, "pam sha", echo).await,
        (0, Some(0))
    );
    assert_eq!(status_of(proxy, &s.name, "pam yes", echo).await.0, 1);
}

#[tokio::test]
async fn pam_default_service_is_sockd_falling_back_to_other() {
    if !root_or_skip("pam_default_service_is_sockd_falling_back_to_other") {
        return;
    }
    if std::path::Path::new("/etc/pam.d/sockd").exists() {
        eprintln!("skipped: /etc/pam.d/sockd exists here; this test checks the fallback to other");
        return;
    }
    let a = Account::create(&unique("d"), "default svc", "YESCRYPT");
    let (_h, proxy) = start(&conf("pam.username", "", PASS_ALL)).await;
    let echo = echo_server("127.0.0.1").await;
    assert_eq!(
        status_of(proxy, &a.name, "default svc", echo).await,
        (0, Some(0))
    );
    assert_eq!(status_of(proxy, &a.name, "wrong", echo).await.0, 1);
}

#[tokio::test]
async fn pam_address_clientmethod_admits_by_client_address() {
    if !root_or_skip("pam_address_clientmethod_admits_by_client_address") {
        return;
    }
    let svc = PamService::create(
        &unique("adr"),
        "auth required pam_succeed_if.so quiet rhost = 127.0.0.1\naccount required pam_permit.so\n",
    );
    let text = format!(
        "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nsocksmethod: none\n\
         clientmethod: pam.address\npam.servicename: {}\n\
         client pass {{ from: 0/0 to: 0/0 }}\n{PASS_ALL}\n",
        svc.name
    );
    let (_h, proxy) = start(&text).await;
    let echo = echo_server("127.0.0.1").await;
    let (mut s, rep, _) = socks5(proxy, &request_ip(1, echo)).await;
    assert_eq!(rep, 0);
    assert_echo(&mut s, b"address passed").await;
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut s = sock.connect(proxy).await.unwrap();
    let _ = tokio::io::AsyncWriteExt::write_all(&mut s, &[5, 1, 0]).await;
    assert!(
        read_to_eof(&mut s).await.is_empty(),
        "127.0.0.2 is not admitted"
    );
}

#[tokio::test]
async fn two_hundred_bad_pam_logins_leave_other_sessions_served() {
    if !root_or_skip("two_hundred_bad_pam_logins_leave_other_sessions_served") {
        return;
    }
    let a = Account::create(&unique("f"), "flood target", "YESCRYPT");
    let b = Account::create(&unique("g"), "good one", "SHA512");
    let svc = PamService::create(
        &unique("fl"),
        "auth required pam_unix.so\naccount required pam_unix.so\n",
    );
    // pam.username for the flood (pam_unix sleeps ~2 s after each failure), username for
    // the good login, none for a plain session.
    let settings = format!("pam.servicename: {}", svc.name);
    let rules = "socks pass { from: 0/0 to: 0/0 }";
    let (h, proxy) = start(&conf("pam.username username none", &settings, rules)).await;
    let echo = echo_server("127.0.0.1").await;
    let name = a.name.clone();
    let flood: Vec<_> = (0..200)
        .map(|i| {
            let name = name.clone();
            tokio::spawn(async move {
                let sock = TcpSocket::new_v4().unwrap();
                sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
                let mut s: TcpStream = sock.connect(proxy).await.unwrap();
                greet_with(&mut s, &[2]).await;
                userpass(&mut s, name.as_bytes(), format!("bad {i}").as_bytes()).await
            })
        })
        .collect();
    wait_for(|| h.auth_stats().failures > 0, Duration::from_secs(20)).await;
    let (mut s, rep, _) = socks5(proxy, &request_ip(1, echo)).await;
    assert_eq!(rep, 0);
    assert_echo(&mut s, b"plain session served").await;
    // Several databases configured: 01 00 first, the rule's method decides; username comes
    // from the crypt pool, which the PAM flood does not hold.
    let (mut s, st, rep) = login_connect(proxy, b.name.as_bytes(), b"good one", echo).await;
    assert_eq!((st, rep), (0, Some(0)));
    assert_echo(&mut s, b"good login served").await;
    let done = h.auth_stats().failures;
    assert!(
        done < 200,
        "served while the flood was still being checked ({done} done)"
    );
    for f in flood {
        f.abort();
    }
}

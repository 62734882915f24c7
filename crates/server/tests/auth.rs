//! Authentication end to end over real sockets, with the password file method (no system
//! accounts needed): method selection and `05 FF`, RFC 1929 status and close, per-user
//! rules, Dante's deferred check with several databases, logs, counters, bad input, floods.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

// Made with `htpasswd -nbB -C 5 alice 'correct horse'`, `htpasswd -nbB -C 5 bob 'bobs
// secret'`, `htpasswd -nb5 carol 'carol pw'`, `htpasswd -nbB -C 8 slow 'the real one'`.
const HTPASSWD: &str = "alice:$2y$05$yif5A761wzthbpnkXLpxiu/6UU1iO6UMDV6WCGw0N7WsmtJxCyCe2\n\
bob:$2y$05$b1q6/72oqG99RytHg.jKZ.x3umHewlV2tHyH8nZMnWii6riFtaxue\n\
carol:$6$oV9eIveaBPxsKcBN$UYfveZjkCVcWSWUqHlN74jtg7oPOYKz7LXBBTdXLs9s.hRTOVTadLa0reOjXue1lXzhmvd7HYTcxlLolaE4i50\n\
slow:$2y$08$HuZuHXrtct8xclcy1ROLf..Z1HGyK8hfURaWIoCtfoVKl7tjGL4JC\n";

/// A fresh directory for one test's files.
fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hasocks-auth-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A config with the password file and `extra` settings, then `rules`.
fn conf(d: &std::path::Path, methods: &str, rules: &str) -> String {
    let pw = d.join("htpasswd");
    if !pw.exists() {
        std::fs::write(&pw, HTPASSWD).unwrap();
    }
    format!(
        "internal: 127.0.0.1 port = 0\nexternal: 127.0.0.1\nlogoutput: {}\n\
         socksmethod: {methods}\nhasocks.passwordfile: {}\n\
         client pass {{ from: 0/0 to: 0/0 }}\n{rules}\n",
        d.join("log").display(),
        pw.display()
    )
}

const PASS_ALL: &str = "socks pass {\nfrom: 0/0 to: 0/0\nlog: connect disconnect error\n}";

async fn log_text(d: &std::path::Path, needle: &str) -> String {
    wait_for_text(&d.join("log"), needle).await
}

#[tokio::test]
async fn right_password_connects_and_the_log_names_the_user() {
    let d = dir("right");
    let (h, proxy) = start(&conf(&d, "hasocks.passwordfile", PASS_ALL)).await;
    let echo = echo_server("127.0.0.1").await;
    let (mut s, st, rep) = login_connect(proxy, b"alice", b"correct horse", echo).await;
    assert_eq!((st, rep), (0, Some(0)));
    assert_echo(&mut s, b"hello through auth").await;
    drop(s);
    // sha512-crypt from `htpasswd -5` works as well as bcrypt.
    let (_s, st, rep) = login_connect(proxy, b"carol", b"carol pw", echo).await;
    assert_eq!((st, rep), (0, Some(0)));
    let log = log_text(&d, "hasocks.passwordfile%carol@127.0.0.1:").await;
    assert!(
        log.contains("hasocks.passwordfile%alice@127.0.0.1:"),
        "{log}"
    );
    assert_eq!(h.auth_stats().successes, 2);
    assert_eq!(h.auth_stats().failures, 0);
}

#[tokio::test]
async fn wrong_password_gets_status_1_then_close_and_is_logged_without_the_password() {
    let d = dir("wrong");
    let (h, proxy) = start(&conf(&d, "hasocks.passwordfile", PASS_ALL)).await;
    let echo = echo_server("127.0.0.1").await;
    let (mut s, st, _) = login_connect(proxy, b"alice", b"s3cret-guess", echo).await;
    assert_eq!(st, 1);
    assert!(read_to_eof(&mut s).await.is_empty(), "closed after 01 01");
    let (mut s, st, _) = login_connect(proxy, b"mallory", b"s3cret-guess", echo).await;
    assert_eq!(st, 1);
    read_to_eof(&mut s).await;
    let log = log_text(&d, "\"mallory\"").await;
    // Dante's line: the client rule's number, bytes read, the reason with the user name.
    assert!(
        log.contains("block(1) client: client 127.0.0.1:")
            && log.contains("error after reading 24 bytes in 0 seconds: password file authentication failed for user \"alice\""),
        "{log}"
    );
    assert!(!log.contains("s3cret-guess"), "{log}");
    assert_eq!(h.auth_stats().failures, 2);
}

#[tokio::test]
async fn client_offering_no_enabled_method_gets_ff() {
    let d = dir("ff");
    let (_h, proxy) = start(&conf(&d, "hasocks.passwordfile", PASS_ALL)).await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    assert_eq!(greet_with(&mut s, &[0, 1]).await, 0xff);
    assert!(read_to_eof(&mut s).await.is_empty());
    let log = log_text(&d, "no acceptable").await;
    assert!(
        log.contains("error after reading 4 bytes in 0 seconds: client offered no acceptable authentication method"),
        "{log}"
    );
}

#[tokio::test]
async fn server_order_decides_between_offered_methods() {
    let d = dir("order");
    let (_h, proxy) = start(&conf(&d, "hasocks.passwordfile none", PASS_ALL)).await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    assert_eq!(greet_with(&mut s, &[0, 2]).await, 2);
    let mut s = TcpStream::connect(proxy).await.unwrap();
    assert_eq!(greet_with(&mut s, &[0]).await, 0);
    let (_h2, proxy2) = start(&conf(&d, "none hasocks.passwordfile", PASS_ALL)).await;
    let mut s = TcpStream::connect(proxy2).await.unwrap();
    assert_eq!(greet_with(&mut s, &[2, 0]).await, 0);
}

#[tokio::test]
async fn user_rule_passes_one_user_and_blocks_another() {
    let d = dir("userrule");
    let rules = "socks pass {\nfrom: 0/0 to: 0/0\nuser: alice carol\nlog: connect error\n}\n\
                 socks block {\nfrom: 0/0 to: 0/0\nlog: connect error\n}";
    let (_h, proxy) = start(&conf(&d, "hasocks.passwordfile", rules)).await;
    let echo = echo_server("127.0.0.1").await;
    let (mut s, st, rep) = login_connect(proxy, b"alice", b"correct horse", echo).await;
    assert_eq!((st, rep), (0, Some(0)));
    assert_echo(&mut s, b"alice is in").await;
    // bob's password is right, but no rule lets bob through: REP 02.
    let (_s, st, rep) = login_connect(proxy, b"bob", b"bobs secret", echo).await;
    assert_eq!((st, rep), (0, Some(2)));
    let log = log_text(&d, "block(2)").await;
    assert!(log.contains("hasocks.passwordfile%bob@127.0.0.1:"), "{log}");
}

#[tokio::test]
async fn several_databases_answer_success_first_and_the_rule_method_decides() {
    // Two password databases (shadow and the file): Dante says 01 00 at once and checks
    // against the method of the socks rule.
    let d = dir("deferred");
    let rules =
        "socks pass {\nfrom: 0/0 to: 0/0\nsocksmethod: hasocks.passwordfile\nlog: connect error\n}";
    let (h, proxy) = start(&conf(&d, "username hasocks.passwordfile", rules)).await;
    let echo = echo_server("127.0.0.1").await;
    let (_s, st, rep) = login_connect(proxy, b"alice", b"not her password", echo).await;
    assert_eq!((st, rep), (0, Some(2)));
    let (mut s, st, rep) = login_connect(proxy, b"alice", b"correct horse", echo).await;
    assert_eq!((st, rep), (0, Some(0)));
    assert_echo(&mut s, b"checked late").await;
    let c = h.auth_stats();
    assert_eq!((c.successes, c.failures), (1, 1));
}

#[tokio::test]
async fn malformed_rfc1929_gets_status_1_and_close_and_others_are_served() {
    let d = dir("malformed");
    let (_h, proxy) = start(&conf(&d, "hasocks.passwordfile", PASS_ALL)).await;
    let echo = echo_server("127.0.0.1").await;
    for bad in [&[5u8, 5, 1][..], &[0, 5, b'a'], &[2, 0, 0]] {
        let mut s = TcpStream::connect(proxy).await.unwrap();
        assert_eq!(greet_with(&mut s, &[2]).await, 2);
        s.write_all(bad).await.unwrap();
        let rest = read_to_eof(&mut s).await;
        assert_eq!(rest, vec![1, 1], "status 1 then close for {bad:?}");
    }
    // Truncated: the client goes away mid-message; nothing to answer, nothing breaks.
    let mut s = TcpStream::connect(proxy).await.unwrap();
    assert_eq!(greet_with(&mut s, &[2]).await, 2);
    s.write_all(&[1, 5, b'a', b'l']).await.unwrap();
    s.shutdown().await.unwrap();
    assert!(read_to_eof(&mut s).await.is_empty());
    let (mut s, st, rep) = login_connect(proxy, b"alice", b"correct horse", echo).await;
    assert_eq!((st, rep), (0, Some(0)));
    assert_echo(&mut s, b"still fine").await;
}

#[tokio::test]
async fn names_and_passwords_of_255_bytes_work() {
    let d = dir("long");
    let user = "u".repeat(255);
    // 100 x "p", 77 x "ä", "x": 255 bytes; `mkpasswd -m sha512crypt -s -R 1000`.
    let mut pw = "p".repeat(100);
    pw.push_str(&"ä".repeat(77));
    pw.push('x');
    let line = format!("{user}:$6$rounds=1000$qK9BhjMRPsz8FZfG$cuxTKNVUeGOO.8o7w9Bt8Z8mmXALrCygKa03c4LBtXgUxWhAebT.3jHDX.GWKduCvIErZGjQ77g/D2i4bf/WF1\n");
    std::fs::write(d.join("htpasswd"), line).unwrap();
    let (_h, proxy) = start(&conf(&d, "hasocks.passwordfile", PASS_ALL)).await;
    let echo = echo_server("127.0.0.1").await;
    let (mut s, st, rep) = login_connect(proxy, user.as_bytes(), pw.as_bytes(), echo).await;
    assert_eq!((st, rep), (0, Some(0)));
    assert_echo(&mut s, b"long names").await;
    let (_s, st, _) = login_connect(proxy, user.as_bytes(), &pw.as_bytes()[..254], echo).await;
    assert_eq!(st, 1);
}

#[tokio::test]
async fn socks4_userid_is_the_user_name_with_hasocks_socks4userid() {
    let d = dir("v4");
    let rules = "socks pass {\nfrom: 0/0 to: 0/0\nuser: tester\n}";
    let (_h, proxy) = start(&conf(&d, "hasocks.socks4userid", rules)).await;
    let echo = echo_server("127.0.0.1").await;
    let SocketAddr::V4(t) = echo else { panic!() };
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(&socks4_request(1, t)).await.unwrap(); // USERID "tester"
    assert_eq!(read_v4_reply(&mut s).await.0, 90);
    assert_echo(&mut s, b"v4 named").await;
    let mut other = socks4_request(1, t);
    let at = other.len() - 7;
    other.splice(at.., b"nobody\0".iter().copied());
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(&other).await.unwrap();
    assert_eq!(read_v4_reply(&mut s).await.0, 91);
}

#[tokio::test]
async fn a_flood_of_bad_logins_leaves_other_sessions_served() {
    let d = dir("flood");
    let (h, proxy) = start(&conf(&d, "hasocks.passwordfile none", PASS_ALL)).await;
    let echo = echo_server("127.0.0.1").await;
    // 200 wrong guesses at once from 127.0.0.2, against a slower hash (bcrypt cost 8).
    let flood: Vec<_> = (0..200)
        .map(|i| {
            tokio::spawn(async move {
                let sock = tokio::net::TcpSocket::new_v4().unwrap();
                sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
                let mut s = sock.connect(proxy).await.unwrap();
                assert_eq!(greet_with(&mut s, &[2]).await, 2);
                userpass(&mut s, b"slow", format!("guess {i}").as_bytes()).await
            })
        })
        .collect();
    wait_for(|| h.auth_stats().failures > 0, Duration::from_secs(10)).await;
    // While the flood is being checked, a session without authentication and one with
    // the right password, from another address, are both served.
    let (mut s, rep, _) = socks5(proxy, &request_ip(1, echo)).await;
    assert_eq!(rep, 0);
    assert_echo(&mut s, b"not starved").await;
    let (mut s, st, rep) = login_connect(proxy, b"carol", b"carol pw", echo).await;
    assert_eq!((st, rep), (0, Some(0)));
    assert_echo(&mut s, b"good login not starved").await;
    assert!(
        h.auth_stats().failures < 200,
        "the other sessions were served before the flood was over"
    );
    for f in flood {
        assert_eq!(f.await.unwrap(), 1);
    }
    assert_eq!(h.auth_stats().failures, 200);
}

#[tokio::test]
async fn reload_rereads_the_password_file_and_keeps_the_old_one_when_unreadable() {
    let d = dir("reload");
    let text = conf(&d, "hasocks.passwordfile", PASS_ALL);
    let (h, proxy) = start(&text).await;
    let echo = echo_server("127.0.0.1").await;
    // Only carol is left in the file: alice is refused after the reload.
    let carol = HTPASSWD.lines().nth(2).unwrap();
    std::fs::write(d.join("htpasswd"), format!("{carol}\n")).unwrap();
    let cfg = hasocks_conf::sockd::parse(&text, std::path::Path::new("t.conf")).unwrap();
    h.reload(cfg.clone()).await.unwrap();
    let (_s, st, _) = login_connect(proxy, b"alice", b"correct horse", echo).await;
    assert_eq!(st, 1);
    // Gone: the reload keeps the file it read before, and says so.
    std::fs::remove_file(d.join("htpasswd")).unwrap();
    h.reload(cfg).await.unwrap();
    let (_s, st, rep) = login_connect(proxy, b"carol", b"carol pw", echo).await;
    assert_eq!((st, rep), (0, Some(0)));
    let log = log_text(&d, "keeping the password file read before").await;
    assert!(log.contains("(1 users)"), "{log}");
}

#[tokio::test]
async fn successes_are_remembered_unless_hasocks_auth_cache_is_0() {
    let d = dir("cache");
    let echo = echo_server("127.0.0.1").await;
    for (methods, hits) in [
        ("hasocks.passwordfile", 1),
        ("hasocks.passwordfile\nhasocks.auth.cache: 0", 0),
    ] {
        let (h, proxy) = start(&conf(&d, methods, PASS_ALL)).await;
        for _ in 0..2 {
            let (_s, st, rep) = login_connect(proxy, b"alice", b"correct horse", echo).await;
            assert_eq!((st, rep), (0, Some(0)));
        }
        // A wrong password is never answered from the cache.
        let (_s, st, _) = login_connect(proxy, b"alice", b"correct horsf", echo).await;
        assert_eq!(st, 1);
        let c = h.auth_stats();
        assert_eq!(
            (c.successes, c.cache_hits, c.failures),
            (2, hits, 1),
            "{methods}"
        );
    }
}

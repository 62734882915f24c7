//! relayd.conf parsing: the seed's configurations, the reference example, macros, includes,
//! backups, every check form, and each error class at its exact position.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use hasocks_conf::relayd::{key_from_str, load, parse, Check, LogConnections, Mode, RelaydConfig};
use hasocks_conf::ConfError;

fn ok(text: &str) -> RelaydConfig {
    match parse(text, Path::new("relayd.conf"), &[]) {
        Ok(c) => c,
        Err(e) => panic!("unexpected error: {e}\n--- config:\n{text}"),
    }
}

fn err(text: &str) -> ConfError {
    match parse(text, Path::new("relayd.conf"), &[]) {
        Ok(c) => panic!("expected an error, got {c:?}\n--- config:\n{text}"),
        Err(e) => e,
    }
}

/// Asserts `text` fails at `line:col` with a message containing `needle`.
fn err_at(text: &str, line: u32, col: u32, needle: &str) {
    let e = err(text);
    assert_eq!((e.line, e.col), (line, col), "wrong position for: {e}");
    assert!(
        e.message.contains(needle),
        "message {:?} lacks {needle:?}",
        e.message
    );
    assert_eq!(
        e.to_string(),
        format!("relayd.conf:{line}:{col}: {}", e.message)
    );
}

/// A fresh directory under the system temp dir, unique to this test run.
fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("hasocks-relayd-{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const SEED_TCP: &str = r#"table <sockdhosts> { 10.0.1.2, 10.0.1.3 }
relaysockd_port="1080"
relaysockd_addr="10.0.0.1"

relay "relaysockd" {
   listen on $relaysockd_addr port $relaysockd_port
   forward to <sockdhosts> port 1090 mode loadbalance check tcp
}
"#;

const SEED_SCRIPT: &str = r#"table <sockdhosts> { 10.0.1.2, 10.0.1.3 }
relaysockd_port="1080"
relaysockd_addr="10.0.0.1"

relay "relaysockd" {
   listen on $relaysockd_addr port $relaysockd_port
   forward to <sockdhosts> port 1080 mode loadbalance check script "/usr/local/bin/relaydsockdcheck.sh"
}
"#;

const REFERENCE: &str = r#"shared="192.0.2.10"
table <socks> { 10.0.0.11, 10.0.0.12 retry 1 }
relay "socks" {
    listen on $shared port 1080
    session timeout 86400
    forward to <socks> port 1080 mode loadbalance timeout 15000 \
        check script "/usr/local/bin/relaydsockdcheck.sh"
}
"#;

#[test]
fn seed_tcp_check_config_parses() {
    let c = ok(SEED_TCP);
    assert_eq!(c.tables.len(), 1);
    let t = &c.tables[0];
    assert_eq!(t.name, "sockdhosts");
    let hosts: Vec<&str> = t.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(hosts, ["10.0.1.2", "10.0.1.3"]);
    assert_eq!(
        (t.interval_s, t.timeout_ms, t.line, t.disabled),
        (10, 200, 1, false)
    );
    let r = &c.relays[0];
    assert_eq!(r.name, "relaysockd");
    assert_eq!(r.line, 5);
    assert_eq!(r.listens.len(), 1);
    assert_eq!(
        (r.listens[0].addr.as_str(), r.listens[0].port),
        ("10.0.0.1", 1080)
    );
    let f = &r.forwards[0];
    assert_eq!((f.table.as_str(), f.port, f.line), ("sockdhosts", 1090, 7));
    assert_eq!(f.mode, Mode::LoadBalance(None));
    assert_eq!(f.check, Some(Check::Tcp));
    assert_eq!(r.session_timeout_s, 600);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn seed_script_check_config_parses() {
    let c = ok(SEED_SCRIPT);
    let f = &c.relays[0].forwards[0];
    assert_eq!(f.port, 1080);
    assert_eq!(
        f.check,
        Some(Check::Script(PathBuf::from(
            "/usr/local/bin/relaydsockdcheck.sh"
        )))
    );
}

#[test]
fn seed_page_with_the_lost_table_name_says_how_to_write_it() {
    let broken = SEED_TCP.replace("table <sockdhosts> {", "table  {");
    err_at(
        &broken,
        1,
        8,
        "a table needs a <name>, e.g. table <sockdhosts> { ... }",
    );
    err_at("table foo { 10.0.0.1 }\n", 1, 7, "a table needs a <name>");
    err_at("table <> { 10.0.0.1 }\n", 1, 8, "a table needs a <name>");
}

#[test]
fn seed_page_forward_without_table_says_how_to_write_it() {
    let text = "table <t> { 10.0.0.1 }\nrelay r {\n listen on 1.2.3.4 port 1080\n forward to  port 1090 mode loadbalance check tcp\n}\n";
    err_at(text, 4, 14, "forward to needs a <table>");
    let text = "table <t> { 10.0.0.1 }\nrelay r {\n listen on 1.2.3.4 port 1080\n forward to 10.0.0.2 port 1090\n}\n";
    err_at(text, 4, 13, "single address is not supported");
}

#[test]
fn reference_example_parses_with_a_timeout_warning() {
    let c = ok(REFERENCE);
    assert_eq!(c.tables[0].hosts[1].retry, 1);
    assert_eq!(c.tables[0].hosts[0].retry, 0);
    let r = &c.relays[0];
    assert_eq!(r.listens[0].addr, "192.0.2.10");
    assert_eq!(r.session_timeout_s, 86400);
    let f = &r.forwards[0];
    assert_eq!(f.timeout_ms, Some(15000));
    assert_eq!(f.mode, Mode::LoadBalance(None));
    assert!(
        matches!(&f.check, Some(Check::Script(p)) if p == Path::new("/usr/local/bin/relaydsockdcheck.sh"))
    );
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert_eq!((c.warnings[0].line, c.warnings[0].col), (6, 59));
}

#[test]
fn override_macro_wins_over_the_files_definition() {
    let o = [("relaysockd_addr".to_string(), "127.0.0.9".to_string())];
    let c = parse(SEED_TCP, Path::new("relayd.conf"), &o).unwrap();
    assert_eq!(c.relays[0].listens[0].addr, "127.0.0.9");
}

#[test]
fn macros_are_not_expanded_inside_quotes() {
    let c = ok("p=\"/bin/x\"\ntable <t> { h }\nrelay \"$p\" {\n listen on ::1 port 1\n forward to <t> check script \"$p\"\n}\n");
    assert_eq!(c.relays[0].name, "$p");
    assert_eq!(
        c.relays[0].forwards[0].check,
        Some(Check::Script(PathBuf::from("$p")))
    );
}

#[test]
fn macros_may_hold_several_hosts_and_unquoted_values() {
    let c = ok("hosts=\"10.0.0.1 10.0.0.2 retry 3\"\nlport = 1090\ntable <t> { $hosts, 10.0.0.3 }\nrelay r {\n listen on 0.0.0.0 port $lport\n forward to <t>\n}\n");
    let h = &c.tables[0].hosts;
    assert_eq!(h.len(), 3);
    assert_eq!(h[1].retry, 3);
    assert_eq!(c.relays[0].forwards[0].port, 1090);
}

#[test]
fn macro_errors_name_the_macro() {
    err_at(
        "table <t> { $nope }\n",
        1,
        13,
        "macro \"nope\" is not defined",
    );
    err_at("x=1\n  table=\"a\"\n", 2, 3, "\"table\" is a reserved word");
}

#[test]
fn include_is_relative_to_the_including_file() {
    let dir = temp_dir("include");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("sub/tables.conf"),
        "addr=\"10.9.9.9\"\ntable <t> { 10.0.0.1 }",
    )
    .unwrap();
    let main = dir.join("relayd.conf");
    std::fs::write(
        &main,
        "include \"sub/tables.conf\"\nrelay r {\n listen on $addr port socks\n forward to <t>\n}\n",
    )
    .unwrap();
    let c = load(&main, &[]).unwrap();
    assert_eq!(c.tables[0].hosts[0].name, "10.0.0.1");
    assert_eq!(c.relays[0].listens[0].addr, "10.9.9.9");
    assert_eq!(c.relays[0].listens[0].port, 1080);

    // Errors inside an included file name that file.
    std::fs::write(dir.join("sub/tables.conf"), "\n  router x\n").unwrap();
    let e = load(&main, &[]).unwrap_err();
    assert_eq!(e.file, dir.join("sub/tables.conf"));
    assert_eq!((e.line, e.col), (2, 3));

    // A file including itself stops with an error rather than looping.
    std::fs::write(&main, "include \"relayd.conf\"\n").unwrap();
    assert!(load(&main, &[])
        .unwrap_err()
        .message
        .contains("nested too deeply"));

    // A missing include is an error at the include.
    std::fs::write(&main, "\ninclude \"missing.conf\"\n").unwrap();
    let e = load(&main, &[]).unwrap_err();
    assert_eq!((e.line, e.col), (2, 1));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn later_forwards_are_backups_in_order() {
    let c = ok("table <a> { 10.0.0.1 }\ntable <b> disable { 10.0.0.2 port 1081 }\nrelay r {\n listen on 127.0.0.1 port 1080\n listen on ::1 port 1082\n forward to <a> port 1090 check tcp\n forward to <b>\n}\n");
    let r = &c.relays[0];
    assert_eq!(r.listens.len(), 2);
    assert_eq!(
        r.forwards
            .iter()
            .map(|f| f.table.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(
        r.forwards[1].port, 1080,
        "default port is the first listen port"
    );
    assert!(c.tables[1].disabled);
    assert_eq!(c.tables[1].hosts[0].port, Some(1081));
}

#[test]
fn every_check_form_parses() {
    let check = |c: &str| {
        let text = format!(
            "table <t> {{ h }}\nrelay r {{\n listen on a port 1\n forward to <t> check {c}\n}}\n"
        );
        ok(&text).relays[0].forwards[0].check.clone().unwrap()
    };
    assert_eq!(check("tcp"), Check::Tcp);
    assert_eq!(
        check("send \"PING\\r\\n\" expect \"+PONG*\""),
        Check::Send {
            send: b"PING\\r\\n".to_vec(),
            expect: "+PONG*".into()
        }
    );
    assert_eq!(
        check("send nothing expect \"SSH-*\""),
        Check::Send {
            send: vec![],
            expect: "SSH-*".into()
        }
    );
    assert_eq!(
        check("send \"\" expect \"x\""),
        Check::Send {
            send: vec![],
            expect: "x".into()
        }
    );
    assert_eq!(
        check("binary send \"050100\" expect \"0500\""),
        Check::Binary {
            send: vec![5, 1, 0],
            expect: vec![5, 0]
        }
    );
    assert_eq!(check("script \"/x/y.sh\""), Check::Script("/x/y.sh".into()));
    assert_eq!(
        check("socks"),
        Check::Socks {
            target: None,
            auth: None
        }
    );
    assert_eq!(
        check("socks connect 10.0.1.1 port 80"),
        Check::Socks {
            target: Some(("10.0.1.1".into(), 80)),
            auth: None
        }
    );
    assert_eq!(
        check("socks user \"u\" password \"p w\" connect \"::1\" port http"),
        Check::Socks {
            target: Some(("::1".into(), 80)),
            auth: Some(("u".into(), "p w".into()))
        }
    );
}

#[test]
fn every_mode_and_key_form_parses() {
    let mode = |m: &str| {
        let text = format!("table <t> {{ h }}\nrelay r {{\n listen on a port 1\n forward to <t> mode {m} check tcp\n}}\n");
        ok(&text).relays[0].forwards[0].mode.clone()
    };
    let hex_key: [u8; 16] = [0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(mode("roundrobin"), Mode::RoundRobin);
    assert_eq!(mode("random"), Mode::Random);
    assert_eq!(mode("least-states"), Mode::LeastStates);
    assert_eq!(mode("loadbalance"), Mode::LoadBalance(None));
    assert_eq!(
        mode("loadbalance \"secret\""),
        Mode::LoadBalance(Some(key_from_str("secret")))
    );
    assert_eq!(
        mode("source-hash secret"),
        Mode::SourceHash(Some(key_from_str("secret")))
    );
    assert_eq!(
        mode("hash 0xff000000000000000000000000000001"),
        Mode::Hash(Some(hex_key))
    );
    err_at(
        "table <t> { h }\nrelay r {\n listen on a port 1\n forward to <t> mode hash 0x12\n}\n",
        4,
        27,
        "32 hex digits",
    );
    err_at(
        "table <t> { h }\nrelay r {\n listen on a port 1\n forward to <t> mode fastest\n}\n",
        4,
        22,
        "unknown mode",
    );
}

#[test]
fn options_come_in_any_order_and_globals_apply() {
    let c = ok("interval 5\ntimeout 1000\nlog host checks\nlog connection errors\nsocket \"/tmp/r.sock\"\nprefork 4\ntable <t> { h }\nrelay r {\n listen on a port 1\n forward to <t> check tcp interval 10 timeout 300 port 2 mode random\n session timeout 0\n disable\n send proxy-v2\n}\n");
    assert_eq!(
        (c.interval_s, c.timeout_ms, c.log_host_checks),
        (5, 1000, true)
    );
    assert_eq!(c.log_connections, LogConnections::Errors);
    assert_eq!(c.socket, Some(PathBuf::from("/tmp/r.sock")));
    assert_eq!(c.prefork, Some(4));
    let r = &c.relays[0];
    assert!(r.disabled && r.send_proxy_v2);
    assert_eq!(r.session_timeout_s, 0);
    let f = &r.forwards[0];
    assert_eq!(
        (f.interval_s, f.timeout_ms, f.port, f.mode.clone()),
        (Some(10), Some(300), 2, Mode::Random)
    );
    let c = ok("log connection\nlog host checks\nlog state changes\n");
    assert_eq!(
        (c.log_connections, c.log_host_checks),
        (LogConnections::All, false)
    );
}

#[test]
fn globals_after_a_table_do_not_apply_to_it() {
    let c = ok("table <a> { h }\ninterval 20\ntimeout 500\ntable <b> { h }\n");
    assert_eq!((c.tables[0].interval_s, c.tables[0].timeout_ms), (10, 200));
    assert_eq!((c.tables[1].interval_s, c.tables[1].timeout_ms), (20, 500));
    assert_eq!(
        c.warnings.len(),
        2,
        "unused tables are remarked: {:?}",
        c.warnings
    );
}

#[test]
fn hosts_may_be_separated_by_commas_spaces_or_newlines() {
    let c = ok("table <t> {\n  a.example, b.example c.example\n  \"d\" retry 2 port 99,\n}\n");
    let names: Vec<&str> = c.tables[0].hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["a.example", "b.example", "c.example", "d"]);
    assert_eq!(c.tables[0].hosts[3].line, 3);
    assert_eq!(
        (c.tables[0].hosts[3].retry, c.tables[0].hosts[3].port),
        (2, Some(99))
    );
}

#[test]
fn table_errors_are_at_the_offending_token() {
    err_at("table <t> { a }\ntable <t> { b }\n", 2, 7, "defined twice");
    err_at("table <t> {\n}\n", 2, 1, "no hosts");
    let many: Vec<String> = (1..=33).map(|i| format!("10.0.0.{i}")).collect();
    let text = format!("table <t> {{ {} }}\n", many.join(", "));
    let col = 13 + many[..32].iter().map(|h| h.len() as u32 + 2).sum::<u32>();
    err_at(&text, 1, col, "more than 32 hosts");
    err_at(
        "table <t> { a parent 1 }\n",
        1,
        15,
        "keyword \"parent\" is not supported by hasocks",
    );
    err_at(
        "table <t> { a priority 1 }\n",
        1,
        15,
        "keyword \"priority\" is not supported",
    );
    err_at(
        "table <t> { a ip ttl 1 }\n",
        1,
        15,
        "keyword \"ip ttl\" is not supported",
    );
    err_at("table <t> { a retry x }\n", 1, 21, "retry needs a number");
    err_at("table <t> { a\n", 2, 1, "not closed");
}

#[test]
fn relay_errors_are_at_the_offending_token() {
    let head = "table <t> { h }\n";
    err_at(
        &format!("{head}relay r {{\n forward to <t>\n}}\n"),
        2,
        1,
        "no \"listen on\" line",
    );
    err_at(
        &format!("{head}relay r {{\n listen on a port 1\n}}\n"),
        2,
        1,
        "no \"forward to\" line",
    );
    err_at(
        &format!("{head}relay r {{\n listen on a port 1\n forward to <u>\n}}\n"),
        4,
        13,
        "table <u> is not defined",
    );
    err_at(
        &format!("{head}relay r {{\n listen on a port 1\n forward to <t> retry 2\n}}\n"),
        4,
        17,
        "keyword \"retry\" is not supported by hasocks",
    );
    err_at(
        &format!("{head}relay r {{\n listen on a port 1\n forward to <t> interval 15\n}}\n"),
        4,
        26,
        "multiple of the global interval",
    );
    err_at(
        &format!(
            "{head}relay r {{\n listen on a port 1\n forward to <t> mode random mode hash\n}}\n"
        ),
        4,
        29,
        "given twice",
    );
    err_at(
        &format!("{head}relay r {{\n listen on a port 0\n forward to <t>\n}}\n"),
        3,
        19,
        "out of range",
    );
    err_at(&format!("{head}relay r {{\n listen on a port 1\n forward to <t>\n session timeout 2147483648\n}}\n"), 5, 18, "out of range");
    err_at(
        &format!("{head}relay r {{\n listen on a port 1\n forward to <t>\n}}\nrelay r {{\n}}\n"),
        6,
        7,
        "defined twice",
    );
    err_at(
        &format!("{head}relay {{\n}}\n"),
        2,
        7,
        "a relay needs a name",
    );
    err_at(
        &format!("{head}relay r {{\n listen on a port 1\n bogus\n}}\n"),
        4,
        2,
        "unknown keyword \"bogus\"",
    );
    err_at(&format!("{head}relay r {{\n listen on a port 1\n forward to <t> check binary send \"123\" expect \"00\"\n}}\n"), 4, 35, "even number of hex digits");
}

#[test]
fn unsupported_relayd_keywords_are_named() {
    let head = "table <t> { h }\n";
    let relay = |line: &str| format!("{head}relay r {{\n listen on a port 1\n {line}\n}}\n");
    err_at(
        "router \"www\" {\n}\n",
        1,
        1,
        "keyword \"router\" is not supported by hasocks",
    );
    err_at(
        "\nhttp protocol \"p\" {\n}\n",
        2,
        1,
        "\"http protocol\" is layer 7 and not supported: hasocks relays TCP",
    );
    err_at(
        "router \"r\" {\n}\n",
        1,
        1,
        "keyword \"router\" is not supported",
    );
    err_at(
        "dns protocol \"d\" {\n}\n",
        1,
        1,
        "\"dns protocol\" is layer 7 and not supported",
    );
    err_at(
        "tls protocol \"d\" {\n}\n",
        1,
        1,
        "keyword \"tls\" is not supported",
    );
    err_at("snmp trap\n", 1, 1, "keyword \"snmp\" is not supported");
    err_at("agentx\n", 1, 1, "keyword \"agentx\" is not supported");
    err_at("demote carp\n", 1, 1, "keyword \"demote\" is not supported");
    err_at(
        &relay("protocol \"p\""),
        4,
        11,
        "protocol \"p\" is not defined (define it before the relay)",
    );
    err_at(
        &relay("transparent forward to <t>"),
        4,
        2,
        "keyword \"transparent\" is not supported",
    );
    err_at(
        &relay("forward with tls to <t>"),
        4,
        10,
        "keyword \"forward with tls\" is not supported",
    );
    err_at(
        &relay("forward to destination"),
        4,
        13,
        "keyword \"forward to destination\" is not supported",
    );
    err_at(
        &relay("forward to nat lookup"),
        4,
        13,
        "keyword \"nat lookup\" is not supported",
    );
    err_at(
        &relay("forward to <t> demote carp"),
        4,
        17,
        "keyword \"demote\" is not supported",
    );
    err_at(
        &relay("forward to <t> check icmp"),
        4,
        23,
        "keyword \"check icmp\" is not supported",
    );
    err_at(
        &relay("forward to <t> check tls"),
        4,
        23,
        "keyword \"check tls\" is not supported",
    );
    err_at(
        &relay("forward to <t> check http \"/\" code 200"),
        4,
        23,
        "keyword \"check http\" is not supported",
    );
    err_at(
        &relay("forward to <t> check https \"/\" code 200"),
        4,
        23,
        "keyword \"check https\" is not supported",
    );
    err_at(
        &relay("forward to <t> check send \"a\" expect \"b\" tls"),
        4,
        43,
        "is not supported",
    );
    err_at(
        &format!("{head}relay r {{\n listen on a port 1 tls\n forward to <t>\n}}\n"),
        3,
        21,
        "keyword \"listen on ... tls\" is not supported",
    );
}

#[test]
fn unknown_words_and_global_errors() {
    err_at("\n  frobnicate 3\n", 2, 3, "unknown keyword \"frobnicate\"");
    err_at("interval 0\n", 1, 10, "out of range");
    err_at("timeout 20000\n", 1, 9, "exceeds the global interval");
    err_at(
        "interval 1\ntimeout 1500\ninterval 2\ntable <t> { h }\ninterval 1\n",
        2,
        9,
        "exceeds",
    );
    err_at("log everything\n", 1, 5, "after \"log\"");
    err_at("interval 5 6\n", 1, 12, "at the end of the statement");
    err_at("\"str\"\n", 1, 1, "expected a keyword");
    err_at("x = \"unterminated\n", 1, 5, "unterminated quoted string");
}

#[test]
fn timeout_up_to_the_interval_is_accepted() {
    let c = ok("timeout 15000\ninterval 15\n");
    assert_eq!((c.interval_s, c.timeout_ms), (15, 15000));
}

#[test]
fn crlf_line_endings_mean_the_same() {
    let crlf = REFERENCE.replace('\n', "\r\n");
    let (a, b) = (ok(REFERENCE), ok(&crlf));
    assert_eq!(a, b);
}

#[test]
fn hasocks_admin_names_its_listener_and_may_be_given_once() {
    let c = ok("hasocks.admin listen on 127.0.0.1 port 9100\n");
    let a = c.admin.expect("admin listener");
    assert_eq!((a.addr.as_str(), a.port), ("127.0.0.1", 9100));
    err_at(
        "hasocks.admin listen on 127.0.0.1 port 9100\nhasocks.admin listen on ::1 port 9\n",
        2,
        1,
        "given twice",
    );
    err_at(
        "hasocks.admin on 127.0.0.1 port 9100\n",
        1,
        15,
        "expected \"listen\"",
    );
}

#[test]
fn hasocks_freebind_is_yes_by_default_and_takes_yes_or_no() {
    assert!(ok("").freebind);
    assert!(!ok("hasocks.freebind no\n").freebind);
    err_at("hasocks.freebind maybe\n", 1, 18, "yes or no");
}

#[test]
fn hasocks_limits_and_first_byte_timeout_parse_globally_and_per_relay() {
    let c = ok("hasocks.maxconn 500\nhasocks.maxconn.source 0\nhasocks.timeout.firstbyte 0\n\
                table <t> { h }\nrelay r {\n listen on a port 1\n hasocks.timeout.firstbyte 5\n forward to <t>\n}\n");
    assert_eq!(
        (
            c.max_sessions,
            c.max_sessions_per_source,
            c.first_byte_timeout_s
        ),
        (Some(500), Some(0), 0)
    );
    assert_eq!(c.relays[0].first_byte_timeout_s, Some(5));
    assert_eq!(ok("").first_byte_timeout_s, 30);
    err_at("hasocks.maxconn 0\n", 1, 17, "out of range");
}

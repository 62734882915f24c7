//! relayd's TCP `protocol` blocks: every accepted form with its meaning, relayd's example TCP
//! relay, and each refusal (layer 7, `no sack`, unknown names) at its exact position.

use std::path::{Path, PathBuf};

use hasocks_conf::relayd::{load, parse, RelaydConfig, TcpOptions};
use hasocks_conf::ConfError;

const HEAD: &str = "table <t> { 10.0.0.1 }\n";

fn parsed(text: &str) -> Result<RelaydConfig, ConfError> {
    parse(text, Path::new("relayd.conf"), &[])
}

/// The options the relay `r` gets from `protocol` text followed by a relay that uses `p`.
fn options(protocol: &str) -> TcpOptions {
    let text = format!(
        "{HEAD}{protocol}\nrelay r {{\n listen on 127.0.0.1 port 1080\n protocol p\n forward to <t>\n}}\n"
    );
    match parsed(&text) {
        Ok(c) => c.relays[0].tcp,
        Err(e) => panic!("{e}\n--- config:\n{text}"),
    }
}

/// Asserts `text` fails at `line:col` with a message containing `needle`.
fn err_at(text: &str, line: u32, col: u32, needle: &str) {
    let e = parsed(text).expect_err(text);
    assert_eq!((e.line, e.col), (line, col), "wrong position for: {e}");
    assert!(e.message.contains(needle), "{e} lacks {needle:?}");
}

#[test]
fn relayds_example_tcp_relay_is_accepted_with_its_options() {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/relayd/sshtcp.conf");
    let c = load(&file, &[]).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.protocols.len(), 1);
    assert_eq!(
        (c.protocols[0].name.as_str(), c.protocols[0].line),
        ("sshtcp", 11)
    );
    let r = &c.relays[0];
    assert_eq!(r.protocol.as_deref(), Some("sshtcp"));
    assert_eq!(
        r.tcp,
        TcpOptions {
            nodelay: Some(true),
            socket_buffer: Some(65536),
            ..TcpOptions::DEFAULT
        }
    );
    assert_eq!((r.listens[0].port, r.forwards[0].port), (2222, 22));
}

#[test]
fn every_tcp_option_has_its_meaning() {
    let all = options(
        "protocol p {\n tcp { backlog 64, nodelay, sack, socket buffer 131072, no splice, ip ttl 7, ip minttl 250 }\n}",
    );
    assert_eq!(
        all,
        TcpOptions {
            backlog: Some(64),
            nodelay: Some(true),
            socket_buffer: Some(131_072),
            splice: false,
            ip_ttl: Some(7),
            ip_minttl: Some(250),
        }
    );
    assert_eq!(
        options("protocol p { tcp no nodelay }").nodelay,
        Some(false)
    );
    assert!(options("protocol p { tcp splice }").splice);
    assert_eq!(options("protocol p"), TcpOptions::DEFAULT);
}

#[test]
fn options_may_be_one_per_line_one_per_tcp_line_or_space_separated() {
    let want = options("protocol p { tcp { nodelay, backlog 5, ip ttl 9 } }");
    for form in [
        "protocol p {\n tcp {\n  nodelay\n  backlog 5\n  ip ttl 9\n }\n}",
        "protocol p {\n tcp nodelay\n tcp backlog 5\n tcp ip ttl 9\n}",
        "protocol p {\n tcp { nodelay backlog 5 ip ttl 9 }\n}",
        "tcp protocol p {\n tcp { nodelay,\n backlog 5, ip ttl 9 }\n}",
        "protocol \"p\" {\n\n tcp { nodelay, backlog 5 }\n tcp ip ttl 9\n}",
    ] {
        assert_eq!(options(form), want, "{form}");
    }
}

#[test]
fn layer7_protocols_are_refused_with_the_reason() {
    err_at(
        "\n  http protocol web { }\n",
        2,
        3,
        "\"http protocol\" is layer 7 and not supported: hasocks relays TCP",
    );
    err_at("dns protocol d\n", 1, 1, "\"dns protocol\" is layer 7");
    err_at("https x\n", 1, 1, "\"https\" is layer 7");
    err_at(
        "protocol p {\n  http { headerlen 8192 }\n}\n",
        2,
        3,
        "\"http\" is layer 7",
    );
    err_at(
        "protocol p {\n match request header set \"X\" value \"y\"\n}\n",
        2,
        2,
        "\"match\" is layer 7",
    );
    err_at(
        "protocol p {\n tls { no tlsv1.0 }\n}\n",
        2,
        2,
        "\"tls\" is not supported by hasocks",
    );
}

#[test]
fn options_without_a_linux_meaning_or_bad_values_are_refused_at_their_place() {
    err_at(
        "protocol p {\n tcp { nodelay, no sack }\n}\n",
        2,
        17,
        "\"no sack\" is not supported: Linux has no per-socket SACK switch",
    );
    err_at(
        "protocol p {\n tcp { ip ttl 0 }\n}\n",
        2,
        15,
        "out of range (1-255)",
    );
    err_at(
        "protocol p {\n tcp { ip minttl 256 }\n}\n",
        2,
        18,
        "out of range (1-255)",
    );
    err_at(
        "protocol p {\n tcp { ip tos 4 }\n}\n",
        2,
        11,
        "expected ttl or minttl",
    );
    err_at(
        "protocol p {\n tcp { backlog 65536 }\n}\n",
        2,
        16,
        "out of range",
    );
    err_at(
        "protocol p {\n tcp { socket 4096 }\n}\n",
        2,
        15,
        "expected \"buffer\"",
    );
    err_at(
        "protocol p {\n tcp { nodelay, window 4 }\n}\n",
        2,
        17,
        "expected a tcp option",
    );
    err_at(
        "protocol p {\n tcp { no delay }\n}\n",
        2,
        11,
        "expected nodelay, sack or splice",
    );
    err_at("protocol p {\n tcp { nodelay\n}\n", 4, 1, "not closed");
    err_at(
        "protocol p {\n tcp nodelay\n",
        3,
        1,
        "protocol \"p\" is not closed",
    );
    err_at(
        "protocol p\nprotocol p\n",
        2,
        10,
        "defined twice (first on line 1)",
    );
    err_at(
        "protocol relay\n",
        1,
        10,
        "write the protocol name in quotes",
    );
    err_at("tcp p\n", 1, 5, "expected \"protocol\" after \"tcp\"");
}

#[test]
fn a_relay_needs_a_protocol_defined_before_it() {
    let relay = |line: &str| {
        format!("{HEAD}protocol p\nrelay r {{\n listen on 127.0.0.1 port 1080\n {line}\n forward to <t>\n}}\n")
    };
    err_at(&relay("protocol q"), 5, 11, "protocol \"q\" is not defined");
    err_at(
        &relay("protocol p\n protocol p"),
        6,
        2,
        "names a protocol twice",
    );
    let after = format!(
        "{HEAD}relay r {{\n listen on a port 1\n protocol p\n forward to <t>\n}}\nprotocol p\n"
    );
    err_at(&after, 4, 11, "define it before the relay");
    let none = parsed(&format!(
        "{HEAD}relay r {{\n listen on a port 1\n forward to <t>\n}}\n"
    ))
    .unwrap();
    assert_eq!(
        (none.relays[0].protocol.clone(), none.relays[0].tcp),
        (None, TcpOptions::DEFAULT)
    );
}

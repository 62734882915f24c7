//! `hasocks ctl` against a running `hasocks relay`: every command end to end over the control
//! socket, relayctl's output formats line by line, exit codes, the socket's permissions.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{bin, relayd_conf, start_relay};
use hasocks_test_support::blocking::Running;
use hasocks_test_support::{free_port, id_backend, temp_dir, wait_for, Backend, DEADLINE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a `hasocks ctl` run printed.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn ctl(socket: &Path, args: &[&str]) -> Out {
    let out = tokio::process::Command::new(bin())
        .arg("ctl")
        .arg("-s")
        .arg(socket)
        .args(args)
        .output()
        .await
        .expect("run hasocks ctl");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a ctl command that must succeed; its stdout.
async fn ok(socket: &Path, args: &[&str]) -> String {
    let o = ctl(socket, args).await;
    assert_eq!(o.code, 0, "ctl {args:?}: {}{}", o.stdout, o.stderr);
    o.stdout
}

/// relayctl's header line.
const HEADER: &str = "Id  \tType    \tName                    \tAvlblty\tStatus";

/// A relay over two id backends (hosts 127.0.0.1 with their own ports), checked by TCP
/// hourly (so the check counts only move on `poll`), with a control socket. The backends
/// speak first, so the relay must not wait for the client's first byte.
struct Lab {
    dir: PathBuf,
    socket: PathBuf,
    conf: PathBuf,
    relay: SocketAddr,
    backends: [Backend; 2],
    proc: Running,
}

fn relay_conf(port: u16, socket: &Path, b: &[u16], mode: &str) -> String {
    relayd_conf(
        "interval 3600\ntimeout 1000\nhasocks.timeout.firstbyte 0",
        socket,
        &[("127.0.0.1", b[0]), ("127.0.0.1", b[1])],
        port,
        &format!("forward to <pool> port 1080 mode {mode} check tcp"),
    )
}

async fn lab(tag: &str) -> Lab {
    let dir = temp_dir(tag);
    let socket = dir.join("relay.sock");
    let conf = dir.join("relayd.conf");
    let backends = [id_backend(1).await, id_backend(2).await];
    let port = free_port("127.0.0.1");
    let ports = [backends[0].port(), backends[1].port()];
    std::fs::write(&conf, relay_conf(port, &socket, &ports, "roundrobin")).unwrap();
    let proc = start_relay(&conf);
    let l = Lab {
        dir,
        socket,
        conf,
        relay: SocketAddr::from(([127, 0, 0, 1], port)),
        backends,
        proc,
    };
    let mut up = false;
    for _ in 0..200 {
        let o = ctl(&l.socket, &["show", "summary"]).await;
        if o.code == 0 && o.stdout.contains("active (2 hosts)") {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the relay came up with both hosts");
    l
}

fn host_name(l: &Lab, i: usize) -> String {
    format!("127.0.0.1:{}", l.backends[i].port())
}

/// The rows of `show summary` for the given host statuses and table status.
fn summary(l: &Lab, relay: &str, table: &str, hosts: [(&str, &str); 2]) -> Vec<String> {
    let mut v = vec![
        HEADER.to_string(),
        format!("1   \trelay   \tsocks                   \t       \t{relay}"),
        format!("1   \ttable   \tpool:1080               \t       \t{table}"),
    ];
    for (i, (avail, st)) in hosts.iter().enumerate() {
        v.push(format!(
            "{}   \thost    \t{:<24}\t{avail:<7}\t{st}",
            i + 1,
            host_name(l, i)
        ));
    }
    v
}

/// `show hosts` of the lab's relay after its first round of checks, both hosts up.
fn show_hosts_after_one_check(l: &Lab) -> Vec<String> {
    vec![
        HEADER.to_string(),
        "1   \ttable   \tpool:1080               \t       \tactive (2 hosts)".to_string(),
        format!("1   \thost    \t{:<24}\t100.00%\tup", host_name(l, 0)),
        "\t        \ttotal: 1/1 checks".to_string(),
        format!("2   \thost    \t{:<24}\t100.00%\tup", host_name(l, 1)),
        "\t        \ttotal: 1/1 checks".to_string(),
    ]
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_host_table_relay_poll_and_log_commands_print_as_relayctl() {
    let l = lab("ctl-show").await;
    let s = &l.socket;
    assert_eq!(
        lines(&ok(s, &["show", "summary"]).await),
        summary(&l, "active", "active (2 hosts)", [("100.00%", "up"); 2])
    );
    // Keywords shorten as in relayctl.
    assert_eq!(
        ok(s, &["sh", "su"]).await,
        ok(s, &["show", "summary"]).await
    );
    let hosts = lines(&ok(s, &["show", "hosts"]).await);
    assert_eq!(hosts, show_hosts_after_one_check(&l));

    // poll: one more round at once.
    assert_eq!(ok(s, &["poll"]).await, "command succeeded\n");
    let mut polled = false;
    for _ in 0..200 {
        if ok(s, &["show", "hosts"])
            .await
            .matches("total: 2/2 checks")
            .count()
            == 2
        {
            polled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(polled, "poll ran a round of checks");

    // host disable/enable by id and by name.
    assert_eq!(
        ok(s, &["host", "disable", "2"]).await,
        "command succeeded\n"
    );
    assert_eq!(
        lines(&ok(s, &["show", "summary"]).await),
        summary(
            &l,
            "active",
            "active (1 hosts)",
            [("100.00%", "up"), ("100.00%", "disabled")]
        )
    );
    let name = host_name(&l, 1);
    assert_eq!(
        ok(s, &["host", "enable", &name]).await,
        "command succeeded\n"
    );
    let o = ctl(s, &["host", "disable", "99"]).await;
    assert_eq!((o.code, o.stdout.as_str()), (1, "command failed\n"));
    assert!(o.stderr.contains("no host 99"), "{}", o.stderr);

    // host drain: shown as draining; enable undoes it.
    assert_eq!(ok(s, &["host", "drain", "1"]).await, "command succeeded\n");
    assert!(lines(&ok(s, &["show", "summary"]).await)[3].ends_with("\tdraining"));
    ok(s, &["host", "enable", "1"]).await;

    // table disable/enable, by name without the port.
    assert_eq!(
        ok(s, &["table", "disable", "pool"]).await,
        "command succeeded\n"
    );
    assert_eq!(
        lines(&ok(s, &["show", "summary"]).await),
        summary(&l, "active", "disabled", [("100.00%", "disabled"); 2])
    );
    assert_eq!(
        ok(s, &["table", "enable", "1"]).await,
        "command succeeded\n"
    );

    // relay disable: what it accepts it closes; enable: it serves again.
    assert_eq!(
        ok(s, &["relay", "disable", "socks"]).await,
        "command succeeded\n"
    );
    assert!(lines(&ok(s, &["show", "summary"]).await)[1].ends_with("\tdisabled"));
    let mut c = TcpStream::connect(l.relay).await.expect("connect");
    let mut b = [0u8; 1];
    let n = tokio::time::timeout(DEADLINE, c.read(&mut b))
        .await
        .expect("closed");
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "a disabled relay forwarded: {n:?}"
    );
    assert_eq!(
        ok(s, &["relay", "enable", "1"]).await,
        "command succeeded\n"
    );
    let mut c = TcpStream::connect(l.relay).await.expect("connect");
    c.read_exact(&mut b).await.expect("an id byte once enabled");

    // show relays: relayctl's statistics lines.
    let relays = lines(&ok(s, &["show", "relays"]).await);
    assert_eq!(relays[0], HEADER);
    assert_eq!(
        relays[1],
        "1   \trelay   \tsocks                   \t       \tactive"
    );
    assert_eq!(relays[2], "\t        \ttotal: 2 sessions");
    assert!(relays[3].starts_with("\t        \tlast: ") && relays[3].ends_with(" sessions"));
    assert!(
        relays[4].starts_with("\t        \taverage: 2/60s 2/h 2/d sessions"),
        "{relays:?}"
    );

    // log.
    assert_eq!(ok(s, &["log", "verbose"]).await, "logging request sent.\n");
    assert_eq!(ok(s, &["log", "brief"]).await, "logging request sent.\n");

    // --json: the protocol's reply.
    let j: serde_json::Value =
        serde_json::from_str(&ok(s, &["--json", "show", "hosts"]).await).expect("json");
    assert_eq!(j["reply"], "status");
    assert_eq!(j["status"]["tables"][0]["hosts"][1]["state"], "up");

    // Usage errors: exit 2, nothing sent.
    let o = ctl(s, &["frobnicate"]).await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("unknown word \"frobnicate\""));
    let _ = std::fs::remove_dir_all(&l.dir);
}

/// A session through the relay: the id byte of the host it reached, if any.
async fn id_of_session(relay: SocketAddr) -> Option<u8> {
    let mut c = TcpStream::connect(relay).await.ok()?;
    let mut id = [0u8; 1];
    tokio::time::timeout(DEADLINE, c.read_exact(&mut id))
        .await
        .ok()?
        .ok()?;
    Some(id[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_hosts_counts_failed_connects_by_reason() {
    let mut l = lab("ctl-refused").await;
    let s = &l.socket;
    // Checks run hourly: host 2 stays up for the relay though it is gone. Round robin sends
    // the second session to it first; refused, the session moves on to host 1.
    l.backends[1].stop().await;
    assert_eq!(id_of_session(l.relay).await, Some(1));
    assert_eq!(id_of_session(l.relay).await, Some(1));
    let mut want = show_hosts_after_one_check(&l);
    want.push("\t        \tfailed connects: 1 refused".to_string());
    assert_eq!(lines(&ok(s, &["show", "hosts"]).await), want);
    let j: serde_json::Value =
        serde_json::from_str(&ok(s, &["--json", "show", "hosts"]).await).expect("json");
    let host = &j["status"]["tables"][0]["hosts"][1];
    assert_eq!(host["connect_failures"], 1);
    assert_eq!(
        host["connect_errors"],
        serde_json::json!({"refused": 1, "timeout": 0, "unreachable": 0, "local": 0})
    );
    let _ = std::fs::remove_dir_all(&l.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_sessions_lists_each_open_session_with_its_bytes() {
    let l = lab("ctl-sessions").await;
    let mut c = TcpStream::connect(l.relay).await.expect("connect");
    let mut id = [0u8; 1];
    c.read_exact(&mut id).await.expect("id");
    c.write_all(b"12345").await.expect("write");
    let mut back = [0u8; 5];
    c.read_exact(&mut back).await.expect("echo");
    let local = c.local_addr().expect("local");
    let backend = l.backends[usize::from(id[0] - 1)].addr;
    let mut text = String::new();
    for _ in 0..100 {
        text = ok(&l.socket, &["show", "sessions"]).await;
        if text.contains("5 bytes out, 6 bytes in") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = lines(&text);
    assert_eq!(got.len(), 2, "{text}");
    let head = format!(
        " {}:{} -> {}:{}\tRUNNING",
        local.ip(),
        local.port(),
        backend.ip(),
        backend.port()
    );
    assert!(
        got[0].starts_with("session ") && got[0].ends_with(&head),
        "{text}"
    );
    assert_eq!(
        got[1],
        format!(
            "\tage 00:00:00, idle 00:00:00, relay 1, pid {}, 5 bytes out, 6 bytes in",
            l.proc.pid()
        )
    );
    drop(c);
    assert!(
        wait_for(
            || std::process::Command::new(bin())
                .args(["ctl", "-s"])
                .arg(&l.socket)
                .args(["show", "sessions"])
                .output()
                .map(|o| o.stdout.is_empty())
                .unwrap_or(false),
            DEADLINE
        )
        .await,
        "the closed session left the registry"
    );
    let _ = std::fs::remove_dir_all(&l.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_and_load_wait_and_report_and_a_broken_file_is_refused_with_its_position() {
    let l = lab("ctl-reload").await;
    let s = &l.socket;
    let ports = [l.backends[0].port(), l.backends[1].port()];
    let port = l.relay.port();
    std::fs::write(&l.conf, relay_conf(port, s, &ports, "loadbalance")).unwrap();
    let out = ok(s, &["reload"]).await;
    let out = lines(&out);
    assert_eq!(out[0], "command succeeded");
    assert!(
        out[1].starts_with(&format!("reloaded {}: generation 2: 1 relays, 1 tables, 2 hosts (0 new, 0 removed); listeners: 1 kept, 0 opened, 0 closed", l.conf.display())),
        "{out:?}"
    );
    // Hosts kept their state: no unknown gap.
    assert!(ok(s, &["show", "summary"])
        .await
        .contains("active (2 hosts)"));

    let other = l.dir.join("other.conf");
    std::fs::write(&other, relay_conf(port, s, &ports, "random")).unwrap();
    let out = ok(s, &["load", other.to_str().unwrap()]).await;
    assert!(
        out.contains(&format!("reloaded {}: generation 3", other.display())),
        "{out}"
    );

    std::fs::write(&l.conf, "table <pool> { 127.0.0.1 }\nrelay \"socks\" {\n listen on 127.0.0.1 port 1\n frobnicate\n}\n").unwrap();
    let o = ctl(s, &["reload"]).await;
    assert_eq!((o.code, o.stdout.as_str()), (1, "command failed\n"));
    assert!(
        o.stderr.contains(&format!(
            "{}:4:2: unknown keyword \"frobnicate\"",
            l.conf.display()
        )),
        "{}",
        o.stderr
    );
    let j: serde_json::Value =
        serde_json::from_str(&ok(s, &["--json", "show", "summary"]).await).expect("json");
    assert_eq!(
        j["status"]["generation"], 3,
        "the refused file changed nothing"
    );
    assert!(ok(s, &["show", "summary"])
        .await
        .contains("active (2 hosts)"));
    let _ = std::fs::remove_dir_all(&l.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_streams_state_changes_as_they_happen() {
    let l = lab("ctl-monitor").await;
    let mut mon = tokio::process::Command::new(bin())
        .arg("ctl")
        .arg("-s")
        .arg(&l.socket)
        .arg("monitor")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("monitor");
    let mut out = mon.stdout.take().expect("stdout");
    // The monitor subscribes on connect; give it a moment to be connected before acting.
    let mut subscribed = false;
    for _ in 0..100 {
        let o = ok(&l.socket, &["host", "disable", "2"]).await;
        assert_eq!(o, "command succeeded\n");
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(100), out.read(&mut buf)).await
        {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let got = lines(&text);
            assert_eq!(
                got[0],
                format!(
                    "ctl_host_disable: imsg type 2 len 0 peerid 2 pid {}",
                    l.proc.pid()
                ),
                "{text}"
            );
            assert!(got[1].starts_with("\ttimestamp: "), "{text}");
            assert_eq!(&got[2..4], ["\tid: 2", "\tname: 127.0.0.1"], "{text}");
            subscribed = true;
            break;
        }
    }
    assert!(subscribed, "monitor printed no event");
    // A host state change: the backend of host 1 stops, a poll notices.
    ok(&l.socket, &["host", "enable", "2"]).await;
    let mut b0 = l.backends;
    b0[0].stop().await;
    ok(&l.socket, &["poll"]).await;
    let mut seen = String::new();
    let found = tokio::time::timeout(DEADLINE, async {
        let mut buf = vec![0u8; 4096];
        while !seen.contains("host_status: imsg type 1 len 0 peerid 1")
            || !seen.contains("\tstate: down")
        {
            let n = out.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await;
    assert!(found.is_ok() && seen.contains("\tstate: down"), "{seen}");
    let _ = mon.kill().await;
    let _ = std::fs::remove_dir_all(&l.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_permission_on_the_socket_gets_a_clear_error_and_changes_nothing() {
    if !nix::unistd::getuid().is_root() {
        eprintln!("skipped: needs root to run hasocks ctl as nobody");
        return;
    }
    let l = lab("ctl-perm").await;
    let mode = std::fs::metadata(&l.socket).expect("socket").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o660
    );
    // A copy of the binary that nobody may run (the build folder may be closed to it).
    let exe = l.dir.join("hasocks");
    std::fs::copy(bin(), &exe).expect("copy");
    let mut out = None;
    for _ in 0..50 {
        let o = tokio::process::Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(&exe)
            .arg("ctl")
            .arg("-s")
            .arg(&l.socket)
            .args(["host", "disable", "1"])
            .output()
            .await
            .expect("setpriv");
        // A process another test forks meanwhile may hold the new copy open for writing
        // until its exec (ETXTBSY): try again.
        if !String::from_utf8_lossy(&o.stderr).contains("Text file busy") {
            out = Some(o);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = out.expect("the copy became executable");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("permission denied"), "{err}");
    assert!(
        !ok(&l.socket, &["show", "summary"])
            .await
            .contains("disabled"),
        "nothing changed"
    );
    let _ = std::fs::remove_dir_all(&l.dir);
}

/// A server with a control socket (`hasocks.socket:`) speaks the same protocol: `show
/// summary` (its listeners, sessions and caps), `reload` (with the generation it made), and a
/// clear refusal for what only a relay does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_control_socket_shows_its_summary_reloads_and_refuses_relay_commands() {
    let dir = temp_dir("ctl-server");
    let socket = dir.join("server.sock");
    let port = free_port("127.0.0.1");
    let conf = dir.join("sockd.conf");
    let text = |p: u16| {
        format!(
            "internal: 127.0.0.1 port = {p}\nexternal: 127.0.0.1\nsocksmethod: none\n\
             hasocks.socket: {}\nclient pass {{ from: 0/0 to: 0/0 }}\nsocks pass {{ from: 0/0 to: 0/0 }}\n",
            socket.display()
        )
    };
    std::fs::write(&conf, text(port)).unwrap();
    let _server = Running(
        Command::new(bin())
            .args(["server", "-f"])
            .arg(&conf)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_for(|| socket.exists(), DEADLINE).await,
        "control socket"
    );
    let s = ok(&socket, &["show", "summary"]).await;
    assert!(s.contains(&format!("listening\t127.0.0.1:{port}")), "{s}");
    assert!(s.contains("generation 1"), "{s}");
    let j: serde_json::Value =
        serde_json::from_str(&ok(&socket, &["--json", "show", "summary"]).await).unwrap();
    assert_eq!(j["reply"], "server");
    assert!(j["status"]["admission"]["caps"]["total"].as_u64().unwrap() > 0);

    let other = free_port("127.0.0.1");
    std::fs::write(&conf, text(other)).unwrap();
    let r = ok(&socket, &["reload"]).await;
    assert!(r.contains("generation 2"), "{r}");
    assert!(r.contains("1 opened, 1 closed"), "{r}");
    let s = ok(&socket, &["show", "summary"]).await;
    assert!(s.contains(&format!("127.0.0.1:{other}")), "{s}");

    let o = ctl(&socket, &["host", "disable", "1"]).await;
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains("show summary, reload and takeover"),
        "{}",
        o.stderr
    );
    let o = ctl(&socket, &["monitor"]).await;
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("no events"), "{}", o.stderr);
}

/// Sends `n` bytes on `c` and reads the echo back; whether it came back whole.
async fn echoes(c: &mut TcpStream, n: usize) -> bool {
    let out = vec![9u8; n];
    let mut back = vec![0u8; n];
    c.write_all(&out).await.is_ok()
        && tokio::time::timeout(DEADLINE, c.read_exact(&mut back))
            .await
            .is_ok_and(|r| r.is_ok())
        && back == out
}

/// A session through the relay, its host's id byte read, kept open.
async fn open_session(relay: SocketAddr) -> TcpStream {
    let mut c = TcpStream::connect(relay).await.expect("connect");
    let mut id = [0u8; 1];
    tokio::time::timeout(DEADLINE, c.read_exact(&mut id))
        .await
        .expect("id in time")
        .expect("id");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_drain_shows_in_summary_survives_sighup_and_upgrade_and_undrain_ends_it_while_sessions_flow(
) {
    let l = lab("ctl-drain").await;
    let s = &l.socket;
    let mut before = open_session(l.relay).await;

    assert_eq!(ok(s, &["relay", "drain"]).await, "command succeeded\n");
    let out = lines(&ok(s, &["show", "summary"]).await);
    assert_eq!(
        out[1],
        "1   \trelay   \tsocks                   \t       \tdraining"
    );
    assert_eq!(
        out.last().map(String::as_str),
        Some("draining, 1 sessions open")
    );
    let mut after = open_session(l.relay).await;
    assert!(echoes(&mut before, 2000).await && echoes(&mut after, 2000).await);
    let j: serde_json::Value =
        serde_json::from_str(&ok(s, &["--json", "show", "summary"]).await).expect("json");
    assert_eq!(j["status"]["draining"], true);
    assert_eq!(j["status"]["sessions_open"], 2);

    // SIGHUP reloads the file: a new generation, still draining.
    l.proc.signal(1);
    let mut reloaded = None;
    for _ in 0..200 {
        let j: serde_json::Value =
            serde_json::from_str(&ok(s, &["--json", "show", "summary"]).await).expect("json");
        if j["status"]["generation"] == 2 {
            reloaded = Some(j);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let j = reloaded.expect("SIGHUP reloaded");
    assert_eq!(j["status"]["draining"], true, "{j}");
    assert!(echoes(&mut before, 100).await);

    // An upgrade hands the drain on: the successor is not ready either, and serves.
    let _successor = Running(
        Command::new(bin())
            .args(["relay", "-f"])
            .arg(&l.conf)
            .arg("--upgrade")
            .stderr(Stdio::null())
            .spawn()
            .expect("start the successor"),
    );
    let mut upgraded = None;
    for _ in 0..200 {
        let o = ctl(s, &["--json", "show", "summary"]).await;
        let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap_or_default();
        if o.code == 0 && j["status"]["pid"] != l.proc.pid() {
            upgraded = Some(j);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let j = upgraded.expect("the successor answers on the control socket");
    assert_eq!(j["status"]["draining"], true, "{j}");
    let mut on_successor = open_session(l.relay).await;
    assert!(echoes(&mut on_successor, 1000).await);
    assert!(
        echoes(&mut before, 100).await,
        "the old process serves its own"
    );

    assert_eq!(ok(s, &["relay", "undrain"]).await, "command succeeded\n");
    let out = ok(s, &["show", "summary"]).await;
    assert!(!out.contains("draining"), "{out}");
    assert!(out.contains("\tactive\n"), "{out}");
    assert!(echoes(&mut on_successor, 100).await);
    let _ = std::fs::remove_dir_all(&l.dir);
}

//! A relay with relayd's TCP `protocol` block: its options are on the relay's listener and on
//! both sockets of a session, as ss(8) and the kernel's own TTL checks show them.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use hasocks_net::sock::{listen_tcp, tune, TcpTuning};
use hasocks_relay::RelayHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An echo server on loopback whose listener drops every packet with a TTL under `min_ttl`
/// (loopback keeps the sender's TTL: 64 unless it sets another); it answers at TTL 255.
async fn echo_with_min_ttl(min_ttl: u8) -> SocketAddr {
    let l = listen_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
    let t = TcpTuning {
        min_ttl: Some(min_ttl),
        ttl: Some(255),
        ..TcpTuning::default()
    };
    tune(&l, &t).unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A connect to `to` whose packets carry `ttl`.
async fn connect_with_ttl(to: SocketAddr, ttl: u32) -> std::io::Result<TcpStream> {
    let s = tokio::net::TcpSocket::new_v4()?;
    socket2::SockRef::from(&s).set_ttl(ttl)?;
    s.connect(to).await
}

/// The lines of `ss -H ARGS` (iproute2).
fn ss(args: &[&str]) -> Vec<String> {
    let out = Command::new("ss")
        .arg("-H")
        .args(args)
        .output()
        .expect("ss (iproute2) runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The `rb` and `tb` of each socket's skmem in `ss -tmn FILTER` (receive, send buffer).
fn buffers(filter: &str) -> Vec<(u64, u64)> {
    let text = ss(&["-tmn", filter]).join(" ");
    text.split("skmem:(")
        .skip(1)
        .map(|m| {
            let field = |name: &str| {
                m.split([',', ')'])
                    .find_map(|f| f.strip_prefix(name))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            (field("rb"), field("tb"))
        })
        .collect()
}

#[tokio::test]
async fn a_relays_protocol_options_are_on_its_listener_and_both_sockets_of_a_session() {
    // Only a relay that sends with `ip ttl 200` gets through to this host (and its answers
    // pass the relay's own `ip minttl 100`, which is on that connection too).
    let backend = echo_with_min_ttl(200).await;
    let port = free_port("127.0.0.1");
    // relayd's example TCP relay, with every option of the block; its buffer size is not
    // 65536, whose double is Linux's default receive buffer (tcp_rmem), so that the check
    // below can only pass if the option was applied.
    let text = format!(
        "table <sshhosts> {{ 127.0.0.1 }}\n\
         protocol sshtcp {{\n\
         \ttcp {{ nodelay, socket buffer 40000, backlog 7, ip ttl 200, ip minttl 100 }}\n\
         }}\n\
         relay sshgw {{\n\
         \tlisten on 127.0.0.1 port {port}\n\
         \tprotocol sshtcp\n\
         \tforward to <sshhosts> port {}\n\
         }}\n",
        backend.port()
    );
    let cfg = hasocks_conf::relayd::parse(&text, Path::new("relayd.conf"), &[]).unwrap();
    let h = RelayHandle::start(cfg).await.expect("relay");
    let relay = addr_of(&h);
    assert_eq!(relay.port(), port);

    // `ip minttl 100` on the relay's listener: a client at the default TTL 64 never gets
    // through (its SYN is dropped), one at TTL 255 does.
    let dropped =
        tokio::time::timeout(Duration::from_millis(1500), connect_with_ttl(relay, 64)).await;
    assert!(
        !matches!(dropped, Ok(Ok(_))),
        "a TTL 64 client was accepted"
    );
    let mut client = tokio::time::timeout(DEADLINE, connect_with_ttl(relay, 255))
        .await
        .expect("connect in time")
        .expect("a TTL 255 client is accepted");
    client.write_all(b"ssh-2.0").await.unwrap();
    let mut echo = [0u8; 7];
    tokio::time::timeout(DEADLINE, client.read_exact(&mut echo))
        .await
        .expect("echo in time")
        .expect("echo through the relay and its TTL 200 connect");
    assert_eq!(&echo, b"ssh-2.0");

    // `backlog 7`: a listening socket's Send-Q is its backlog.
    let listening = ss(&["-ltn", &format!("sport = :{port}")]);
    let send_q: Vec<&str> = listening
        .iter()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert!(
        !send_q.is_empty() && send_q.iter().all(|q| *q == "7"),
        "{listening:?}"
    );
    // `socket buffer 40000`: SO_RCVBUF and SO_SNDBUF, which the kernel doubles, on the
    // client's accepted socket and on the relay's connection to the host.
    let want = (80_000, 80_000);
    let accepted = buffers(&format!("sport = :{port}"));
    assert_eq!(accepted, [want], "relay's client side");
    let to_host = buffers(&format!("dport = :{}", backend.port()));
    assert_eq!(to_host, [want], "relay's host side");
    drop(client);
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_reload_applies_a_changed_protocol_to_the_listener_it_keeps() {
    let port = free_port("127.0.0.1");
    let text = |options: &str| {
        format!(
            "table <t> {{ 127.0.0.1 }}\nprotocol p {{ tcp {{ {options} }} }}\n\
             relay r {{\n listen on 127.0.0.1 port {port}\n protocol p\n forward to <t> port 9\n}}\n"
        )
    };
    let parse = |t: &str| hasocks_conf::relayd::parse(t, Path::new("relayd.conf"), &[]).unwrap();
    let backlog = || -> Vec<String> {
        ss(&["-ltn", &format!("sport = :{port}")])
            .iter()
            .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
            .collect()
    };
    let h = RelayHandle::start(parse(&text("backlog 7, ip minttl 200")))
        .await
        .expect("relay");
    let relay = addr_of(&h);
    assert!(
        !backlog().is_empty() && backlog().iter().all(|q| q == "7"),
        "{:?}",
        backlog()
    );
    h.reload(parse(&text("backlog 9"))).await.expect("reload");
    assert_eq!(addr_of(&h), relay, "the listener is kept");
    assert!(backlog().iter().all(|q| q == "9"), "{:?}", backlog());
    // `ip minttl` dropped at the reload: a client at the default TTL is accepted again.
    tokio::time::timeout(DEADLINE, connect_with_ttl(relay, 64))
        .await
        .expect("connect in time")
        .expect("a TTL 64 client is accepted");
    h.shutdown(Duration::from_secs(5)).await;
}

//! Outgoing connects and the accept loop over real loopback sockets.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hasocks_net::listen::Acceptor;
use hasocks_net::sock::{connect_tcp, connect_tcp_tuned, listen_tcp, set_backlog, tune, TcpTuning};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(10);

fn loopback() -> SocketAddr {
    SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)
}

#[tokio::test]
async fn connect_with_source_address_leaves_from_that_address() {
    let mut acc = Acceptor::new(listen_tcp(loopback()).unwrap());
    let target = acc.local_addr().unwrap();
    let src = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let cancel = CancellationToken::new();
    let (out, accepted) = tokio::join!(
        connect_tcp(target, Some(src), DEADLINE),
        acc.accept(&cancel)
    );
    let out = out.unwrap();
    let (_conn, peer) = accepted.expect("accepted");
    assert_eq!(peer.ip(), src);
    assert_eq!(out.local_addr().unwrap().ip(), src);
    assert!(out.nodelay().unwrap(), "TCP_NODELAY is set");
    let no_port =
        nix::sys::socket::getsockopt(&out, nix::sys::socket::sockopt::IpBindAddressNoPort).unwrap();
    assert!(no_port, "the port was left for connect() to choose");
}

#[tokio::test]
async fn connect_to_a_closed_port_is_refused() {
    let port = {
        let l = std::net::TcpListener::bind(loopback()).unwrap();
        l.local_addr().unwrap().port()
    };
    let target = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
    let err = connect_tcp(target, None, DEADLINE).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn source_address_of_the_other_family_is_rejected() {
    let target = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 9);
    let err = connect_tcp(target, Some("::1".parse().unwrap()), DEADLINE)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn accepted_connection_carries_bytes_and_has_nodelay() {
    let mut acc = Acceptor::new(listen_tcp(loopback()).unwrap());
    let addr = acc.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let (out, accepted) = tokio::join!(connect_tcp(addr, None, DEADLINE), acc.accept(&cancel));
    let mut out = out.unwrap();
    let (mut conn, peer) = accepted.expect("accepted");
    assert_eq!(peer, out.local_addr().unwrap());
    assert!(conn.nodelay().unwrap());
    out.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    conn.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    assert_eq!(acc.stats().accepted(), 1);
}

#[tokio::test]
async fn every_accepted_connection_has_nodelay_not_only_the_first() {
    let mut acc = Acceptor::new(listen_tcp(loopback()).unwrap());
    let addr = acc.local_addr().unwrap();
    let cancel = CancellationToken::new();
    for i in 0..4 {
        let (out, accepted) = tokio::join!(connect_tcp(addr, None, DEADLINE), acc.accept(&cancel));
        let _out = out.unwrap();
        let (conn, _) = accepted.expect("accepted");
        assert!(conn.nodelay().unwrap(), "connection {i} has TCP_NODELAY");
    }
}

#[tokio::test]
async fn a_connect_that_never_completes_times_out() {
    // A listener that never accepts and whose queue is full drops further SYNs: the connect
    // stays pending until the deadline.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&loopback().into()).unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            fillers.push(s);
        }
    }
    let err = connect_tcp(addr, None, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test]
async fn accept_returns_none_once_cancelled() {
    let mut acc = Acceptor::new(listen_tcp(loopback()).unwrap());
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    let task = tokio::spawn(async move { acc.accept(&c2).await.is_none() });
    cancel.cancel();
    let none = tokio::time::timeout(DEADLINE, task).await.unwrap().unwrap();
    assert!(none);
}

#[tokio::test]
async fn listener_port_can_be_rebound_while_old_connections_linger() {
    // SO_REUSEADDR: a restarted server rebinds its port although TIME_WAIT entries remain.
    let l = listen_tcp(loopback()).unwrap();
    let addr = l.local_addr().unwrap();
    let mut acc = Acceptor::new(l);
    let cancel = CancellationToken::new();
    let (out, accepted) = tokio::join!(connect_tcp(addr, None, DEADLINE), acc.accept(&cancel));
    let (conn, _) = accepted.unwrap();
    // The server side closes first, so the TIME_WAIT entry sits on the listener's port.
    drop(conn);
    let mut out = out.unwrap();
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).await.unwrap();
    drop(out);
    drop(acc);
    let again = listen_tcp(addr).unwrap();
    assert_eq!(again.local_addr().unwrap(), addr);
}

/// Every option of a relayd `tcp { }` block, read back from a socket with getsockopt.
fn assert_tuned(fd: &impl std::os::fd::AsFd, what: &str, t: &TcpTuning) {
    use hasocks_syslib::sockopt::{min_ttl, Family};
    let s = socket2::SockRef::from(fd);
    assert_eq!(Some(s.nodelay().unwrap()), t.nodelay, "{what}: TCP_NODELAY");
    // Linux doubles the value asked for (bookkeeping overhead) and reports the double.
    let want = usize::try_from(t.buffer.unwrap()).unwrap() * 2;
    assert_eq!(s.send_buffer_size().unwrap(), want, "{what}: SO_SNDBUF");
    assert_eq!(s.recv_buffer_size().unwrap(), want, "{what}: SO_RCVBUF");
    assert_eq!(
        Some(s.ttl().unwrap()),
        t.ttl.map(u32::from),
        "{what}: IP_TTL"
    );
    let min = min_ttl(fd.as_fd(), Family::V4).unwrap();
    assert_eq!(Some(min), t.min_ttl, "{what}: IP_MINTTL");
}

#[tokio::test]
async fn protocol_options_on_a_listener_reach_accepted_sockets_and_connects_get_their_own() {
    // Not the kernel's defaults (nodelay off, TTL 64, no min TTL, ~87 KiB buffers).
    let listener_opts = TcpTuning {
        nodelay: Some(true),
        buffer: Some(32 * 1024),
        ttl: Some(17),
        min_ttl: Some(2),
    };
    let connect_opts = TcpTuning {
        nodelay: Some(false),
        buffer: Some(48 * 1024),
        ttl: Some(33),
        min_ttl: Some(3),
    };
    let std_listener = hasocks_net::sock::listen_tcp_std(loopback()).unwrap();
    tune(&std_listener, &listener_opts).unwrap();
    set_backlog(&std_listener, 7).unwrap();
    let mut acc = Acceptor::new(tokio::net::TcpListener::from_std(std_listener).unwrap());
    let target = acc.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let (out, accepted) = tokio::join!(
        connect_tcp_tuned(target, None, DEADLINE, &connect_opts),
        acc.accept(&cancel)
    );
    let out = out.unwrap();
    let (accepted, _) = accepted.expect("accepted");
    assert_tuned(&accepted, "accepted", &listener_opts);
    assert_tuned(&out, "connected", &connect_opts);
    // The backlog, as ss(8) shows it: Send-Q of a listening socket.
    let ss = std::process::Command::new("ss")
        .args(["-Hltn", &format!("sport = :{}", target.port())])
        .output()
        .expect("ss (iproute2) runs");
    let text = String::from_utf8_lossy(&ss.stdout);
    let send_q: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(send_q, ["7"], "ss -ltn: {text}");
}

//! The accept loop survives running out of file descriptors. Alone in its own test binary:
//! lowering RLIMIT_NOFILE is process-wide and would disturb other tests.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hasocks_net::listen::Acceptor;
use hasocks_net::sock::listen_tcp;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use tokio::net::TcpSocket;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn acceptor_waits_out_fd_exhaustion_and_accepts_once_fds_are_freed() {
    let saved = getrlimit(Resource::Nofile);
    let mut acc =
        Acceptor::new(listen_tcp(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)).unwrap());
    let addr = acc.local_addr().unwrap();
    let stats = acc.stats();
    // The client socket needs its fd before the table is full; connect needs none.
    let client = TcpSocket::new_v4().unwrap();

    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(256),
            maximum: saved.maximum,
        },
    )
    .unwrap();
    let mut filler = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => filler.push(f),
            Err(e) => {
                assert_eq!(
                    e.raw_os_error(),
                    Some(rustix::io::Errno::MFILE.raw_os_error())
                );
                break;
            }
        }
    }

    let client = client.connect(addr).await.unwrap();
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    let task = tokio::spawn(async move { acc.accept(&c2).await });

    // Wait (bounded) until the acceptor has hit EMFILE more than once, i.e. it backed off and
    // retried instead of giving up.
    let start = tokio::time::Instant::now();
    while stats.resource_errors() < 2 {
        assert!(start.elapsed() < DEADLINE, "acceptor never hit EMFILE");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !task.is_finished(),
        "acceptor keeps waiting while fds are exhausted"
    );

    drop(filler);
    let got = tokio::time::timeout(DEADLINE, task)
        .await
        .expect("accepts once fds are free")
        .unwrap();
    setrlimit(Resource::Nofile, saved).unwrap();
    let (_conn, peer) = got.expect("a connection, not None");
    assert_eq!(peer, client.local_addr().unwrap());
    assert_eq!(stats.accepted(), 1);
}

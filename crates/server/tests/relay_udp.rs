//! The seed system's case: the TCP control connection reaches the server through a plain
//! layer-4 forwarder on another address; the UDP ASSOCIATE reply must name the server's own
//! address (where the control connection arrived), and UDP sent there directly must work.

mod common;

use std::net::SocketAddr;

use common::*;
use hasocks_socks_wire::TargetAddr;
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// A plain TCP forwarder on `ip`:0 to `to`, copying both ways; returns its address.
async fn tcp_forwarder(ip: &str, to: SocketAddr) -> SocketAddr {
    let l = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = l.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn udp_reply_names_the_server_not_the_forwarder_and_direct_udp_works() {
    let conf = "internal: 127.0.0.4 port = 0\nexternal: 127.0.0.4\nsocksmethod: none\n\
                client pass { from: 0/0 to: 0/0 }\nsocks pass { from: 0/0 to: 0/0 }\n";
    let (_h, server) = start(conf).await;
    let forwarder = tcp_forwarder("127.0.0.5", server).await;
    let (echo, _) = udp_echo_server("127.0.0.1").await;

    let (_ctl, rep, bnd) = udp_associate(forwarder, "0.0.0.0:0".parse().unwrap()).await;
    assert_eq!(rep, 0);
    assert_eq!(
        bnd.ip().to_string(),
        "127.0.0.4",
        "the server's own address, not the forwarder's"
    );
    assert_ne!(bnd.ip(), forwarder.ip());

    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.send_to(&udp_wrap(0, TargetAddr::Ip(echo), b"direct"), bnd)
        .await
        .unwrap();
    let (from, data) = udp_recv_unwrap(&s).await;
    assert_eq!((from, data), (TargetAddr::Ip(echo), b"direct".to_vec()));
}

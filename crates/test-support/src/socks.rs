//! Raw SOCKS bytes for tests: greetings, requests and replies built and read by hand, so
//! that the tests do not lean on the codec under test.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a hand-made SOCKS5 session failed.
#[derive(Debug, thiserror::Error)]
pub enum SocksError {
    /// The TCP connect to the proxy failed.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// A read or write failed in the named phase.
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    /// The proxy chose another method than `none`.
    #[error("method reply {0:?}")]
    Method([u8; 2]),
    /// The proxy refused the request with this REP.
    #[error("REP {0:02x}")]
    Rejected(u8),
    /// The session took longer than its budget.
    #[error("timed out")]
    Timeout,
}

/// SOCKS5 greeting offering `none`; returns the selected method.
pub async fn greet(s: &mut TcpStream) -> u8 {
    s.write_all(&[5, 1, 0]).await.unwrap();
    let mut b = [0u8; 2];
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(b[0], 5);
    b[1]
}

/// SOCKS5 request bytes for an IP target.
pub fn request_ip(cmd: u8, target: SocketAddr) -> Vec<u8> {
    let mut v = vec![5, cmd, 0];
    match target {
        SocketAddr::V4(a) => {
            v.push(1);
            v.extend_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            v.push(4);
            v.extend_from_slice(&a.ip().octets());
        }
    }
    v.extend_from_slice(&target.port().to_be_bytes());
    v
}

/// SOCKS5 request bytes for a name target.
pub fn request_name(cmd: u8, name: &str, port: u16) -> Vec<u8> {
    let mut v = vec![5, cmd, 0, 3, name.len() as u8];
    v.extend_from_slice(name.as_bytes());
    v.extend_from_slice(&port.to_be_bytes());
    v
}

/// Reads a SOCKS5 reply; returns (REP, BND).
pub async fn read_reply(s: &mut TcpStream) -> (u8, SocketAddr) {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).await.expect("reply header");
    assert_eq!(h[0], 5, "reply version");
    let addr = match h[3] {
        1 => {
            let mut a = [0u8; 6];
            s.read_exact(&mut a).await.unwrap();
            SocketAddr::from(([a[0], a[1], a[2], a[3]], u16::from_be_bytes([a[4], a[5]])))
        }
        4 => {
            let mut a = [0u8; 18];
            s.read_exact(&mut a).await.unwrap();
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&a[..16]);
            SocketAddr::from((ip, u16::from_be_bytes([a[16], a[17]])))
        }
        t => panic!("unexpected ATYP {t}"),
    };
    (h[1], addr)
}

/// Connect + greet + request; returns the stream and the reply.
pub async fn socks5(proxy: SocketAddr, req: &[u8]) -> (TcpStream, u8, SocketAddr) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    assert_eq!(greet(&mut s).await, 0);
    s.write_all(req).await.unwrap();
    let (rep, bnd) = read_reply(&mut s).await;
    (s, rep, bnd)
}

/// A SOCKS5 CONNECT to `target` through `proxy`: the stream after a success reply, or the
/// error (connect, greeting, REP != 0).
pub async fn socks5_connect(
    proxy: SocketAddr,
    target: SocketAddr,
) -> Result<TcpStream, SocksError> {
    let s = TcpStream::connect(proxy)
        .await
        .map_err(SocksError::Connect)?;
    socks5_connect_on(s, target).await
}

/// [`socks5_connect`] from the local address `src`.
pub async fn socks5_connect_from(
    src: std::net::Ipv4Addr,
    proxy: SocketAddr,
    target: SocketAddr,
) -> Result<TcpStream, SocksError> {
    let s = crate::connect_from(src, proxy)
        .await
        .map_err(SocksError::Connect)?;
    socks5_connect_on(s, target).await
}

/// A whole session from `src` through `proxy` to the echo server `target`: CONNECT, then 8
/// bytes sent and echoed back, all within 10 s.
pub async fn echo_session_from(
    src: std::net::Ipv4Addr,
    proxy: SocketAddr,
    target: SocketAddr,
) -> Result<(), SocksError> {
    let run = async {
        let mut s = socks5_connect_from(src, proxy, target).await?;
        s.write_all(b"12345678")
            .await
            .map_err(|e| SocksError::Io("write", e))?;
        let mut back = [0u8; 8];
        s.read_exact(&mut back)
            .await
            .map_err(|e| SocksError::Io("echo", e))?;
        Ok(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), run)
        .await
        .map_err(|_| SocksError::Timeout)?
}

/// No authentication, then CONNECT to `target`, on a connection to a SOCKS5 server.
async fn socks5_connect_on(mut s: TcpStream, target: SocketAddr) -> Result<TcpStream, SocksError> {
    let io = |phase| move |e| SocksError::Io(phase, e);
    s.write_all(&[5, 1, 0]).await.map_err(io("greeting"))?;
    let mut m = [0u8; 2];
    s.read_exact(&mut m).await.map_err(io("greeting"))?;
    if m != [5, 0] {
        return Err(SocksError::Method(m));
    }
    s.write_all(&request_ip(1, target))
        .await
        .map_err(io("request"))?;
    let mut h = [0u8; 10];
    s.read_exact(&mut h).await.map_err(io("reply"))?;
    if h[1] != 0 {
        return Err(SocksError::Rejected(h[1]));
    }
    Ok(s)
}

/// Sends `msg` and expects it echoed back.
pub async fn assert_echo(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).await.unwrap();
    let mut back = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
        .await
        .expect("echo in time")
        .unwrap();
    assert_eq!(back, msg);
}

/// Reads until EOF (with a deadline); returns what came.
pub async fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut v))
        .await
        .expect("EOF in time")
        .ok();
    v
}

/// SOCKS4 request bytes (VN CD DSTPORT DSTIP USERID\0).
pub fn socks4_request(cmd: u8, target: std::net::SocketAddrV4) -> Vec<u8> {
    let mut v = vec![4, cmd];
    v.extend_from_slice(&target.port().to_be_bytes());
    v.extend_from_slice(&target.ip().octets());
    v.extend_from_slice(b"tester\0");
    v
}

/// Reads a SOCKS4 reply; returns (CD, DSTPORT:DSTIP).
pub async fn read_v4_reply(s: &mut TcpStream) -> (u8, SocketAddr) {
    let mut r = [0u8; 8];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut r))
        .await
        .expect("v4 reply in time")
        .expect("v4 reply");
    assert_eq!(r[0], 0, "SOCKS4 reply VN");
    (
        r[1],
        SocketAddr::from(([r[4], r[5], r[6], r[7]], u16::from_be_bytes([r[2], r[3]]))),
    )
}

/// Wraps a payload in a SOCKS5 UDP header (FRAG = `frag`).
pub fn udp_wrap(frag: u8, target: hasocks_socks_wire::TargetAddr, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    hasocks_socks_wire::udp::UdpHeader { frag, target }.encode(&mut v);
    v.extend_from_slice(payload);
    v
}

/// Receives one datagram (with a deadline) and unwraps its SOCKS5 UDP header.
pub async fn udp_recv_unwrap(
    s: &tokio::net::UdpSocket,
) -> (hasocks_socks_wire::TargetAddr, Vec<u8>) {
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), s.recv_from(&mut buf))
        .await
        .expect("reply in time")
        .unwrap();
    let (h, len) = hasocks_socks_wire::udp::UdpHeader::decode(&buf[..n])
        .expect("reply has a SOCKS UDP header");
    assert_eq!(h.frag, 0);
    (h.target, buf[len..n].to_vec())
}

/// UDP ASSOCIATE declaring `declared` as the client's UDP source; returns the control
/// connection, REP and BND.
pub async fn udp_associate(proxy: SocketAddr, declared: SocketAddr) -> (TcpStream, u8, SocketAddr) {
    socks5(proxy, &request_ip(3, declared)).await
}

/// Greets offering `methods`; returns the selected method.
pub async fn greet_with(s: &mut TcpStream, methods: &[u8]) -> u8 {
    let mut g = vec![5, methods.len() as u8];
    g.extend_from_slice(methods);
    s.write_all(&g).await.unwrap();
    let mut b = [0u8; 2];
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(b[0], 5);
    b[1]
}

/// Sends RFC 1929 credentials; returns the reply status.
pub async fn userpass(s: &mut TcpStream, user: &[u8], pass: &[u8]) -> u8 {
    let mut m = vec![1, user.len() as u8];
    m.extend_from_slice(user);
    m.push(pass.len() as u8);
    m.extend_from_slice(pass);
    s.write_all(&m).await.unwrap();
    let mut b = [0u8; 2];
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(b[0], 1, "RFC 1929 reply VER");
    b[1]
}

/// Logs in and asks to CONNECT to `target`: (stream, RFC 1929 status, REP if status 0).
pub async fn login_connect(
    proxy: SocketAddr,
    user: &[u8],
    pass: &[u8],
    target: SocketAddr,
) -> (TcpStream, u8, Option<u8>) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    assert_eq!(greet_with(&mut s, &[0, 2]).await, 2);
    let st = userpass(&mut s, user, pass).await;
    if st != 0 {
        return (s, st, None);
    }
    s.write_all(&request_ip(1, target)).await.unwrap();
    let (rep, _) = read_reply(&mut s).await;
    (s, st, Some(rep))
}

//! Tiny SOCKS5 servers written with raw bytes, each misbehaving in one specific way, for the
//! tests of SOCKS clients (the probe, `hasocks check`, the relay's `check socks`).

use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the fake server behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fake {
    /// Honest forwarding server.
    Good,
    /// Forwards, but flips a bit in every byte going client -> target.
    Corrupt,
    /// Answers the request with this REP code.
    Reject(u8),
    /// Answers the greeting with FF.
    NoAcceptable,
    /// Reads the greeting, then closes.
    CloseAfterGreeting,
    /// Accepts and never writes.
    Silent,
    /// Replies success without connecting anywhere.
    Liar,
    /// Requires user "u" / password "p" (RFC 1929).
    NeedsLogin,
}

/// A fake SOCKS5 server on 127.0.0.1:0 behaving as `kind`; returns its address.
pub async fn fake_server(kind: Fake) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve(s, kind));
        }
    });
    addr
}

async fn serve(mut s: TcpStream, kind: Fake) -> std::io::Result<()> {
    if let Fake::Silent = kind {
        let mut sink = [0u8; 64];
        while s.read(&mut sink).await? > 0 {}
        return Ok(());
    }
    let mut hdr = [0u8; 2];
    s.read_exact(&mut hdr).await?;
    let mut methods = vec![0u8; usize::from(hdr[1])];
    s.read_exact(&mut methods).await?;
    match kind {
        Fake::CloseAfterGreeting => return Ok(()),
        Fake::NoAcceptable => {
            s.write_all(&[5, 0xff]).await?;
            return Ok(());
        }
        Fake::NeedsLogin => {
            s.write_all(&[5, 2]).await?;
            let mut v = [0u8; 2];
            s.read_exact(&mut v).await?;
            let mut user = vec![0u8; usize::from(v[1])];
            s.read_exact(&mut user).await?;
            let mut plen = [0u8; 1];
            s.read_exact(&mut plen).await?;
            let mut pass = vec![0u8; usize::from(plen[0])];
            s.read_exact(&mut pass).await?;
            let ok = user == b"u" && pass == b"p";
            s.write_all(&[1, if ok { 0 } else { 1 }]).await?;
            if !ok {
                return Ok(());
            }
        }
        _ => s.write_all(&[5, 0]).await?,
    }
    // Request: only IPv4 targets are used by these tests.
    let mut req = [0u8; 10];
    s.read_exact(&mut req).await?;
    assert_eq!(&req[..4], &[5, 1, 0, 1]);
    let target = SocketAddr::from((
        [req[4], req[5], req[6], req[7]],
        u16::from_be_bytes([req[8], req[9]]),
    ));
    if let Fake::Reject(code) = kind {
        s.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    }
    if let Fake::Liar = kind {
        s.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 1]).await?;
        let mut sink = [0u8; 64];
        while s.read(&mut sink).await? > 0 {}
        return Ok(());
    }
    let out = TcpStream::connect(target).await?;
    let b = out.local_addr()?;
    let IpAddr::V4(ip) = b.ip() else {
        return Ok(());
    };
    let mut reply = vec![5, 0, 0, 1];
    reply.extend_from_slice(&ip.octets());
    reply.extend_from_slice(&b.port().to_be_bytes());
    s.write_all(&reply).await?;
    let corrupt = matches!(kind, Fake::Corrupt);
    let (mut cr, mut cw) = s.into_split();
    let (mut tr, mut tw) = out.into_split();
    let up = async move {
        let mut buf = [0u8; 1024];
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 {
                return tw.shutdown().await;
            }
            if corrupt {
                buf[..n].iter_mut().for_each(|b| *b ^= 1);
            }
            tw.write_all(&buf[..n]).await?;
        }
    };
    let down = async move {
        tokio::io::copy(&mut tr, &mut cw).await?;
        cw.shutdown().await
    };
    let _ = tokio::join!(up, down);
    Ok(())
}

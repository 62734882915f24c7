//! Failure classification: what went wrong, mapped to SOCKS reply codes and log text.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use hasocks_socks_wire::v5::ReplyCode;
use hasocks_socks_wire::{v4, v5, TargetAddr};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::Version;

/// The reply code for an outgoing connect error.
pub fn code_for_io(e: &io::Error) -> ReplyCode {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ReplyCode::ConnectionRefused,
        io::ErrorKind::NetworkUnreachable => ReplyCode::NetworkUnreachable,
        io::ErrorKind::HostUnreachable => ReplyCode::HostUnreachable,
        io::ErrorKind::TimedOut => ReplyCode::TtlExpired,
        io::ErrorKind::AddrNotAvailable => ReplyCode::NetworkUnreachable,
        _ => match e.raw_os_error() {
            Some(code) if code == rustix_enetunreach() => ReplyCode::NetworkUnreachable,
            _ => ReplyCode::GeneralFailure,
        },
    }
}

// ENETUNREACH on Linux; io::ErrorKind already covers it on current Rust, kept for older kinds.
const fn rustix_enetunreach() -> i32 {
    101
}

/// Sends a reply in the client's SOCKS version. SOCKS4 has only granted (90) / rejected (91).
pub async fn send(
    stream: &mut TcpStream,
    version: Version,
    code: ReplyCode,
    bound: SocketAddr,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(32);
    match version {
        Version::V5 => v5::Reply::new(code, TargetAddr::Ip(bound)).encode(&mut out),
        Version::V4 => {
            let ip = match bound {
                SocketAddr::V4(a) => *a.ip(),
                SocketAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
            };
            let c = if code == ReplyCode::Succeeded {
                v4::GRANTED
            } else {
                v4::REJECTED
            };
            v4::Reply {
                code: c,
                port: bound.port(),
                ip,
            }
            .encode(&mut out)
        }
    }
    // After `gssapi` with per-message protection, the reply is encapsulated too.
    match super::gssapi::protected() {
        Some(p) => p.send(stream, &out).await,
        None => stream.write_all(&out).await,
    }
}

/// Sends a failure reply and ignores write errors (the client may be gone already).
pub async fn fail(stream: &mut TcpStream, version: Version, code: ReplyCode) {
    let unspecified = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    let _ = send(stream, version, code, unspecified).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_map_to_rfc1928_codes() {
        let e = |k| io::Error::from(k);
        assert_eq!(
            code_for_io(&e(io::ErrorKind::ConnectionRefused)),
            ReplyCode::ConnectionRefused
        );
        assert_eq!(
            code_for_io(&e(io::ErrorKind::TimedOut)),
            ReplyCode::TtlExpired
        );
        assert_eq!(
            code_for_io(&io::Error::from_raw_os_error(101)),
            ReplyCode::NetworkUnreachable
        );
        assert_eq!(
            code_for_io(&io::Error::from_raw_os_error(113)),
            ReplyCode::HostUnreachable
        );
        assert_eq!(
            code_for_io(&e(io::ErrorKind::Other)),
            ReplyCode::GeneralFailure
        );
    }
}

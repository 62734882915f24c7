//! Socket set-up: outgoing connects with a deadline and a source address, listeners, route
//! and interface address lookups, and the open-file limit.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream};

/// Listen backlog for `listen_tcp`; the kernel clamps it to net.core.somaxconn.
pub const LISTEN_BACKLOG: i32 = 1024;

/// Per-socket TCP options (relayd's `protocol { tcp { ... } }`); None leaves the socket's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpTuning {
    /// TCP_NODELAY.
    pub nodelay: Option<bool>,
    /// SO_SNDBUF and SO_RCVBUF, bytes.
    pub buffer: Option<u32>,
    /// IP_TTL (IPv6: IPV6_UNICAST_HOPS).
    pub ttl: Option<u8>,
    /// IP_MINTTL (IPv6: IPV6_MINHOPCOUNT).
    pub min_ttl: Option<u8>,
}

/// Applies `t` to a socket: a listener (Linux copies these options to every connection it
/// accepts, so sessions pay no system call for them) or an outgoing socket before its connect
/// (so the buffer sizes shape the window scale of the SYN, and the SYN has the TTL).
pub fn tune(fd: &impl std::os::fd::AsFd, t: &TcpTuning) -> io::Result<()> {
    let sock = socket2::SockRef::from(fd);
    if let Some(on) = t.nodelay {
        sock.set_nodelay(on)?;
    }
    if let Some(bytes) = t.buffer {
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        sock.set_send_buffer_size(bytes)?;
        sock.set_recv_buffer_size(bytes)?;
    }
    let v6 = sock.domain()? == Domain::IPV6;
    if let Some(ttl) = t.ttl {
        if v6 {
            sock.set_unicast_hops_v6(u32::from(ttl))?;
        } else {
            sock.set_ttl(u32::from(ttl))?;
        }
    }
    if let Some(min) = t.min_ttl {
        use hasocks_syslib::sockopt::{set_min_ttl, Family};
        use std::os::fd::AsFd;
        let family = if v6 { Family::V6 } else { Family::V4 };
        set_min_ttl(sock.as_fd(), family, min)?;
    }
    Ok(())
}

/// Sets a listening socket's backlog: listen(2) again on a listening socket changes it in
/// place (the kernel clamps it to net.core.somaxconn), so a reload needs no new socket.
pub fn set_backlog(l: &std::net::TcpListener, backlog: u32) -> io::Result<()> {
    socket2::SockRef::from(l).listen(i32::try_from(backlog).unwrap_or(i32::MAX))
}

/// TCP connect with a deadline; if `local` is given, bind that source address first with
/// IP_BIND_ADDRESS_NO_PORT (so the kernel picks the port at connect time: no local-port
/// exhaustion under high session rates) and port 0. Sets TCP_NODELAY.
pub async fn connect_tcp(
    target: SocketAddr,
    local: Option<IpAddr>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    connect_tcp_tuned(target, local, timeout, &TcpTuning::default()).await
}

/// [`connect_tcp`] with `tune` applied before the connect (its `nodelay` over the default on).
pub async fn connect_tcp_tuned(
    target: SocketAddr,
    local: Option<IpAddr>,
    timeout: Duration,
    tuning: &TcpTuning,
) -> io::Result<TcpStream> {
    let sock = Socket::new(
        Domain::for_address(target),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    if let Some(ip) = local {
        if ip.is_ipv4() != target.is_ipv4() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("source address {ip} and target {target} are of different families"),
            ));
        }
        // Without this, bind(port 0) reserves a port for the 2-tuple alone and a busy relay
        // runs out of ports long before it runs out of 4-tuples. Only an optimisation, so a
        // kernel that lacks it is not an error.
        if let Err(e) = nix::sys::socket::setsockopt(
            &sock,
            nix::sys::socket::sockopt::IpBindAddressNoPort,
            &true,
        ) {
            tracing::debug!("IP_BIND_ADDRESS_NO_PORT not set: {e}");
        }
        sock.bind(&SocketAddr::new(ip, 0).into())?;
    }
    sock.set_nodelay(true)?;
    tune(&sock, tuning)?;
    let pending = match sock.connect(&target.into()) {
        Ok(()) => false,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => true,
        Err(e) => return Err(e),
    };
    let stream = TcpStream::from_std(sock.into())?;
    if pending {
        connected(&stream, target, timeout).await?;
    }
    Ok(stream)
}

/// Waits for a nonblocking connect to finish, until `timeout`.
async fn connected(stream: &TcpStream, target: SocketAddr, timeout: Duration) -> io::Result<()> {
    let ready = tokio::time::timeout(timeout, stream.ready(Interest::WRITABLE))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect to {target} timed out after {timeout:?}"),
            )
        })??;
    // Writable without an error or hang-up means connected; only a failure needs SO_ERROR
    // (a getsockopt(2) per connect saved).
    if ready.is_error() || ready.is_write_closed() {
        return Err(stream.take_error()?.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::ConnectionReset,
                format!("connection to {target} closed while connecting"),
            )
        }));
    }
    Ok(())
}

/// Listening socket with SO_REUSEADDR, backlog 1024, nonblocking, for tokio.
/// Must be called from inside a tokio runtime.
pub fn listen_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::from_std(listen_tcp_std(addr)?)
}

/// [`listen_tcp`] outside any runtime: a nonblocking std listener, to be registered by
/// whichever runtime's task will accept on it.
pub fn listen_tcp_std(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let sock = bound_tcp(addr, false, false)?;
    sock.listen(LISTEN_BACKLOG)?;
    Ok(sock.into())
}

/// `count` nonblocking listening sockets on one address, for `count` threads that each accept
/// on their own: with more than one they share the address through SO_REUSEPORT and the
/// kernel spreads new connections over them. An address somebody already holds is still an
/// error (a plain bind is tried first), so a second relay started by mistake does not quietly
/// take half the connections. Port 0 gets one kernel-chosen port for all of them.
pub fn listen_tcp_shared(addr: SocketAddr, count: usize) -> io::Result<Vec<std::net::TcpListener>> {
    listen_tcp_group(addr, count, false).map(|(l, _)| l)
}

/// [`listen_tcp_shared`]; with `freebind`, an address that is not (yet) on this machine is
/// bound anyway with IP_FREEBIND, as the backup of a VRRP pair needs for the shared address
/// it does not hold yet. Also says whether IP_FREEBIND was needed.
pub fn listen_tcp_group(
    addr: SocketAddr,
    count: usize,
    freebind: bool,
) -> io::Result<(Vec<std::net::TcpListener>, bool)> {
    let free = match bound_tcp(addr, false, false) {
        Ok(probe) => {
            drop(probe);
            false
        }
        Err(e)
            if freebind
                && e.raw_os_error() == Some(rustix::io::Errno::ADDRNOTAVAIL.raw_os_error()) =>
        {
            true
        }
        Err(e) => return Err(e),
    };
    if count <= 1 {
        let sock = bound_tcp(addr, false, free)?;
        sock.listen(LISTEN_BACKLOG)?;
        return Ok((vec![sock.into()], free));
    }
    let first = bound_tcp(addr, true, free)?;
    let actual = first.local_addr()?.as_socket().unwrap_or(addr);
    let mut all = vec![first];
    for _ in 1..count {
        all.push(bound_tcp(actual, true, free)?);
    }
    for sock in &all {
        sock.listen(LISTEN_BACKLOG)?;
    }
    Ok((all.into_iter().map(Into::into).collect(), free))
}

/// Sets TCP keepalive on a listening socket (Linux hands it to every accepted connection, so
/// the data path pays nothing per session): idle `idle`, then 4 probes `idle / 4` apart (at
/// least 1 s). None turns it off.
pub fn set_keepalive(
    l: &std::net::TcpListener,
    idle: Option<std::time::Duration>,
) -> io::Result<()> {
    let s = socket2::SockRef::from(l);
    match idle {
        None => s.set_keepalive(false),
        Some(idle) => {
            let every = (idle / 4).max(std::time::Duration::from_secs(1));
            s.set_tcp_keepalive(
                &socket2::TcpKeepalive::new()
                    .with_time(idle)
                    .with_interval(every)
                    .with_retries(4),
            )
        }
    }
}

/// A nonblocking TCP socket with SO_REUSEADDR (and SO_REUSEPORT if `share`, IP_FREEBIND if
/// `freebind`), bound to `addr`.
fn bound_tcp(addr: SocketAddr, share: bool, freebind: bool) -> io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if share {
        sock.set_reuse_port(true)?;
    }
    if freebind {
        if addr.is_ipv4() {
            sock.set_freebind(true)?;
        } else {
            sock.set_freebind_ipv6(true)?;
        }
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    Ok(sock)
}

/// The source address the kernel would use towards `dst` (UDP connect trick, sends nothing).
pub fn route_source(dst: IpAddr) -> io::Result<IpAddr> {
    let any: IpAddr = match dst {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let sock = UdpSocket::bind(SocketAddr::new(any, 0))?;
    // A UDP connect only selects the route and source address; no packet leaves.
    sock.connect(SocketAddr::new(dst, 9))?;
    Ok(sock.local_addr()?.ip())
}

/// Addresses configured on an interface, or Ok(None) when no such interface exists.
pub fn interface_addrs(name: &str) -> io::Result<Option<Vec<IpAddr>>> {
    let mut found = false;
    let mut addrs = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(io::Error::from)? {
        if ifa.interface_name != name {
            continue;
        }
        // An interface without IP addresses still shows up (as a link-layer entry).
        found = true;
        let Some(sa) = ifa.address else { continue };
        if let Some(v4) = sa.as_sockaddr_in() {
            addrs.push(IpAddr::V4(v4.ip()));
        } else if let Some(v6) = sa.as_sockaddr_in6() {
            addrs.push(IpAddr::V6(v6.ip()));
        }
    }
    Ok(found.then_some(addrs))
}

/// Whether an error comes from this machine running out of something (descriptors, memory,
/// buffers, local ports) rather than from the peer: a check that fails this way says nothing
/// about the host it was checking.
pub fn is_local_exhaustion(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        Errno::from_io_error(e),
        Some(
            Errno::MFILE
                | Errno::NFILE
                | Errno::NOBUFS
                | Errno::NOMEM
                | Errno::ADDRNOTAVAIL
                | Errno::ADDRINUSE
                | Errno::AGAIN
        )
    )
}

/// Raise the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let cur = getrlimit(Resource::Nofile);
    // Linux refuses an infinite NOFILE; fall back to the usual fs.nr_open default.
    let target = cur.maximum.unwrap_or(1 << 20);
    if cur.current == Some(target) {
        return Ok(target);
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: cur.maximum,
        },
    )?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_interface_has_loopback_address() {
        let addrs = interface_addrs("lo").unwrap().expect("lo exists");
        assert!(addrs.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }

    #[test]
    fn unknown_interface_is_none() {
        assert_eq!(interface_addrs("no-such-if0").unwrap(), None);
    }

    #[test]
    fn route_to_loopback_leaves_from_loopback() {
        let src = route_source(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5))).unwrap();
        assert!(src.is_loopback());
    }

    #[test]
    fn shared_listeners_take_one_port_and_each_accepts() {
        let group = listen_tcp_shared("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let addrs: Vec<SocketAddr> = group.iter().map(|l| l.local_addr().unwrap()).collect();
        assert_eq!(addrs.len(), 3);
        assert!(addrs.iter().all(|a| *a == addrs[0]), "{addrs:?}");
        // The kernel spreads connections by their source port: enough of them reach every one.
        let clients: Vec<std::net::TcpStream> = (0..64)
            .map(|_| std::net::TcpStream::connect(addrs[0]).unwrap())
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut accepted = 0;
        for l in &group {
            let mut mine = 0;
            while l.accept().is_ok() {
                mine += 1;
            }
            assert!(mine > 0, "a listener of the group got no connection");
            accepted += mine;
        }
        assert_eq!(accepted, clients.len());
    }

    #[test]
    fn an_address_in_use_is_refused_even_for_a_shared_group() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        for count in [1, 2] {
            let err = listen_tcp_shared(addr, count).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "count {count}");
        }
        // Nor can a second group join a first one.
        let first = listen_tcp_shared("127.0.0.1:0".parse().unwrap(), 2).unwrap();
        let err = listen_tcp_shared(first[0].local_addr().unwrap(), 2).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn running_out_of_descriptors_or_ports_is_local_and_a_refusal_is_not() {
        use rustix::io::Errno;
        for e in [
            Errno::MFILE,
            Errno::NFILE,
            Errno::ADDRNOTAVAIL,
            Errno::ADDRINUSE,
        ] {
            let err = io::Error::from_raw_os_error(e.raw_os_error());
            assert!(is_local_exhaustion(&err), "{err}");
        }
        for e in [Errno::CONNREFUSED, Errno::TIMEDOUT, Errno::HOSTUNREACH] {
            let err = io::Error::from_raw_os_error(e.raw_os_error());
            assert!(!is_local_exhaustion(&err), "{err}");
        }
    }

    #[test]
    fn an_address_not_on_this_machine_binds_only_with_freebind() {
        // TEST-NET-3, never configured here.
        let away: SocketAddr = "203.0.113.77:0".parse().unwrap();
        let err = listen_tcp_group(away, 2, false).unwrap_err();
        assert_eq!(
            err.raw_os_error(),
            Some(rustix::io::Errno::ADDRNOTAVAIL.raw_os_error())
        );
        let (group, free) = listen_tcp_group(away, 2, true).expect("freebind");
        assert!(free);
        assert_eq!(group.len(), 2);
        let (_, free) = listen_tcp_group("127.0.0.1:0".parse().unwrap(), 1, true).unwrap();
        assert!(!free, "a local address needs no freebind");
    }

    #[test]
    fn nofile_limit_is_raised_to_hard_limit() {
        let got = raise_nofile_limit().unwrap();
        let now = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(now.current, Some(got));
    }
}

//! Socket options that neither socket2 nor rustix nor nix wrap: IP_MINTTL and
//! IPV6_MINHOPCOUNT (RFC 5082, GTSM), for relayd's `tcp { ip minttl N }`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use libc::{c_int, c_void, socklen_t};

/// Whether the option is for an IPv4 or an IPv6 socket (the kernel has one of each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IP_MINTTL.
    V4,
    /// IPV6_MINHOPCOUNT.
    V6,
}

fn level_name(family: Family) -> (c_int, c_int) {
    match family {
        Family::V4 => (libc::IPPROTO_IP, libc::IP_MINTTL),
        Family::V6 => (libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT),
    }
}

/// Sets the lowest TTL (hop limit) a received packet may have; 0 turns the check off.
pub fn set_min_ttl(fd: BorrowedFd<'_>, family: Family, ttl: u8) -> io::Result<()> {
    let (level, name) = level_name(family);
    let value: c_int = c_int::from(ttl);
    let len = socklen_t::try_from(std::mem::size_of::<c_int>()).unwrap_or(4);
    // SAFETY: `fd` is a borrowed open descriptor; the value pointer is to a local int that
    // lives through the call and `len` is its size, as setsockopt(2) reads it.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(&value).cast::<c_void>(),
            len,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The lowest TTL (hop limit) a received packet may have (0 = no check).
pub fn min_ttl(fd: BorrowedFd<'_>, family: Family) -> io::Result<u8> {
    let (level, name) = level_name(family);
    let mut value: c_int = 0;
    let mut len = socklen_t::try_from(std::mem::size_of::<c_int>()).unwrap_or(4);
    // SAFETY: `fd` is a borrowed open descriptor; value and len are locals that outlive the
    // call, len holding value's size, as getsockopt(2) requires.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_mut(&mut value).cast::<c_void>(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    u8::try_from(value).map_err(|_| io::Error::other(format!("min TTL {value} out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn min_ttl_reads_back_what_was_set_on_both_families() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(min_ttl(v4.as_fd(), Family::V4).unwrap(), 0);
        set_min_ttl(v4.as_fd(), Family::V4, 250).unwrap();
        assert_eq!(min_ttl(v4.as_fd(), Family::V4).unwrap(), 250);
        if let Ok(v6) = std::net::TcpListener::bind("[::1]:0") {
            set_min_ttl(v6.as_fd(), Family::V6, 9).unwrap();
            assert_eq!(min_ttl(v6.as_fd(), Family::V6).unwrap(), 9);
        }
    }
}

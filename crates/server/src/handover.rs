//! What passes from a running server to the one that upgrades it: the listening sockets, by
//! configured `internal:` address (the same sockets, so no connection is refused). Sessions
//! and UDP associations stay with the old process and run to their end there. The skeleton
//! (hasocks-lifecycle) carries the description and the descriptors.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use hasocks_lifecycle::{Handover, HandoverError};
use serde::{Deserialize, Serialize};

/// Version of the hand-over description.
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    v: u32,
    /// Configured `internal:` addresses (port 0 stays 0), one socket each, in order.
    listeners: Vec<SocketAddr>,
}

fn meta(bytes: &[u8]) -> Result<Meta, HandoverError> {
    hasocks_lifecycle::handover::read_description(bytes, VERSION)
}

/// How many descriptors a description says follow it.
pub(crate) fn count_fds(bytes: &[u8]) -> Result<usize, HandoverError> {
    Ok(meta(bytes)?.listeners.len())
}

/// The listening sockets a predecessor handed over, by configured address.
pub(crate) fn inherit(
    bytes: &[u8],
    fds: Vec<OwnedFd>,
) -> Result<Vec<(SocketAddr, std::net::TcpListener)>, HandoverError> {
    let m = meta(bytes)?;
    let groups = hasocks_lifecycle::handover::split_listeners(&vec![1; m.listeners.len()], fds)?;
    Ok(m.listeners
        .into_iter()
        .zip(groups.into_iter().flatten())
        .collect())
}

/// The description and descriptors of `listeners`, for a successor.
pub(crate) fn describe(listeners: Vec<(SocketAddr, std::net::TcpListener)>) -> Handover {
    let m = Meta {
        v: VERSION,
        listeners: listeners.iter().map(|(a, _)| *a).collect(),
    };
    Handover {
        meta: serde_json::to_vec(&m).unwrap_or_default(),
        fds: listeners
            .into_iter()
            .map(|(_, l)| OwnedFd::from(l))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_round_trips_with_its_sockets() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let bound = l.local_addr().unwrap();
        let configured: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let h = describe(vec![(configured, l)]);
        assert_eq!(count_fds(&h.meta).unwrap(), 1);
        let got = inherit(&h.meta, h.fds).unwrap();
        assert_eq!(got[0].0, configured);
        assert_eq!(got[0].1.local_addr().unwrap(), bound);
    }

    #[test]
    fn another_version_is_refused() {
        let e = count_fds(br#"{"v":2,"listeners":[]}"#).unwrap_err();
        assert_eq!(e, HandoverError::Version { got: 2, reads: 1 });
    }
}

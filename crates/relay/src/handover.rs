//! What passes from a running relay to the one that upgrades it: the listening sockets (the
//! same sockets, so no connection is refused and nothing queued in the kernel is lost) and
//! every host's state (so the successor serves at once instead of starting `unknown`), and
//! whether `relay drain` is in effect (an upgrade must not put a drained relay back in its
//! tier). The
//! description travels as JSON, the sockets as descriptors (hasocks-lifecycle).

use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use hasocks_lifecycle::{Handover, HandoverError};
use serde::{Deserialize, Serialize};

use crate::generation::ListenKey;
use crate::records::HostKey;
use hasocks_ctl_proto::relay::HostState;

/// Version of the hand-over description.
const VERSION: u32 = 1;

/// Sockets and states a relay starts with besides its config.
#[derive(Debug, Default)]
pub struct Inherit {
    pub(crate) listeners: Vec<(ListenKey, Vec<std::net::TcpListener>)>,
    pub(crate) hosts: Vec<(HostKey, HostState)>,
    pub(crate) draining: bool,
}

impl Inherit {
    /// Adds listening sockets from socket activation, matched to `listen on` lines by the
    /// address they are bound to.
    pub fn activated(mut self, sockets: Vec<std::net::TcpListener>) -> Self {
        for s in sockets {
            match s.local_addr() {
                Ok(addr) => self.listeners.push((
                    ListenKey {
                        addr,
                        ephemeral: None,
                    },
                    vec![s],
                )),
                Err(e) => tracing::warn!("socket activation: a socket without an address: {e}"),
            }
        }
        self
    }

    /// Sockets and states received from a predecessor: its description and descriptors.
    pub fn from_handover(meta: &[u8], fds: Vec<OwnedFd>) -> Result<Inherit, HandoverError> {
        let m = Meta::read(meta)?;
        let counts: Vec<usize> = m.listeners.iter().map(|l| l.count).collect();
        let groups = hasocks_lifecycle::handover::split_listeners(&counts, fds)?;
        let listeners = m
            .listeners
            .into_iter()
            .zip(groups)
            .map(|(l, socks)| {
                (
                    ListenKey {
                        addr: l.addr,
                        ephemeral: l.ephemeral,
                    },
                    socks,
                )
            })
            .collect();
        let hosts = m
            .hosts
            .into_iter()
            .map(|h| {
                (
                    HostKey {
                        table: h.table,
                        name: h.name,
                        port: h.port,
                    },
                    h.state,
                )
            })
            .collect();
        Ok(Inherit {
            listeners,
            hosts,
            draining: m.draining,
        })
    }

    /// How many descriptors a description says follow it.
    pub fn count_fds(meta: &[u8]) -> Result<usize, HandoverError> {
        Ok(Meta::read(meta)?.listeners.iter().map(|l| l.count).sum())
    }
}

/// What a running relay offers its successor.
#[derive(Debug)]
pub struct Offer {
    meta: Meta,
    sockets: Vec<std::net::TcpListener>,
}

impl Offer {
    pub(crate) fn new(
        listeners: Vec<(ListenKey, Vec<std::net::TcpListener>)>,
        hosts: Vec<(HostKey, HostState)>,
        draining: bool,
    ) -> Offer {
        let mut sockets = Vec::new();
        let mut ls = Vec::new();
        for (k, socks) in listeners {
            ls.push(MetaListener {
                addr: k.addr,
                ephemeral: k.ephemeral,
                count: socks.len(),
            });
            sockets.extend(socks);
        }
        Offer {
            meta: Meta {
                v: VERSION,
                listeners: ls,
                hosts: hosts
                    .into_iter()
                    .map(|(k, state)| MetaHost {
                        table: k.table,
                        name: k.name,
                        port: k.port,
                        state,
                    })
                    .collect(),
                draining,
            },
            sockets,
        }
    }

    /// The description and the descriptors, in the description's order.
    pub fn into_handover(self) -> Handover {
        Handover {
            meta: serde_json::to_vec(&self.meta).unwrap_or_default(),
            fds: self.sockets.into_iter().map(OwnedFd::from).collect(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    v: u32,
    listeners: Vec<MetaListener>,
    hosts: Vec<MetaHost>,
    /// Absent from a predecessor that predates drain: not draining.
    #[serde(default)]
    draining: bool,
}

impl Meta {
    fn read(bytes: &[u8]) -> Result<Meta, HandoverError> {
        hasocks_lifecycle::handover::read_description(bytes, VERSION)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct MetaListener {
    addr: SocketAddr,
    ephemeral: Option<(String, usize)>,
    count: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct MetaHost {
    table: String,
    name: String,
    port: u16,
    state: HostState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drain_passes_to_the_successor_and_an_older_predecessor_means_none() {
        for draining in [true, false] {
            let h = Offer::new(Vec::new(), Vec::new(), draining).into_handover();
            let got = Inherit::from_handover(&h.meta, h.fds).expect("description");
            assert_eq!(got.draining, draining);
        }
        let old = br#"{"v":1,"listeners":[],"hosts":[]}"#;
        let got = Inherit::from_handover(old, Vec::new()).expect("description");
        assert!(!got.draining);
    }
}

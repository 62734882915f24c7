//! Runtime state of one table instance (`name:port`): its resolved hosts, the immutable health
//! snapshot the accept path reads without locks, and per-host open-session counters.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use conf::relayd::Check;
use tokio::sync::{watch, Notify};

use crate::select::{HostKey, HostView};
use crate::status::{HostState, HostStatus, TableStatus};

/// A host's health record, as published in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostHealth {
    pub state: HostState,
    pub checks: u64,
    pub ups: u64,
    pub failed_in_row: u32,
    pub last_error: Option<String>,
    pub last_ms: Option<u64>,
}

/// The immutable health snapshot of a table; replaced whole on every change.
#[derive(Debug, Clone)]
pub(crate) struct Health {
    pub hosts: Vec<HostHealth>,
}

/// A resolved host.
#[derive(Debug)]
pub(crate) struct HostRt {
    pub name: String,
    pub addr: SocketAddr,
    pub retry: u32,
    /// Sessions open to this host now.
    pub open: AtomicU64,
    /// Disabled from the control socket.
    pub disabled: AtomicBool,
}

/// One table instance.
#[derive(Debug)]
pub(crate) struct TableRt {
    /// `table:port`.
    pub name: String,
    pub disabled: bool,
    pub check: Option<Check>,
    pub interval: Duration,
    pub timeout: Duration,
    pub hosts: Vec<HostRt>,
    /// Hash identities, same order as `hosts`.
    pub keys: Vec<HostKey>,
    pub health: ArcSwap<Health>,
    /// True once the first round of checks finished.
    pub ready: watch::Sender<bool>,
    /// Wakes the health task for an immediate round (`poll`).
    pub poll: Notify,
}

impl TableRt {
    /// A table whose hosts start Unknown (checked), Up (no check) or Disabled.
    pub fn new(
        name: String,
        disabled: bool,
        check: Option<Check>,
        interval: Duration,
        timeout: Duration,
        hosts: Vec<HostRt>,
    ) -> TableRt {
        let initial = if disabled {
            HostState::Disabled
        } else if check.is_none() {
            HostState::Up
        } else {
            HostState::Unknown
        };
        let health = Health {
            hosts: hosts
                .iter()
                .map(|_| HostHealth {
                    state: initial,
                    checks: 0,
                    ups: 0,
                    failed_in_row: 0,
                    last_error: None,
                    last_ms: None,
                })
                .collect(),
        };
        let keys = hosts
            .iter()
            .map(|h| HostKey {
                name: h.name.clone(),
                port: h.addr.port(),
            })
            .collect();
        let (ready, _) = watch::channel(disabled || check.is_none());
        TableRt {
            name,
            disabled,
            check,
            interval,
            timeout,
            hosts,
            keys,
            health: ArcSwap::from_pointee(health),
            ready,
            poll: Notify::new(),
        }
    }

    /// What the selector needs: which hosts are up, and their open sessions.
    pub fn view(&self) -> Vec<HostView> {
        let health = self.health.load();
        self.hosts
            .iter()
            .zip(health.hosts.iter())
            .map(|(h, s)| HostView {
                up: s.state == HostState::Up && !h.disabled.load(Ordering::Relaxed),
                open: h.open.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Plain-data status for ctl and tests.
    pub fn status(&self) -> TableStatus {
        let health = self.health.load();
        TableStatus {
            name: self.name.clone(),
            disabled: self.disabled,
            check: self.check.as_ref().map(check_name),
            interval: self.interval,
            timeout: self.timeout,
            hosts: self
                .hosts
                .iter()
                .zip(health.hosts.iter())
                .map(|(h, s)| HostStatus {
                    name: h.name.clone(),
                    addr: h.addr,
                    state: if h.disabled.load(Ordering::Relaxed) {
                        HostState::Disabled
                    } else {
                        s.state
                    },
                    checks: s.checks,
                    ups: s.ups,
                    failed_in_row: s.failed_in_row,
                    last_error: s.last_error.clone(),
                    last_ms: s.last_ms,
                    open: h.open.load(Ordering::Relaxed),
                })
                .collect(),
        }
    }
}

/// The check's type word, as relayd logs it.
pub(crate) fn check_name(check: &Check) -> &'static str {
    match check {
        Check::Tcp => "tcp",
        Check::Send { .. } => "send expect",
        Check::Binary { .. } => "binary send expect",
        Check::Script(_) => "script",
        Check::Socks { .. } => "socks",
    }
}

/// Counts a session as open on a host for as long as it lives (for `least-states`).
pub(crate) struct OpenGuard {
    table: Arc<TableRt>,
    host: usize,
}

impl OpenGuard {
    /// Marks one more session open on `table.hosts[host]`.
    pub fn new(table: Arc<TableRt>, host: usize) -> OpenGuard {
        if let Some(h) = table.hosts.get(host) {
            h.open.fetch_add(1, Ordering::Relaxed);
        }
        OpenGuard { table, host }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        if let Some(h) = self.table.hosts.get(self.host) {
            h.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

//! relayctl's `host`, `table` and `relay` commands: they set the flags of long-lived records
//! (so a reload keeps them), wake a pool's checker where a host or table comes back, and tell
//! the monitors.

use std::sync::atomic::Ordering;

use crate::error::CtlError;
use crate::events::{EventKind, Events};
use crate::generation::Generation;
use hasocks_ctl_proto::relay::{HostAction, Target};

/// `host disable|enable|drain NAME|ID` on every host of `gen` that matches (a name can be in
/// several pools); how many matched.
pub(crate) fn host(
    gen: &Generation,
    events: &Events,
    target: &Target,
    action: HostAction,
) -> Result<usize, CtlError> {
    let mut n = 0;
    for (pool, h) in gen.hosts() {
        let r = &h.record;
        let hit = match target {
            Target::Id(id) => r.id == *id,
            Target::Name(s) => r.key.name == *s || format!("{}:{}", r.key.name, r.key.port) == *s,
        };
        if !hit {
            continue;
        }
        n += 1;
        let (id, name) = (r.id, r.key.name.clone());
        match action {
            HostAction::Disable => {
                r.disabled.store(true, Ordering::Relaxed);
                events.emit(EventKind::HostDisable { id, name });
            }
            HostAction::Drain => {
                r.draining.store(true, Ordering::Relaxed);
                events.emit(EventKind::HostDrain { id, name });
            }
            HostAction::Enable => {
                r.disabled.store(false, Ordering::Relaxed);
                r.draining.store(false, Ordering::Relaxed);
                pool.poll.notify_one();
                events.emit(EventKind::HostEnable { id, name });
            }
        }
    }
    found(n, "host", target)
}

/// `table disable|enable NAME|ID` (a name with or without `:port`).
pub(crate) fn table(
    gen: &Generation,
    events: &Events,
    target: &Target,
    enable: bool,
) -> Result<usize, CtlError> {
    let mut n = 0;
    for t in &gen.tables {
        let hit = match target {
            Target::Id(id) => t.record.id == *id,
            Target::Name(s) => t.name == *s || t.name.rsplit_once(':').map(|p| p.0) == Some(s),
        };
        if !hit {
            continue;
        }
        n += 1;
        t.record.disabled.store(!enable, Ordering::Relaxed);
        let (id, name) = (t.record.id, t.name.clone());
        if enable {
            t.poll.notify_one();
            events.emit(EventKind::TableEnable { id, name });
        } else {
            events.emit(EventKind::TableDisable { id, name });
        }
    }
    found(n, "table", target)
}

/// `relay disable|enable NAME|ID`: a disabled relay closes what it accepts.
pub(crate) fn relay(
    gen: &Generation,
    events: &Events,
    target: &Target,
    enable: bool,
) -> Result<usize, CtlError> {
    let mut n = 0;
    for r in &gen.relays {
        let hit = match target {
            Target::Id(id) => r.record.id == *id,
            Target::Name(s) => r.record.name == *s,
        };
        if !hit {
            continue;
        }
        n += 1;
        r.record.disabled.store(!enable, Ordering::Relaxed);
        let (id, name) = (r.record.id, r.record.name.clone());
        events.emit(if enable {
            EventKind::RelayEnable { id, name }
        } else {
            EventKind::RelayDisable { id, name }
        });
    }
    found(n, "relay", target)
}

/// `n` matches, or the error that none matched.
fn found(n: usize, what: &'static str, target: &Target) -> Result<usize, CtlError> {
    if n == 0 {
        Err(CtlError::NotFound {
            what,
            name: target.to_string(),
        })
    } else {
        Ok(n)
    }
}

//! relayctl's `host`, `table` and `relay` commands: they set the flags of long-lived records
//! (so a reload keeps them), wake a pool's checker where a host or table comes back, and tell
//! the monitors.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::CtlError;
use crate::events::{EventKind, Events};
use crate::generation::{Generation, RedirectGen, RelayGen};
use crate::pool::{Pool, PoolHost};
use hasocks_ctl_proto::relay::{HostAction, Target};

/// What a command can name: by id, or by a name it answers to.
trait Named {
    fn id(&self) -> u32;
    fn answers_to(&self, name: &str) -> bool;
}

impl Named for (&Arc<Pool>, &PoolHost) {
    fn id(&self) -> u32 {
        self.1.record.id
    }
    /// Its name, or `name:port`.
    fn answers_to(&self, s: &str) -> bool {
        let k = &self.1.record.key;
        k.name == s || format!("{}:{}", k.name, k.port) == s
    }
}

impl Named for &Arc<Pool> {
    fn id(&self) -> u32 {
        self.record.id
    }
    /// `table:port`, or the table's name alone.
    fn answers_to(&self, s: &str) -> bool {
        self.name == s || self.name.rsplit_once(':').map(|p| p.0) == Some(s)
    }
}

impl Named for &Arc<RelayGen> {
    fn id(&self) -> u32 {
        self.record.id
    }
    fn answers_to(&self, s: &str) -> bool {
        self.record.name == s
    }
}

impl Named for &Arc<RedirectGen> {
    fn id(&self) -> u32 {
        self.record.id
    }
    fn answers_to(&self, s: &str) -> bool {
        self.name == s
    }
}

/// `host disable|enable|drain NAME|ID` on every host of `gen` that matches (a name can be in
/// several pools); how many matched.
pub(crate) fn host(
    gen: &Generation,
    events: &Events,
    target: &Target,
    action: HostAction,
) -> Result<usize, CtlError> {
    each(gen.hosts(), "host", target, |(pool, h)| {
        let r = &h.record;
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
    })
}

/// `table disable|enable NAME|ID`.
pub(crate) fn table(
    gen: &Generation,
    events: &Events,
    target: &Target,
    enable: bool,
) -> Result<usize, CtlError> {
    each(gen.tables.iter(), "table", target, |t| {
        t.record.disabled.store(!enable, Ordering::Relaxed);
        let (id, name) = (t.record.id, t.name.clone());
        if enable {
            t.poll.notify_one();
            events.emit(EventKind::TableEnable { id, name });
        } else {
            events.emit(EventKind::TableDisable { id, name });
        }
    })
}

/// `relay disable|enable NAME|ID`: a disabled relay closes what it accepts.
pub(crate) fn relay(
    gen: &Generation,
    events: &Events,
    target: &Target,
    enable: bool,
) -> Result<usize, CtlError> {
    each(gen.relays.iter(), "relay", target, |r| {
        r.record.disabled.store(!enable, Ordering::Relaxed);
        let (id, name) = (r.record.id, r.record.name.clone());
        events.emit(if enable {
            EventKind::RelayEnable { id, name }
        } else {
            EventKind::RelayDisable { id, name }
        });
    })
}

/// `redirect disable|enable NAME|ID`: the next plan drops or restores its rules.
pub(crate) fn redirect(gen: &Generation, target: &Target, enable: bool) -> Result<usize, CtlError> {
    each(gen.redirects.iter(), "redirect", target, |r| {
        r.record.disabled.store(!enable, Ordering::Relaxed);
        tracing::info!(
            "redirect {}: {}",
            r.name,
            if enable { "enabled" } else { "disabled" }
        );
    })
}

/// Applies `act` to every item that `target` names; how many, or that none is called so.
fn each<T: Named>(
    items: impl Iterator<Item = T>,
    what: &'static str,
    target: &Target,
    mut act: impl FnMut(T),
) -> Result<usize, CtlError> {
    let mut n = 0;
    for item in items {
        let hit = match target {
            Target::Id(id) => item.id() == *id,
            Target::Name(s) => item.answers_to(s),
        };
        if hit {
            n += 1;
            act(item);
        }
    }
    if n == 0 {
        Err(CtlError::NotFound {
            what,
            name: target.to_string(),
        })
    } else {
        Ok(n)
    }
}

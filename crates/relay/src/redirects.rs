//! The redirects' kernel side: a loop that turns the current generation and its hosts' check
//! verdicts into the nftables table (only when the plan changes) and deletes the conntrack
//! entries of hosts that stopped serving, so their clients fail fast. A successor that takes
//! over adopts the table (its first plan rewrites the rules and maps in one transaction and
//! keeps the timeout objects, so tracked flows keep their session timeout); a clean stop
//! removes it unless `hasocks.redirect.on-exit keep`. For `mode least-states` it also counts
//! each host's tracked flows (`conntrack -L`) on a slower tick and weighs the map by them.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use crate::generation::Generation;

/// How often the plan is recomputed: well inside a check round, so a verdict reaches the
/// kernel within it.
const TICK: Duration = Duration::from_millis(100);

/// How often least-states counts the flows: each count is a `conntrack` run dumping the
/// redirect's flows (milliseconds at thousands of flows, more on a busy director), while a
/// SOCKS session lasts seconds to hours, so the states move slowly; counting faster would
/// mostly spend CPU and rewrite the table for noise. The cost is a stale view within a
/// period: a burst of new flows follows the last weights, which `states::weights` bounds.
const COUNT_EVERY: Duration = Duration::from_secs(1);

/// What the loop and the stop path share.
#[derive(Debug, Default)]
pub(crate) struct Redirector {
    /// The last plan put into effect and the script it gave.
    last: Mutex<Last>,
    /// A successor took the relay over: it owns the table now.
    handed_over: AtomicBool,
    /// The least-states redirects' last flow counts.
    states: Mutex<States>,
}

/// Flow counts of the least-states redirects, by redirect name.
#[derive(Debug, Default)]
struct States {
    counts: BTreeMap<String, BTreeMap<SocketAddrV4, u32>>,
    /// When they were last counted.
    at: Option<Instant>,
    /// Counting failed (no conntrack program...): logged once, then equal weights.
    error: Option<String>,
}

#[derive(Debug, Default)]
struct Last {
    script: Option<String>,
    plans: Vec<hasocks_redirect::Redirect>,
    /// The generation `plans` came from: same generation and same plans, same script.
    generation: u64,
    /// Stopped: nothing is applied any more.
    stopped: bool,
    /// The last failure, logged once.
    error: Option<String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Redirector {
    /// A successor owns the table from now on.
    pub fn handed_over(&self) {
        self.handed_over.store(true, Ordering::Relaxed);
        lock(&self.last).stopped = true;
    }

    /// A clean stop: removes the table unless `keep` or a successor owns it.
    pub fn stop(&self, keep: bool) {
        let mut last = lock(&self.last);
        let had = last.script.is_some();
        last.stopped = true;
        if !had || keep || self.handed_over.load(Ordering::Relaxed) {
            if had {
                tracing::info!("redirects: the nftables table stays: the kernel keeps forwarding");
            }
            return;
        }
        match hasocks_redirect::apply::remove() {
            Ok(()) => tracing::info!("redirects: nftables table inet hasocks removed"),
            Err(e) => tracing::error!("redirects: cannot remove table inet hasocks: {e}"),
        }
    }

    /// Counts the flows of `plans`' least-states redirects if a period has passed since
    /// the last count; a failure logs once and leaves equal weights (no counts), never stops
    /// the redirect.
    fn count(&self, plans: &[hasocks_redirect::Redirect]) {
        let mut st = lock(&self.states);
        if st.at.is_some_and(|t| t.elapsed() < COUNT_EVERY) {
            return;
        }
        st.at = Some(Instant::now());
        let mut counts = BTreeMap::new();
        let mut failed = None;
        for r in plans
            .iter()
            .filter(|r| hasocks_redirect::plan::counts_states(r))
        {
            let mut per = BTreeMap::new();
            for l in &r.listens {
                match hasocks_redirect::apply::flows(l.addr) {
                    Ok(dump) => {
                        for (host, n) in hasocks_redirect::states::count(&dump) {
                            *per.entry(host).or_insert(0) += n;
                        }
                    }
                    Err(e) => failed = Some(e.to_string()),
                }
            }
            counts.insert(r.name.clone(), per);
        }
        match failed {
            Some(e) => {
                if st.error.is_none() {
                    tracing::warn!("redirects: cannot count flows for least-states ({e}): new flows are spread evenly");
                }
                st.error = Some(e);
                st.counts.clear();
            }
            None => {
                if st.error.take().is_some() {
                    tracing::info!("redirects: least-states counts flows again");
                }
                st.counts = counts;
            }
        }
    }

    /// Puts the plan of `gen` into effect if it changed.
    fn sync(&self, gen: &Generation) {
        let mut plans: Vec<_> = gen.redirects.iter().map(|r| r.plan()).collect();
        // Zero cost without least-states: no count, no lock.
        if plans.iter().any(hasocks_redirect::plan::counts_states) {
            self.count(&plans);
            let st = lock(&self.states);
            let none = BTreeMap::new();
            for p in &mut plans {
                hasocks_redirect::plan::weigh(p, st.counts.get(&p.name).unwrap_or(&none));
            }
        }
        let mut last = lock(&self.last);
        if last.stopped || (plans.is_empty() && last.script.is_none()) {
            return;
        }
        // The host states (and least-states weights) did not change: skip the bucket
        // placement (4096 x hosts hashes) and nft.
        if last.error.is_none() && last.generation == gen.number && last.plans == plans {
            return;
        }
        let table = hasocks_redirect::plan::table(&plans);
        let script = table.script();
        if last.script.as_deref() == Some(script.as_str()) {
            return;
        }
        match hasocks_redirect::apply::put(&table, &script) {
            Ok(hasocks_redirect::Put::Replaced(why)) => tracing::warn!(
                "redirects: table inet hasocks written anew (the update was refused: {why}); flows tracked before keep conntrack's default timeout, not the session timeout"
            ),
            Ok(_) => {}
            Err(e) => {
                let msg = e.to_string();
                if last.error.as_deref() != Some(msg.as_str()) {
                    tracing::error!("redirects: cannot update the nftables table: {msg}");
                    last.error = Some(msg);
                }
                return;
            }
        }
        last.error = None;
        for (listen, host) in hasocks_redirect::plan::gone(&last.plans, &plans) {
            match hasocks_redirect::apply::forget(listen, host) {
                Ok(()) => tracing::info!("redirects: flows of {listen} to {host} deleted"),
                Err(e) => tracing::warn!("redirects: flows of {listen} to {host}: {e}"),
            }
        }
        tracing::debug!("redirects: generation {} in the kernel", gen.number);
        last.script = Some(script);
        last.plans = plans;
        last.generation = gen.number;
    }
}

/// Keeps the kernel in step with the current generation until `stop`.
pub(crate) async fn run(
    current: Arc<ArcSwap<Generation>>,
    me: Arc<Redirector>,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {
                let gen = current.load_full();
                // A config without redirects that never had one: nothing to do, no thread.
                if gen.redirects.is_empty() && lock(&me.last).script.is_none() {
                    continue;
                }
                let me = me.clone();
                // nft and conntrack are programs: run them off the async threads.
                let _ = tokio::task::spawn_blocking(move || me.sync(&gen)).await;
            }
        }
    }
}

/// Whether the kernel would take `gen`'s redirects (`nft -c`): refuses a config with
/// redirects on a machine without CAP_NET_ADMIN or nft, naming the redirect.
pub(crate) async fn check(gen: &Generation) -> Result<(), crate::error::RelayError> {
    let Some(first) = gen.redirects.first() else {
        return Ok(());
    };
    let plans: Vec<_> = gen.redirects.iter().map(|r| r.plan()).collect();
    let script = hasocks_redirect::plan::script(&plans);
    let r = tokio::task::spawn_blocking(move || hasocks_redirect::apply::check(&script)).await;
    let reason = match r {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => format!("cannot program nftables (needs CAP_NET_ADMIN and nft): {e}"),
        Err(e) => e.to_string(),
    };
    Err(crate::error::RelayError::Redirect {
        at: first.at.clone(),
        name: first.name.clone(),
        reason,
    })
}

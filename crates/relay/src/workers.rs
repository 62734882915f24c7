//! The worker threads and their accept loops. Each worker is a thread with a single-threaded
//! runtime and its own listening socket per address (SO_REUSEPORT): a session's every wake-up
//! stays on the thread that accepted it, where a work-stealing runtime would hand events
//! between threads. Workers live as long as the relay; listeners come and go with reloads.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use arc_swap::ArcSwap;
use hasocks_net::listen::Acceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use hasocks_lifecycle::Drain;

use crate::admission::Admission;
use crate::generation::{Generation, ListenKey};
use crate::session::{self, WorkerCtx};
use crate::sessions::Sessions;

/// One worker thread.
#[derive(Debug)]
struct Worker {
    rt: tokio::runtime::Handle,
    sessions: TaskTracker,
    ctx: Arc<WorkerCtx>,
}

/// Every worker thread; they end when this is dropped.
#[derive(Debug)]
pub(crate) struct Workers {
    list: Vec<Worker>,
    /// Ends the worker threads' runtimes.
    exit: CancellationToken,
}

impl Workers {
    /// Starts `n` worker threads.
    pub fn start(
        n: usize,
        sessions: Arc<Sessions>,
        verbose: Arc<AtomicBool>,
        drain: &Drain,
    ) -> io::Result<Workers> {
        let kill = drain.cut_token();
        let exit = CancellationToken::new();
        let mut list = Vec::new();
        for i in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = rt.handle().clone();
            let done = exit.clone();
            std::thread::Builder::new()
                .name(format!("relay-io-{i}"))
                .spawn(move || rt.block_on(done.cancelled()))?;
            let worker = u32::try_from(i).unwrap_or(u32::MAX);
            list.push(Worker {
                rt: handle,
                sessions: drain.tracker(i),
                ctx: Arc::new(WorkerCtx {
                    worker,
                    next_id: AtomicU64::new(0),
                    sessions: sessions.clone(),
                    verbose: verbose.clone(),
                    // Each session waits on the kill token; a child per thread keeps the other
                    // threads' sessions out of its waiter list (and its lock).
                    kill: kill.child_token(),
                }),
            });
        }
        Ok(Workers { list, exit })
    }

    /// How many workers there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Starts accepting on `listener` (configured as `configured`) on worker `i`, until `stop`.
    pub fn accept(
        &self,
        i: usize,
        listener: std::net::TcpListener,
        configured: ListenKey,
        stop: CancellationToken,
        current: Arc<ArcSwap<Generation>>,
        admission: Arc<Admission>,
    ) {
        let Some(w) = self.list.get(i) else {
            return;
        };
        let (ctx, sessions) = (w.ctx.clone(), w.sessions.clone());
        w.rt.spawn(accept_loop(
            listener, configured, stop, current, admission, ctx, sessions,
        ));
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.exit.cancel();
    }
}

/// Accepts until `stop`, one connection per free session slot (at the cap it waits, and the
/// kernel's backlog holds the rest); each connection is served with the relay that owns
/// `configured` in the generation current at its accept.
async fn accept_loop(
    listener: std::net::TcpListener,
    configured: ListenKey,
    stop: CancellationToken,
    current: Arc<ArcSwap<Generation>>,
    admission: Arc<Admission>,
    ctx: Arc<WorkerCtx>,
    sessions: TaskTracker,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("listener on {configured} lost: {e}");
            return;
        }
    };
    // The relay sets TCP_NODELAY on the listener itself (`Listeners::set_tcp`, from the
    // relay's protocol, on by default); the acceptor must not override it.
    let mut acceptor = Acceptor::inheriting(listener);
    while let Some((client, peer, slot)) = admission.slots.accept(&mut acceptor, &stop).await {
        // Over its address's cap: closed at once (the slot goes back).
        let Some(admitted) = admission.admit(slot, peer.ip()) else {
            continue;
        };
        // A listener being removed may still hand out a connection its relay no longer
        // claims: it is closed like the listener's backlog would be.
        let Some(relay) = current.load().by_listen.get(&configured).cloned() else {
            continue;
        };
        sessions.spawn(session::serve(
            relay,
            client,
            peer,
            configured.addr,
            ctx.clone(),
            admitted,
        ));
    }
}

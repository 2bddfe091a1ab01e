//! The Tokio side of the server: accept loop, per-connection reader and writer tasks, the timer
//! task, and shutdown.
//!
//! Per wake-up a reader decodes every complete packet in its buffer, feeds them all to the core
//! under one short lock, and dispatches the effects into the target connections' [`Outbound`]
//! queues; each writer then sends what accumulated with one write.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use gearbox_proto::{Incoming, Response, ServerCodec};
use gearbox_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use crate::core::{ConnId, ConnInfo, Core, Effect, IdMap, Outbox};
use crate::outbound::Outbound;
use crate::persister::{self, StoreOp};
use crate::{Config, ServerError};

/// How long a closing connection may take to flush its remaining output.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// How the server should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Stop accepting, flush what is queued for each connection, close.
    Immediate,
    /// Stop accepting and refuse new jobs, let queued and running jobs finish, then close.
    Graceful,
}

/// Current wall-clock time in UNIX milliseconds: the core's only notion of time.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

struct State {
    core: Core,
    outbounds: IdMap<Arc<Outbound>>,
    next_conn: ConnId,
}

struct Shared {
    // One std Mutex around the core: critical sections are short and never span an await.
    state: Mutex<State>,
    timers: Notify,
    idle: Notify,
    stop: watch::Sender<Option<ShutdownMode>>,
    /// Cancelled when every connection must close, including ones still starting up.
    closing: CancellationToken,
    /// The persister's queue, when jobs are stored.
    store_tx: Option<mpsc::UnboundedSender<StoreOp>>,
    config: Config,
}

impl Shared {
    fn to_store(&self, op: StoreOp) {
        match &self.store_tx {
            Some(tx) => {
                // Fails only once the persister is gone (shutting down): nothing to keep then.
                let _ = tx.send(op);
            }
            None => tracing::error!("store operation without a store; this is a bug"),
        }
    }

    fn stall_timeout(&self) -> Duration {
        Duration::from_millis(self.config.send_stall_timeout_ms)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Carries out the core's effects (called with the lock held; no awaits). The output
    /// queues written to are listed in `touched`, for the caller to flush once the lock is
    /// released; those past their soft limit also, for the caller to wait on.
    fn apply(&self, st: &mut State, out: &mut Outbox, touched: &mut Touched) {
        for e in out.effects.drain(..) {
            match e {
                Effect::Send(c, r) => {
                    if let Some(o) = st.outbounds.get(&c) {
                        let busy = o.push(&r);
                        touched.note(o, busy);
                    }
                }
                Effect::Text(c, t) => {
                    if let Some(o) = st.outbounds.get(&c) {
                        let busy = o.push_bytes(&t);
                        touched.note(o, busy);
                    }
                }
                Effect::Persist(job) => self.to_store(StoreOp::Persist(job)),
                Effect::Complete(handle) => self.to_store(StoreOp::Complete(handle)),
                Effect::Close(c) => {
                    if let Some(o) = st.outbounds.get(&c) {
                        o.close();
                    }
                }
                Effect::Shutdown { graceful } => {
                    let mode = if graceful {
                        ShutdownMode::Graceful
                    } else {
                        ShutdownMode::Immediate
                    };
                    self.stop.send_replace(Some(mode));
                }
            }
        }
        if std::mem::take(&mut out.timers_changed) {
            self.timers.notify_one();
        }
        if st.core.is_draining() && st.core.is_idle() {
            self.idle.notify_one();
        }
    }
}

/// The output queues one batch of effects wrote to.
#[derive(Default)]
struct Touched {
    /// To flush once the core's lock is released: one write each.
    dirty: Vec<Arc<Outbound>>,
    /// Past their soft limit: the reader waits on them after the batch.
    congested: Vec<Arc<Outbound>>,
}

impl Touched {
    fn note(&mut self, o: &Arc<Outbound>, busy: bool) {
        if o.list_for_flush() {
            self.dirty.push(o.clone());
        }
        if busy && !self.congested.iter().any(|x| Arc::ptr_eq(x, o)) {
            self.congested.push(o.clone());
        }
    }

    /// Writes what the batch queued (call without the core's lock).
    fn flush(&mut self) {
        for o in self.dirty.drain(..) {
            o.flush();
        }
    }
}

/// Runs the job server on `listeners` with in-memory queues until `shutdown` resolves (or an
/// admin `shutdown` arrives from a loopback peer), then stops as the [`ShutdownMode`] says.
pub async fn run(
    listeners: Vec<TcpListener>,
    config: Config,
    shutdown: impl Future<Output = ShutdownMode>,
) -> Result<(), ServerError> {
    run_with_store(listeners, config, None, shutdown).await
}

/// Like [`run`], keeping background jobs in `store` when one is given: stored jobs are
/// replayed before the first connection is accepted, JOB_CREATED for a background job is sent
/// once the store has committed it, and shutdown waits until every store write is done.
pub async fn run_with_store(
    listeners: Vec<TcpListener>,
    config: Config,
    store: Option<Arc<dyn Store>>,
    shutdown: impl Future<Output = ShutdownMode>,
) -> Result<(), ServerError> {
    if listeners.is_empty() {
        return Err(ServerError::Config("no listening socket".into()));
    }
    let (stop, mut stop_rx) = watch::channel(None);
    let mut core_config = config.core();
    core_config.persistent = store.is_some();
    let mut core = Core::new(core_config);
    let (store_tx, store_rx) = mpsc::unbounded_channel();
    let mut out = Outbox::default();
    if let Some(store) = &store {
        let started = std::time::Instant::now();
        let jobs = store.load().await.map_err(ServerError::Store)?;
        let count = jobs.len();
        let now = now_ms();
        for job in jobs {
            core.restore(job, now, &mut out);
        }
        tracing::info!(
            store = store.name(),
            jobs = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "replayed stored jobs"
        );
    }
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            core,
            outbounds: IdMap::default(),
            next_conn: 1,
        }),
        timers: Notify::new(),
        idle: Notify::new(),
        stop,
        closing: CancellationToken::new(),
        store_tx: store.as_ref().map(|_| store_tx),
        config,
    });
    // Replay effects: removals of duplicates, timers of waiting jobs.
    {
        let mut touched = Touched::default();
        let mut st = shared.lock();
        shared.apply(&mut st, &mut out, &mut touched);
        drop(st);
        touched.flush();
    }
    let persister = store.map(|store| {
        let reporter = shared.clone();
        let timeout = Duration::from_millis(shared.config.store_timeout_ms);
        tokio::spawn(persister::run(
            store,
            timeout,
            store_rx,
            move |(handles, result)| {
                let mut out = Outbox::default();
                let mut touched = Touched::default();
                let mut st = reporter.lock();
                st.core.committed(
                    &handles,
                    result.as_ref().map(|_| ()).map_err(String::as_str),
                    now_ms(),
                    &mut out,
                );
                reporter.apply(&mut st, &mut out, &mut touched);
                drop(st);
                touched.flush();
            },
        ))
    });
    let limit = Arc::new(Semaphore::new(shared.config.max_connections));
    let mut conns = JoinSet::new();
    let timer = tokio::spawn(timer_loop(shared.clone(), shared.stop.subscribe()));
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::channel::<(TcpStream, SocketAddr)>(64);
    let mut acceptors = JoinSet::new();
    for l in listeners {
        if let Ok(addr) = l.local_addr() {
            tracing::info!(%addr, "listening");
        }
        acceptors.spawn(accept_loop(l, accepted_tx.clone()));
    }
    drop(accepted_tx);
    tokio::pin!(shutdown);
    let mode = loop {
        tokio::select! {
            m = &mut shutdown => break m,
            r = stop_rx.wait_for(Option::is_some) => {
                break r.ok().and_then(|m| *m).unwrap_or(ShutdownMode::Immediate);
            }
            Some(r) = acceptors.join_next() => {
                if let Ok(Err(e)) = r {
                    return Err(e);
                }
            }
            Some((stream, peer)) = accepted.recv() => {
                match limit.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let shared = shared.clone();
                        conns.spawn(async move {
                            serve(shared, stream, peer).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        tracing::warn!(%peer, limit = shared.config.max_connections, "connection refused: limit reached");
                        tokio::spawn(refuse(stream));
                    }
                }
            }
            Some(_) = conns.join_next() => {}
        }
    };
    acceptors.abort_all();
    tracing::info!(?mode, "shutting down");
    if mode == ShutdownMode::Graceful {
        shared.lock().core.start_draining();
        loop {
            let idle = shared.idle.notified();
            if shared.lock().core.is_idle() {
                break;
            }
            idle.await;
        }
    }
    shared.closing.cancel();
    while conns.join_next().await.is_some() {}
    shared.stop.send_replace(Some(mode));
    let _ = timer.await;
    if let Some(persister) = persister {
        let (done, flushed) = oneshot::channel();
        shared.to_store(StoreOp::Flush(done));
        let _ = flushed.await;
        persister.abort();
    }
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    tx: tokio::sync::mpsc::Sender<(TcpStream, SocketAddr)>,
) -> Result<(), ServerError> {
    let mut backoff = Duration::from_millis(5);
    loop {
        match listener.accept().await {
            Ok(pair) => {
                backoff = Duration::from_millis(5);
                if tx.send(pair).await.is_err() {
                    return Ok(());
                }
            }
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

async fn refuse(mut stream: TcpStream) {
    let mut b = BytesMut::new();
    Response::error("SERVER_BUSY", "too many connections; try again later").encode(&mut b);
    let _ = stream.write_all(&b).await;
    let _ = stream.shutdown().await;
}

async fn timer_loop(shared: Arc<Shared>, mut stop: watch::Receiver<Option<ShutdownMode>>) {
    let mut out = Outbox::default();
    // The timer task never waits for slow peers; their hard cap protects memory.
    let mut touched = Touched::default();
    loop {
        touched.congested.clear();
        let changed = shared.timers.notified();
        let next = shared.lock().core.next_deadline();
        let now = now_ms();
        match next {
            Some(due) if due <= now => {
                let mut st = shared.lock();
                st.core.tick(now, &mut out);
                shared.apply(&mut st, &mut out, &mut touched);
                drop(st);
                touched.flush();
                continue;
            }
            Some(due) => {
                let sleep = tokio::time::sleep(Duration::from_millis(due - now));
                tokio::select! {
                    _ = sleep => {}
                    _ = changed => {}
                    _ = stop.changed() => return,
                }
            }
            None => {
                tokio::select! {
                    _ = changed => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

fn conn_info(stream: &TcpStream, peer: SocketAddr) -> ConnInfo {
    #[cfg(unix)]
    let fd = {
        use std::os::fd::AsRawFd;
        i64::from(stream.as_raw_fd())
    };
    #[cfg(not(unix))]
    let fd = -1;
    let ip = peer.ip().to_canonical();
    ConnInfo {
        peer_ip: ip.to_string(),
        fd,
        loopback: ip.is_loopback(),
    }
}

async fn serve(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let info = conn_info(&stream, peer);
    let (mut rd, wr) = stream.into_split();
    let outbound = Arc::new(Outbound::new(shared.config.max_unsent, Some(wr)));
    let id = {
        let mut st = shared.lock();
        let id = st.next_conn;
        st.next_conn += 1;
        st.core.connect(id, info);
        st.outbounds.insert(id, outbound.clone());
        id
    };
    tracing::debug!(conn = id, %peer, "connected");
    // Output is written by whoever produced it (see `outbound`); this task only takes over
    // when the socket is full, and sends what is left at close.
    let ob = outbound.clone();
    let writer = tokio::spawn(async move {
        let mut wbuf = BytesMut::with_capacity(4096);
        loop {
            tokio::select! {
                _ = ob.take(&mut wbuf) => {}
                _ = ob.abort.cancelled() => break,
            }
            if wbuf.is_empty() {
                break;
            }
            tokio::select! {
                r = ob.write_all(&wbuf) => if r.is_err() { ob.abort.cancel(); break; },
                _ = ob.abort.cancelled() => break,
            }
            wbuf.clear();
            ob.wrote();
        }
        ob.shutdown_write();
    });

    let mut codec = ServerCodec::new(shared.config.limits());
    let mut buf = BytesMut::with_capacity(8192);
    let mut items = Vec::with_capacity(16);
    let mut out = Outbox::default();
    let mut touched = Touched::default();
    loop {
        let n = tokio::select! {
            r = rd.read_buf(&mut buf) => r,
            _ = outbound.close.cancelled() => break,
            _ = shared.closing.cancelled() => break,
        };
        match n {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let mut fatal = None;
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(e) => {
                    fatal = Some(e);
                    break;
                }
            }
        }
        let now = now_ms();
        {
            let mut st = shared.lock();
            for item in items.drain(..) {
                match item {
                    Incoming::Request(r) => st.core.request(id, r, now, &mut out),
                    Incoming::Admin(a) => st.core.admin(id, a, now, &mut out),
                    Incoming::Rejected(e) => {
                        tracing::debug!(conn = id, error = %e, "rejected packet");
                        out.effects
                            .push(Effect::Send(id, Response::error(e.code(), e.wire_text())));
                    }
                }
            }
            if let Some(e) = &fatal {
                tracing::info!(conn = id, %peer, error = %e, "closing connection after protocol error");
                out.effects
                    .push(Effect::Send(id, Response::error(e.code(), e.wire_text())));
                out.effects.push(Effect::Close(id));
            }
            shared.apply(&mut st, &mut out, &mut touched);
        }
        if !touched.dirty.is_empty() {
            // Let the other connections that are ready run first: what they queue for the same
            // peers leaves in the same write (the first flush sends it all, later ones find
            // nothing). A task switch is far cheaper than a send.
            tokio::task::yield_now().await;
            touched.flush();
        }
        if fatal.is_some() {
            break;
        }
        for o in touched.congested.drain(..) {
            if Arc::ptr_eq(&o, &outbound) {
                // Our own replies pile up: stop reading until the peer catches up.
                tokio::select! {
                    _ = o.wait_drained() => {}
                    _ = shared.closing.cancelled() => {}
                }
            } else if tokio::time::timeout(shared.stall_timeout(), o.wait_drained())
                .await
                .is_err()
            {
                tracing::warn!(conn = id, pending = o.pending(), "a peer stopped reading the output this connection produces; dropping that peer");
                o.abort.cancel();
                o.close.cancel();
            }
        }
    }
    if outbound.overflowed() {
        tracing::warn!(conn = id, %peer, limit = shared.config.max_unsent, "peer is not reading its replies; connection dropped");
    }
    {
        let mut st = shared.lock();
        st.outbounds.remove(&id);
        st.core.disconnect(id, now_ms(), &mut out);
        shared.apply(&mut st, &mut out, &mut touched);
    }
    touched.flush();
    // Nobody is left to throttle: the targets' hard caps protect memory.
    touched.congested.clear();
    outbound.close();
    let mut writer = writer;
    if tokio::time::timeout(FLUSH_TIMEOUT, &mut writer)
        .await
        .is_err()
    {
        // The peer stopped reading: give up on the rest of its output.
        outbound.abort.cancel();
        let _ = writer.await;
    }
    tracing::debug!(conn = id, "disconnected");
}

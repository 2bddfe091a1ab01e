//! The Tokio side of the server: accept loop, the timer task, shutdown, and the shared state
//! around the core.
//!
//! Per wake-up a connection's reader (`conn`) decodes every complete packet in its buffer,
//! feeds them all to the core under one short lock, and dispatches the effects into the target
//! connections' [`Outbound`] queues; `output` then sends each touched queue with one write.
//!
//! - this file: [`run`], [`run_with_store`], the shared state, accept and timer loops.
//! - `conn`: one connection's reader and writer tasks.
//! - `output`: which queues a batch touched, and the flusher task that writes them.
//! - `cluster`: cluster mode's task: heartbeats, freeing and claiming jobs in the shared queue.
//! - `bridge`: cluster mode's bridges, which bring other members' foreground jobs to this
//!   member's workers.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use gearbox_proto::{ErrorCode, Response};
use gearbox_store::{MemoryStore, Store};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::core::cluster::BridgeDemand;
use crate::core::{ConnId, Core, Effect, IdMap, Outbox, UnixMillis};
use crate::metrics::{self, ServerMetrics};
use crate::outbound::Outbound;
use crate::persister::{self, StoreOp};
use crate::tls::{Listener, ServerTls};
use crate::{Config, ServerError};

mod bridge;
mod cluster;
mod conn;
mod output;

use conn::serve;
use output::{flush_loop, Touched};

/// How the server should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Stop accepting, flush what is queued for each connection, close.
    Immediate,
    /// Stop accepting and refuse new jobs, let queued and running jobs finish, then close.
    Graceful,
}

/// Current wall-clock time: the core's only notion of time.
pub fn now_ms() -> UnixMillis {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    UnixMillis::from_millis(ms)
}

struct State {
    core: Core,
    outbounds: IdMap<ConnId, Arc<Outbound>>,
    next_conn: ConnId,
    /// Output queues handed to the flusher task, each listed once.
    dirty: Vec<Arc<Outbound>>,
}

struct Shared {
    /// Wakes the flusher task (see [`flush_loop`]).
    flusher: Notify,
    // One std Mutex around the core: critical sections are short and never span an await.
    state: Mutex<State>,
    timers: Notify,
    idle: Notify,
    /// Wakes the cluster task (cluster mode only).
    cluster_kick: Notify,
    stop: watch::Sender<Option<ShutdownMode>>,
    /// Cancelled when every connection must close, including ones still starting up.
    closing: CancellationToken,
    /// The persister's queue, when jobs are stored.
    store_tx: Option<mpsc::UnboundedSender<StoreOp>>,
    config: Config,
    /// Server-wide counters (the core renders them; see [`ServerMetrics`]).
    metrics: Arc<ServerMetrics>,
}

impl Shared {
    fn to_store(&self, op: StoreOp) {
        match &self.store_tx {
            Some(tx) => {
                metrics::add(&self.metrics.store_pending, 1);
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
                        if matches!(r, Response::Error { .. }) {
                            metrics::add(&self.metrics.error_packets, 1);
                        }
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
                Effect::Persist(job) => self.to_store(StoreOp::Persist(*job)),
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
        if std::mem::take(&mut out.cluster_changed) {
            self.cluster_kick.notify_one();
        }
        if st.core.is_draining() && st.core.is_idle() {
            self.idle.notify_one();
        }
    }
}

/// Runs the job server on `listeners` with in-memory queues until `shutdown` resolves (or an
/// admin `shutdown` arrives from a loopback peer), then stops as the [`ShutdownMode`] says.
/// Each listener is plain TCP or TLS ([`Listener`]; a `TcpListener` converts to a plain one).
pub async fn run(
    listeners: Vec<impl Into<Listener>>,
    config: Config,
    shutdown: impl Future<Output = ShutdownMode>,
) -> Result<(), ServerError> {
    run_with_store(listeners, config, Arc::new(MemoryStore::new()), shutdown).await
}

/// Like [`run`], keeping background jobs in `store` when it is durable
/// ([`Store::is_durable`]): stored jobs are replayed before the first connection is accepted,
/// JOB_CREATED for a background job is sent once the store has committed it, and shutdown
/// waits until every store write is done. A store that is not durable (gearmand's `builtin`
/// queue) is not used at all.
pub async fn run_with_store(
    listeners: Vec<impl Into<Listener>>,
    config: Config,
    store: Arc<dyn Store>,
    shutdown: impl Future<Output = ShutdownMode>,
) -> Result<(), ServerError> {
    if listeners.is_empty() {
        return Err(ServerError::Config("no listening socket".into()));
    }
    let listeners: Vec<Listener> = listeners.into_iter().map(Into::into).collect();
    let cluster = store.clone().as_cluster();
    let store = Some(store).filter(|s| s.is_durable());
    let (stop, mut stop_rx) = watch::channel(None);
    let mut core_config = config.core();
    core_config.persistent = store.is_some();
    if let Some(c) = &cluster {
        core_config.cluster = true;
        core_config.handle_prefix = cluster_prefix(&config, &c.member().id);
        let poll = Duration::from_millis(config.cluster_poll_ms.max(10));
        let takeover_ms = c.member().takeover_bound(poll).as_millis() as u64;
        tracing::info!(member = %c.member().id, address = %c.member().address, handles = %core_config.handle_prefix, takeover_ms, "cluster member");
    }
    let mut core = Core::new(core_config);
    let metrics = core.server_metrics();
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
            next_conn: ConnId::FIRST,
            dirty: Vec::new(),
        }),
        timers: Notify::new(),
        idle: Notify::new(),
        cluster_kick: Notify::new(),
        stop,
        closing: CancellationToken::new(),
        flusher: Notify::new(),
        store_tx: store.as_ref().map(|_| store_tx),
        config,
        metrics,
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
            cluster.clone(),
            timeout,
            store_rx,
            shared.metrics.clone(),
            move |report| {
                let mut out = Outbox::default();
                let mut touched = Touched::default();
                let mut st = reporter.lock();
                st.core.cluster_coalesced(&report.coalesced, &mut out);
                let result = report.result.as_ref().map(|_| ());
                st.core
                    .committed(&report.handles, result, now_ms(), &mut out);
                reporter.apply(&mut st, &mut out, &mut touched);
                drop(st);
                touched.flush();
            },
        ))
    });
    let cluster_stop = CancellationToken::new();
    let (demand_tx, demand_rx) = watch::channel(BridgeDemand::default());
    let (members_tx, members_rx) = watch::channel(cluster::Members::new());
    let cluster_task = cluster.clone().map(|store| {
        tokio::spawn(cluster::run(
            shared.clone(),
            store,
            demand_tx,
            members_tx,
            cluster_stop.clone(),
        ))
    });
    let bridge_task = match (&cluster, own_address(&listeners)) {
        (Some(store), Some(own)) => Some(tokio::spawn(bridge::run(
            store.member().id.clone(),
            members_rx,
            own,
            demand_rx,
            cluster_stop.clone(),
        ))),
        (Some(_), None) => {
            tracing::warn!(
                "no plain Gearman port: foreground jobs are not bridged between cluster members"
            );
            None
        }
        _ => None,
    };
    let limit = Arc::new(Semaphore::new(shared.config.max_connections));
    let mut conns = JoinSet::new();
    // The timers run until every connection is gone: a graceful drain needs them (a
    // CAN_DO_TIMEOUT may be what ends a running job), whoever asked for the stop.
    let timer_stop = CancellationToken::new();
    let timer = tokio::spawn(timer_loop(shared.clone(), timer_stop.clone()));
    let flusher = tokio::spawn(flush_loop(shared.clone()));
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::channel::<Accepted>(64);
    let mut acceptors = JoinSet::new();
    for l in listeners {
        if let Ok(addr) = l.tcp.local_addr() {
            tracing::info!(%addr, tls = l.tls.is_some(), "listening");
        }
        acceptors.spawn(accept_loop(l, accepted_tx.clone()));
    }
    drop(accepted_tx);
    tokio::pin!(shutdown);
    // Whether `shutdown` has resolved (it must not be polled again then).
    let mut asked = false;
    let mode = loop {
        tokio::select! {
            m = &mut shutdown => {
                asked = true;
                break m;
            }
            r = stop_rx.wait_for(Option::is_some) => {
                break r.ok().and_then(|m| *m).unwrap_or(ShutdownMode::Immediate);
            }
            Some(r) = acceptors.join_next() => {
                if let Ok(Err(e)) = r {
                    return Err(e);
                }
            }
            Some((stream, peer, tls)) = accepted.recv() => {
                match limit.clone().try_acquire_owned() {
                    Ok(permit) => {
                        metrics::add(&shared.metrics.connections_accepted, 1);
                        let shared = shared.clone();
                        conns.spawn(async move {
                            serve(shared, stream, peer, tls).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        tracing::warn!(%peer, limit = shared.config.max_connections, "connection refused: limit reached");
                        metrics::add(&shared.metrics.connections_refused, 1);
                        // A TLS peer could not read a plain ERROR packet: it is only closed.
                        if tls.is_none() {
                            tokio::spawn(refuse(stream, shared.metrics.clone()));
                        }
                    }
                }
            }
            Some(_) = conns.join_next() => {}
        }
    };
    // Each accept task owns its listener: waiting for the aborted tasks to end closes every
    // listening socket before `run` returns, so the port can be bound again at once.
    acceptors.abort_all();
    while acceptors.join_next().await.is_some() {}
    tracing::info!(?mode, "shutting down");
    if mode == ShutdownMode::Graceful {
        shared.lock().core.start_draining();
        // A member gives its queued jobs back to the cluster rather than running them.
        shared.cluster_kick.notify_one();
        loop {
            let idle = shared.idle.notified();
            if shared.lock().core.is_idle() {
                break;
            }
            // A drain an admin `shutdown graceful` began still obeys the caller's own stop:
            // an immediate one ends the wait (a service manager's SIGTERM must not be lost).
            tokio::select! {
                _ = idle => {}
                m = &mut shutdown, if !asked => {
                    asked = true;
                    if m == ShutdownMode::Immediate {
                        tracing::info!("stop requested during the graceful drain: stopping now");
                        break;
                    }
                }
            }
        }
    }
    shared.closing.cancel();
    while conns.join_next().await.is_some() {}
    timer_stop.cancel();
    let _ = timer.await;
    let _ = flusher.await;
    if let Some(persister) = persister {
        let (done, flushed) = oneshot::channel();
        shared.to_store(StoreOp::Flush(done));
        let _ = flushed.await;
        persister.abort();
    }
    cluster_stop.cancel();
    for task in [cluster_task, bridge_task].into_iter().flatten() {
        let _ = task.await;
    }
    if let Some(store) = cluster {
        // Every job still held (a timer, a job whose worker was cut off) is freed for the
        // other members now rather than after the dead-after bound.
        if let Err(error) = store.leave().await {
            tracing::warn!(%error, "could not leave the cluster; the others take its jobs over when its heartbeat is stale");
        }
    }
    Ok(())
}

/// The address a member's bridges reach it on: its first plain listener (on loopback when it
/// listens on every address).
fn own_address(listeners: &[Listener]) -> Option<SocketAddr> {
    let addr = listeners
        .iter()
        .filter(|l| l.tls.is_none())
        .find_map(|l| l.tcp.local_addr().ok())?;
    Some(match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, addr.port()))
        }
        ip if ip.is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port())),
        _ => addr,
    })
}

/// The handle prefix of a cluster member: its id and the moment it started, so that no
/// two members, and no two lives of one member, hand out the same handle.
fn cluster_prefix(config: &Config, member: &str) -> String {
    let started = now_ms().as_millis();
    match &config.job_handle_prefix {
        Some(prefix) => format!("{prefix}.{member}.{started:x}"),
        None => format!("H:{member}.{started:x}"),
    }
}

/// An accepted socket, its peer, and the TLS its listener asks for (the handshake runs in the
/// connection's own task).
type Accepted = (TcpStream, SocketAddr, Option<Arc<ServerTls>>);

async fn accept_loop(
    listener: Listener,
    tx: tokio::sync::mpsc::Sender<Accepted>,
) -> Result<(), ServerError> {
    let mut backoff = Duration::from_millis(5);
    loop {
        match listener.tcp.accept().await {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                if tx.send((stream, peer, listener.tls.clone())).await.is_err() {
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

async fn refuse(mut stream: TcpStream, metrics: Arc<ServerMetrics>) {
    let mut b = BytesMut::new();
    Response::error(
        ErrorCode::ServerBusy,
        "too many connections; try again later",
    )
    .encode(&mut b);
    metrics::add(&metrics.error_packets, 1);
    if stream.write_all(&b).await.is_ok() {
        metrics::add(&metrics.bytes_sent, b.len() as u64);
    }
    let _ = stream.shutdown().await;
}

async fn timer_loop(shared: Arc<Shared>, stop: CancellationToken) {
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
                let sleep = tokio::time::sleep(Duration::from_millis(due.ms_since(now)));
                tokio::select! {
                    _ = sleep => {}
                    _ = changed => {}
                    _ = stop.cancelled() => return,
                }
            }
            None => {
                tokio::select! {
                    _ = changed => {}
                    _ = stop.cancelled() => return,
                }
            }
        }
    }
}

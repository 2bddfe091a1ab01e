//! The writer task: owns the connection, commits in groups, reconnects with back-off.
//!
//! Every request reaches the task over one channel, so requests are served in the order
//! they were made. Consecutive commit requests are drained into one `MULTI`/`EXEC`
//! transaction (group commit): while one transaction is in flight, the next ones queue up
//! and then share the following one. Every caller of a group is answered after its `EXEC`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gearbox_store::{Batch, StoreError, StoredJob};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, RedisResult};
use tokio::sync::{mpsc, oneshot};

use crate::encode::{self, Keys};

/// The most commit requests put into one transaction.
const MAX_GROUP: usize = 4096;

/// How many `HGETALL`s `load` sends in one pipeline.
const LOAD_CHUNK: usize = 1000;

/// The first pause after a failed connection attempt; it doubles up to the maximum.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// Where the answer to a request goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// What the store asks of its writer task.
pub(crate) enum Request {
    /// Apply a batch; answered after the transaction that carries it has executed.
    Commit { batch: Batch, reply: Reply<()> },
    /// Read every stored job in replay order.
    Load { reply: Reply<Vec<StoredJob>> },
}

/// Counters shared with the store handle, for tests and metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub transactions: AtomicU64,
    pub batches: AtomicU64,
    pub persisted: AtomicU64,
    pub removed: AtomicU64,
    pub failures: AtomicU64,
    pub reconnects: AtomicU64,
}

/// The state owned by the writer task.
pub(crate) struct Writer {
    client: Client,
    config: AsyncConnectionConfig,
    /// `None` while disconnected.
    conn: Option<MultiplexedConnection>,
    location: String,
    keys: Keys,
    counters: Arc<Counters>,
    /// True from a failure until the next success: errors are logged once per outage.
    failing: bool,
    /// While disconnected: the error requests get, and when to try to connect again.
    last_error: Option<StoreError>,
    retry_at: Instant,
    backoff: Duration,
    max_backoff: Duration,
}

impl Writer {
    pub(crate) fn new(
        client: Client,
        config: AsyncConnectionConfig,
        conn: MultiplexedConnection,
        location: String,
        keys: Keys,
        counters: Arc<Counters>,
        max_backoff: Duration,
    ) -> Self {
        Writer {
            client,
            config,
            conn: Some(conn),
            location,
            keys,
            counters,
            failing: false,
            last_error: None,
            retry_at: Instant::now(),
            backoff: FIRST_BACKOFF,
            max_backoff: max_backoff.max(FIRST_BACKOFF),
        }
    }

    /// Serves requests until the store is dropped.
    pub(crate) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Request>) {
        let mut next = None;
        loop {
            let request = match next.take() {
                Some(request) => request,
                None if self.conn.is_some() => match rx.recv().await {
                    Some(request) => request,
                    None => break,
                },
                // Disconnected: wait for a request or for the next reconnection attempt.
                None => {
                    let retry_at = tokio::time::Instant::from_std(self.retry_at);
                    tokio::select! {
                        request = rx.recv() => match request {
                            Some(request) => request,
                            None => break,
                        },
                        _ = tokio::time::sleep_until(retry_at) => {
                            let _ = self.reconnect().await;
                            continue;
                        }
                    }
                }
            };
            match request {
                Request::Commit { batch, reply } => {
                    let mut group = vec![(batch, reply)];
                    while group.len() < MAX_GROUP {
                        match rx.try_recv() {
                            Ok(Request::Commit { batch, reply }) => group.push((batch, reply)),
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit_group(group).await;
                }
                Request::Load { reply } => {
                    let keys = self.keys.clone();
                    let result = self
                        .with_connection(|conn| read_all(conn, keys.clone()))
                        .await
                        .and_then(|rows| {
                            rows.into_iter()
                                .map(|(handle, fields)| encode::decode(handle, fields))
                                .collect::<Result<Vec<_>, _>>()
                        });
                    if let Ok(jobs) = &result {
                        tracing::debug!(store = %self.location, jobs = jobs.len(), "loaded stored jobs");
                    }
                    let _ = reply.send(result);
                }
            }
        }
        tracing::debug!(store = %self.location, "job store writer stopped");
    }

    async fn commit_group(&mut self, group: Vec<(Batch, Reply<()>)>) {
        let (batches, replies): (Vec<Batch>, Vec<Reply<()>>) = group.into_iter().unzip();
        let writes: usize = batches.iter().map(Batch::len).sum();
        if writes == 0 {
            for reply in replies {
                let _ = reply.send(Ok(()));
            }
            return;
        }
        let started = Instant::now();
        let keys = self.keys.clone();
        let result = self
            .with_connection(|conn| write_group(conn, keys.clone(), &batches))
            .await;
        match result {
            Ok(()) => {
                let c = &self.counters;
                c.transactions.fetch_add(1, Ordering::Relaxed);
                c.batches.fetch_add(batches.len() as u64, Ordering::Relaxed);
                let persisted: usize = batches.iter().map(|b| b.persist.len()).sum();
                c.persisted.fetch_add(persisted as u64, Ordering::Relaxed);
                c.removed
                    .fetch_add((writes - persisted) as u64, Ordering::Relaxed);
                tracing::trace!(
                    store = %self.location,
                    batches = batches.len(),
                    writes,
                    micros = started.elapsed().as_micros() as u64,
                    "group commit"
                );
                for reply in replies {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(err) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                for reply in replies {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }

    /// Runs `op` on the connection. If the connection turns out to be broken (Redis
    /// restarted while we were idle, say), connects once more at once and runs `op` again:
    /// every operation here is idempotent when repeated right away.
    async fn with_connection<T, F, Fut>(&mut self, op: F) -> Result<T, StoreError>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let conn = match &self.conn {
            Some(conn) => conn.clone(),
            None if Instant::now() >= self.retry_at => self.reconnect().await?,
            None => {
                return Err(self.last_error.clone().unwrap_or_else(|| {
                    unavailable(
                        &self.location,
                        Arc::new(std::io::Error::new(
                            std::io::ErrorKind::NotConnected,
                            "not connected to Redis",
                        )),
                    )
                }))
            }
        };
        let first = match op(conn).await {
            Ok(value) => return self.succeeded(value),
            Err(e) => e,
        };
        if !broken(&first) {
            return Err(self.failed(first));
        }
        tracing::debug!(store = %self.location, error = %first, "connection to Redis lost; reconnecting once");
        self.conn = None;
        let conn = self.reconnect().await?;
        match op(conn).await {
            Ok(value) => self.succeeded(value),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn succeeded<T>(&mut self, value: T) -> Result<T, StoreError> {
        if self.failing {
            self.failing = false;
            tracing::info!(store = %self.location, "job store recovered: commits succeed again");
        }
        Ok(value)
    }

    /// Classifies an error, drops a broken connection (the next attempt waits for the
    /// back-off) and logs the first failure of an outage.
    fn failed(&mut self, e: RedisError) -> StoreError {
        let is_broken = broken(&e);
        let err = classify(e, &self.location);
        if is_broken {
            self.conn = None;
            self.schedule_retry(err.clone());
        }
        self.note_failure(&err);
        err
    }

    fn note_failure(&mut self, err: &StoreError) {
        if self.failing {
            tracing::debug!(store = %self.location, error = %err, "job store still failing");
        } else {
            self.failing = true;
            let cause = std::error::Error::source(err)
                .map(ToString::to_string)
                .unwrap_or_default();
            tracing::error!(
                store = %self.location,
                error = %err,
                cause,
                "job store failed; background submits fail until it recovers"
            );
        }
    }

    fn schedule_retry(&mut self, err: StoreError) {
        self.last_error = Some(err);
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(self.max_backoff);
    }

    /// One connection attempt. On success the connection is kept and the back-off reset;
    /// on failure the next attempt is scheduled.
    async fn reconnect(&mut self) -> Result<MultiplexedConnection, StoreError> {
        match self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
        {
            Ok(conn) => {
                self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                self.conn = Some(conn.clone());
                self.last_error = None;
                self.backoff = FIRST_BACKOFF;
                if self.failing {
                    self.failing = false;
                    tracing::info!(store = %self.location, "job store reconnected: commits succeed again");
                }
                Ok(conn)
            }
            Err(e) => {
                let err = classify(e, &self.location);
                self.schedule_retry(err.clone());
                self.note_failure(&err);
                Err(err)
            }
        }
    }
}

/// One group in one `MULTI`/`EXEC`: within each batch its writes, then its removals.
async fn write_group(
    mut conn: MultiplexedConnection,
    keys: Keys,
    batches: &[Batch],
) -> RedisResult<()> {
    let persists: u64 = batches.iter().map(|b| b.persist.len() as u64).sum();
    // Sequence numbers for the replay order, reserved before the transaction (a number
    // is never reused; a failed transaction only leaves a gap).
    let mut seq = if persists > 0 {
        let last: u64 = redis::cmd("INCRBY")
            .arg(&keys.seq[..])
            .arg(persists)
            .query_async(&mut conn)
            .await?;
        last + 1 - persists
    } else {
        0
    };
    let mut pipe = redis::pipe();
    pipe.atomic();
    for batch in batches {
        for job in &batch.persist {
            let key = keys.job(&job.handle);
            pipe.cmd("DEL").arg(&key).ignore();
            pipe.cmd("HSET").arg(&key).arg(encode::fields(job)).ignore();
            pipe.cmd("ZADD")
                .arg(&keys.jobs[..])
                .arg("NX")
                .arg(seq)
                .arg(&job.handle[..])
                .ignore();
            seq += 1;
        }
        for handle in &batch.complete {
            pipe.cmd("DEL").arg(keys.job(handle)).ignore();
            pipe.cmd("ZREM")
                .arg(&keys.jobs[..])
                .arg(&handle[..])
                .ignore();
        }
    }
    pipe.query_async::<()>(&mut conn).await
}

type Row = (Vec<u8>, HashMap<Vec<u8>, Vec<u8>>);

/// Every handle in replay order with its fields; handles whose hash is missing are skipped.
async fn read_all(mut conn: MultiplexedConnection, keys: Keys) -> RedisResult<Vec<Row>> {
    let handles: Vec<Vec<u8>> = redis::cmd("ZRANGE")
        .arg(&keys.jobs[..])
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await?;
    let mut rows = Vec::with_capacity(handles.len());
    let mut missing = 0usize;
    for chunk in handles.chunks(LOAD_CHUNK) {
        let mut pipe = redis::pipe();
        for handle in chunk {
            pipe.cmd("HGETALL").arg(keys.job(handle));
        }
        let hashes: Vec<HashMap<Vec<u8>, Vec<u8>>> = pipe.query_async(&mut conn).await?;
        for (handle, fields) in chunk.iter().zip(hashes) {
            if fields.is_empty() {
                missing += 1;
            } else {
                rows.push((handle.clone(), fields));
            }
        }
    }
    if missing > 0 {
        tracing::warn!(
            missing,
            "job handles listed in the replay order have no job hash; skipped"
        );
    }
    Ok(rows)
}

/// Whether the error means the connection is gone and must be replaced.
fn broken(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
}

fn unavailable(location: &str, source: gearbox_store::error::Cause) -> StoreError {
    StoreError::Unavailable {
        location: location.to_owned(),
        source,
    }
}

/// Maps a driver error to the store error whose message says what to do.
pub(crate) fn classify(e: RedisError, location: &str) -> StoreError {
    if broken(&e) {
        return unavailable(location, Arc::new(e));
    }
    let location = location.to_owned();
    match e.code() {
        Some("OOM") => StoreError::DiskFull {
            location,
            source: Arc::new(e),
        },
        _ => StoreError::Backend {
            location,
            source: Arc::new(e),
        },
    }
}

//! The Redis side of the store's driver: connecting, one batch in one `MULTI`/`EXEC`, and
//! loading. The task itself (order, reconnection, outage logging, counters) is
//! [`gearbox_store::driver`].

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use gearbox_store::driver::{Backend, Imported};
use gearbox_store::{Batch, HandleMaker, StoreError, StoredJob};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, RedisResult};

use crate::encode::{self, Keys};
use crate::Persistence;

/// How many `HGETALL`s `load` sends in one pipeline.
const LOAD_CHUNK: usize = 1000;

/// What the driver needs to talk to Redis.
pub struct Redis {
    pub(crate) client: Client,
    pub(crate) config: AsyncConnectionConfig,
    pub(crate) location: String,
    pub(crate) keys: Keys,
    /// What the server said about its persistence, read at the first connection.
    pub(crate) persistence: Arc<OnceLock<Option<Persistence>>>,
}

impl Backend for Redis {
    const NAME: &'static str = "redis";
    type Conn = MultiplexedConnection;
    type Control = ();

    /// Connects; the first time, also reads the server's persistence settings.
    async fn connect(&mut self) -> Result<MultiplexedConnection, StoreError> {
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
            .map_err(|e| classify(e, &self.location))?;
        if self.persistence.get().is_none() {
            let found = crate::check_persistence(&mut conn, &self.location).await;
            let _ = self.persistence.set(found);
        }
        Ok(conn)
    }

    async fn apply(
        &mut self,
        conn: &mut MultiplexedConnection,
        batch: Arc<Batch>,
    ) -> Result<(), StoreError> {
        write_batch(conn.clone(), &self.keys, &batch)
            .await
            .map_err(|e| classify(e, &self.location))
    }

    async fn load(
        &mut self,
        conn: &mut MultiplexedConnection,
    ) -> Result<Vec<StoredJob>, StoreError> {
        let rows = read_all(conn.clone(), &self.keys)
            .await
            .map_err(|e| classify(e, &self.location))?;
        rows.into_iter()
            .map(|(handle, fields)| encode::decode(handle, fields))
            .collect()
    }

    /// Moves gearmand's queue under the prefix `table` (gearmand's `--redis-prefix`): see
    /// [`crate::import`].
    async fn import(
        &mut self,
        conn: &mut MultiplexedConnection,
        table: &str,
        make: &mut HandleMaker,
    ) -> Imported {
        crate::import::import(conn, &self.keys, table, make, &self.location).await
    }

    /// Drops a `WATCH` a failed import may have left on the connection.
    async fn rollback(&mut self, conn: &mut MultiplexedConnection) -> bool {
        redis::cmd("UNWATCH").exec_async(conn).await.is_ok()
    }
}

/// One batch in one `MULTI`/`EXEC`: its writes, then its removals. Applying it twice gives
/// the same state as applying it once.
async fn write_batch(
    mut conn: MultiplexedConnection,
    keys: &Keys,
    batch: &Batch,
) -> RedisResult<()> {
    let first = reserve_seq(&mut conn, keys, batch.persist.len()).await?;
    let mut pipe = redis::pipe();
    pipe.atomic();
    queue_persists(&mut pipe, keys, &batch.persist, first);
    for handle in &batch.complete {
        pipe.cmd("DEL").arg(keys.job(handle)).ignore();
        pipe.cmd("ZREM")
            .arg(&keys.jobs[..])
            .arg(&handle[..])
            .ignore();
    }
    pipe.query_async::<()>(&mut conn).await
}

/// Reserves `count` sequence numbers for the replay order and returns the first, before the
/// transaction that uses them (a number is never reused; a failed transaction only leaves a
/// gap).
pub(crate) async fn reserve_seq(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    count: usize,
) -> RedisResult<u64> {
    if count == 0 {
        return Ok(0);
    }
    let count = count as u64;
    let last: u64 = redis::cmd("INCRBY")
        .arg(&keys.seq[..])
        .arg(count)
        .query_async(conn)
        .await?;
    Ok(last + 1 - count)
}

/// Adds to `pipe` the writes of `jobs` (their hashes, and their places in the replay order
/// numbered from `seq`), every reply ignored.
pub(crate) fn queue_persists(
    pipe: &mut redis::Pipeline,
    keys: &Keys,
    jobs: &[StoredJob],
    seq: u64,
) {
    for (job, seq) in jobs.iter().zip(seq..) {
        let key = keys.job(&job.handle);
        pipe.cmd("DEL").arg(&key).ignore();
        pipe.cmd("HSET").arg(&key).arg(encode::fields(job)).ignore();
        pipe.cmd("ZADD")
            .arg(&keys.jobs[..])
            .arg("NX")
            .arg(seq)
            .arg(&job.handle[..])
            .ignore();
    }
}

type Row = (Vec<u8>, HashMap<Vec<u8>, Vec<u8>>);

/// Every handle in replay order with its fields; handles whose hash is missing are skipped.
async fn read_all(mut conn: MultiplexedConnection, keys: &Keys) -> RedisResult<Vec<Row>> {
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

//! Moving gearmand's Redis queue (see [`crate::gearmand`]) into our keys at start-up.
//!
//! The keys `<prefix>-*` are listed with `SCAN` (sorted, for a deterministic order:
//! gearmand's queue keeps none), then moved [`CHUNK`] at a time. For each chunk the keys are
//! `WATCH`ed and read, and one `MULTI`/`EXEC` writes the jobs under new handles and deletes
//! gearmand's keys: a crash neither loses nor duplicates a job (a chunk moved is gone from
//! gearmand's keys, one not moved is still there for the next start), and a key that gearmand
//! (still running) changes meanwhile makes `EXEC` fail and the chunk is read again. Keys that
//! are not gearmand's queued jobs are left as they are, with a warning.
//!
//! `WATCH` is connection state: this is safe on the multiplexed connection because the
//! store's driver task is its only user and runs one request at a time.

use std::collections::BTreeSet;
use std::sync::Arc;

use gearbox_store::driver::Imported;
use gearbox_store::{HandleMaker, StoreError, StoredJob};
use redis::aio::MultiplexedConnection;
use redis::RedisResult;

use crate::backend::{classify, queue_persists, reserve_seq};
use crate::encode::Keys;
use crate::gearmand::{self, Value};

/// How many of gearmand's keys move in one transaction.
pub(crate) const CHUNK: usize = 500;

/// How many keys one `SCAN` step asks for.
const SCAN_COUNT: usize = 1000;

/// How many times a chunk is read again when gearmand's keys change while it moves.
const ATTEMPTS: u32 = 10;

/// How many keys left alone are named one by one in the log.
const NAMED_LEFT: usize = 10;

/// Why an import stopped (the cause of a [`StoreError::Backend`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Another program kept changing gearmand's keys while they were being moved.
    #[error("gearmand's keys `{prefix}-*` changed {attempts} times while being moved: stop gearmand (and anything else writing them) before starting gearboxd")]
    KeepChanging {
        /// gearmand's key prefix.
        prefix: String,
        /// How many times the move was tried.
        attempts: u32,
    },
    /// A new handle for an imported job is already stored.
    #[error("the new handle {handle} for a job of gearmand's queue is already stored; nothing of this chunk was moved")]
    HandleTaken {
        /// The handle, lossily decoded.
        handle: String,
    },
}

/// Keys left alone, for the log.
#[derive(Default)]
struct Left {
    count: usize,
}

impl Left {
    fn note(&mut self, key: &[u8], reason: &str, prefix: &str) {
        self.count += 1;
        if self.count <= NAMED_LEFT {
            tracing::warn!(
                key = %String::from_utf8_lossy(key),
                reason,
                gearmand_prefix = prefix,
                "a key under gearmand's Redis prefix is not a queued gearmand job; left as it is"
            );
        }
    }
}

/// Moves every job gearmand queued under `prefix` into our keys with handles from `make`:
/// how many moved, or `None` when there is no key under the prefix.
pub(crate) async fn import(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    prefix: &str,
    make: &mut HandleMaker,
    location: &str,
) -> Imported {
    let db = |e| classify(e, location);
    let start = gearmand::key_start(prefix.as_bytes());
    let found = scan(conn, &gearmand::pattern(&start)).await.map_err(db)?;
    // Our own keys are among them when our prefix starts with `<prefix>-`.
    let candidates: Vec<Vec<u8>> = found.into_iter().filter(|k| !keys.is_ours(k)).collect();
    if candidates.is_empty() {
        tracing::debug!(store = %location, gearmand_prefix = prefix, "no gearmand Redis queue to import");
        return Ok(None);
    }
    let mut left = Left::default();
    let mut count = 0;
    for chunk in candidates.chunks(CHUNK) {
        let mover = Mover {
            keys,
            start: &start,
            prefix,
            location,
        };
        count += mover.attempt(conn, chunk, make, &mut left).await?;
    }
    if left.count > NAMED_LEFT {
        tracing::warn!(store = %location, gearmand_prefix = prefix, keys = left.count, "keys under gearmand's Redis prefix left as they are (the first {NAMED_LEFT} are named above)");
    }
    tracing::info!(store = %location, gearmand_prefix = prefix, jobs = count, left = left.count, "imported the gearmand queue");
    Ok(Some(count))
}

/// Every key matching `pattern`, sorted, each once (`SCAN` may return a key twice).
async fn scan(conn: &mut MultiplexedConnection, pattern: &[u8]) -> RedisResult<BTreeSet<Vec<u8>>> {
    let mut found = BTreeSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(conn)
            .await?;
        found.extend(keys);
        if next == 0 {
            return Ok(found);
        }
        cursor = next;
    }
}

/// What moving one chunk needs to know.
struct Mover<'a> {
    keys: &'a Keys,
    start: &'a [u8],
    prefix: &'a str,
    location: &'a str,
}

impl Mover<'_> {
    /// Moves the jobs of `chunk` in one transaction, reading them again when they changed
    /// meanwhile; how many moved.
    async fn attempt(
        &self,
        conn: &mut MultiplexedConnection,
        chunk: &[Vec<u8>],
        make: &mut HandleMaker,
        left: &mut Left,
    ) -> Result<usize, StoreError> {
        let db = |e| classify(e, self.location);
        for attempt in 1..=ATTEMPTS {
            let outcome = self.once(conn, chunk, make).await.map_err(db)?;
            match outcome {
                Outcome::Moved { jobs, skipped } => {
                    for (key, reason) in skipped {
                        left.note(&key, &reason, self.prefix);
                    }
                    return Ok(jobs);
                }
                Outcome::Taken(handle) => {
                    return Err(self.failed(ImportError::HandleTaken {
                        handle: String::from_utf8_lossy(&handle).into_owned(),
                    }))
                }
                Outcome::Changed => {
                    tracing::debug!(store = %self.location, attempt, "gearmand's keys changed while being moved; reading them again");
                }
            }
        }
        Err(self.failed(ImportError::KeepChanging {
            prefix: self.prefix.to_owned(),
            attempts: ATTEMPTS,
        }))
    }

    fn failed(&self, e: ImportError) -> StoreError {
        StoreError::Backend {
            location: self.location.to_owned(),
            source: Arc::new(e),
        }
    }

    /// One try: [`Mover::prepare`], then [`Mover::commit`].
    async fn once(
        &self,
        conn: &mut MultiplexedConnection,
        chunk: &[Vec<u8>],
        make: &mut HandleMaker,
    ) -> RedisResult<Outcome> {
        match self.prepare(conn, chunk, make).await? {
            Ok(ready) => self.commit(conn, ready).await,
            Err(outcome) => Ok(outcome),
        }
    }

    /// Watches and reads the keys of `chunk`, and checks that the new handles are free: the
    /// jobs to write, or how the try ended without a transaction (nothing to move, a handle
    /// taken; the watches are then dropped).
    async fn prepare(
        &self,
        conn: &mut MultiplexedConnection,
        chunk: &[Vec<u8>],
        make: &mut HandleMaker,
    ) -> RedisResult<Result<Ready, Outcome>> {
        redis::cmd("WATCH").arg(chunk).exec_async(conn).await?;
        let values = read(conn, chunk).await?;
        let mut ready = Ready {
            jobs: Vec::with_capacity(chunk.len()),
            moved: Vec::with_capacity(chunk.len()),
            skipped: Vec::new(),
        };
        for (key, value) in chunk.iter().zip(values) {
            if matches!(&value, Value::Other(kind) if kind == "none") {
                // Gone since the scan: gearmand ran or cancelled that job.
                continue;
            }
            match gearmand::record(key, self.start, value) {
                Ok(row) => {
                    ready.jobs.push(row.into_job(self.prefix, make()));
                    ready.moved.push(key.clone());
                }
                Err(reason) => ready.skipped.push((key.clone(), reason)),
            }
        }
        if ready.jobs.is_empty() {
            redis::cmd("UNWATCH").exec_async(conn).await?;
            let skipped = ready.skipped;
            return Ok(Err(Outcome::Moved { jobs: 0, skipped }));
        }
        let ours: Vec<Vec<u8>> = ready
            .jobs
            .iter()
            .map(|j| self.keys.job(&j.handle))
            .collect();
        redis::cmd("WATCH").arg(&ours).exec_async(conn).await?;
        let mut exists = redis::pipe();
        for key in &ours {
            exists.cmd("EXISTS").arg(key);
        }
        let taken: Vec<bool> = exists.query_async(conn).await?;
        let mut jobs = ready.jobs.iter().zip(taken);
        if let Some((job, _)) = jobs.find(|(_, taken)| *taken) {
            redis::cmd("UNWATCH").exec_async(conn).await?;
            return Ok(Err(Outcome::Taken(job.handle.to_vec())));
        }
        Ok(Ok(ready))
    }

    /// Writes the jobs and deletes gearmand's keys in one transaction, unless a watched key
    /// changed since [`Mover::prepare`].
    async fn commit(&self, conn: &mut MultiplexedConnection, ready: Ready) -> RedisResult<Outcome> {
        let seq = reserve_seq(conn, self.keys, ready.jobs.len()).await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        queue_persists(&mut pipe, self.keys, &ready.jobs, seq);
        for key in &ready.moved {
            pipe.cmd("DEL").arg(key);
        }
        // `None`: EXEC was refused because a watched key changed.
        let done: Option<Vec<i64>> = pipe.query_async(conn).await?;
        Ok(match done {
            Some(_) => Outcome::Moved {
                jobs: ready.jobs.len(),
                skipped: ready.skipped,
            },
            None => Outcome::Changed,
        })
    }
}

/// A chunk read and checked, ready for its transaction.
struct Ready {
    /// The jobs to write, with their new handles.
    jobs: Vec<StoredJob>,
    /// gearmand's keys they come from.
    moved: Vec<Vec<u8>>,
    /// Keys left alone, with the reason.
    skipped: Vec<(Vec<u8>, String)>,
}

/// How one try of a chunk ended.
enum Outcome {
    /// Committed: how many jobs moved, and the keys left alone with the reason.
    Moved {
        jobs: usize,
        skipped: Vec<(Vec<u8>, String)>,
    },
    /// A new handle is already stored (nothing written).
    Taken(Vec<u8>),
    /// A watched key changed (nothing written).
    Changed,
}

/// What each key holds: its type, then the hash or string for those types. A key that
/// changed in between reads as [`Value::Other`] (the chunk's `EXEC` then fails anyway).
async fn read(conn: &mut MultiplexedConnection, chunk: &[Vec<u8>]) -> RedisResult<Vec<Value>> {
    let mut types = redis::pipe();
    for key in chunk {
        types.cmd("TYPE").arg(key);
    }
    let types: Vec<String> = types.query_async(conn).await?;
    let mut reads = redis::pipe();
    for (key, kind) in chunk.iter().zip(&types) {
        match kind.as_str() {
            "hash" => reads.cmd("HGETALL").arg(key),
            "string" => reads.cmd("GET").arg(key),
            _ => continue,
        };
    }
    let replies: Vec<redis::Value> = if reads.is_empty() {
        Vec::new()
    } else {
        reads.query_async(conn).await?
    };
    let mut replies = replies.into_iter();
    let values = types
        .into_iter()
        .map(|kind| {
            let read = match kind.as_str() {
                "hash" => replies
                    .next()
                    .and_then(|r| redis::from_redis_value(r).ok())
                    .map(Value::Hash),
                "string" => replies
                    .next()
                    .and_then(|r| redis::from_redis_value(r).ok())
                    .map(Value::String),
                _ => None,
            };
            read.unwrap_or(Value::Other(kind))
        })
        .collect();
    Ok(values)
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;

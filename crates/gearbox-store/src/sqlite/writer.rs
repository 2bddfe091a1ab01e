//! The writer thread: owns the SQLite connection and commits in groups.
//!
//! Every request reaches the thread over one channel, so requests are served in the order
//! they were made. Consecutive commit requests are drained into one transaction (group
//! commit): while one transaction is being flushed to disk, the next ones queue up and then
//! share the following flush. Every caller of a group is answered after its COMMIT.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use gearbox_proto::Priority;
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::schema::{self, classify, Sql};
use crate::{Batch, StoreError, StoredJob};

/// The most commit requests put into one transaction.
const MAX_GROUP: usize = 4096;

/// Where the answer to a request goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// Makes a new handle for each imported gearmand job.
pub(crate) type HandleMaker = Box<dyn FnMut() -> Bytes + Send>;

/// What the store asks of its writer thread.
pub(crate) enum Request {
    /// Apply a batch; answered after the transaction that carries it commits.
    Commit { batch: Batch, reply: Reply<()> },
    /// Read every stored job in replay order.
    Load { reply: Reply<Vec<StoredJob>> },
    /// Move the rows of a gearmand queue table into ours.
    Import {
        table: String,
        new_handle: HandleMaker,
        reply: Reply<usize>,
    },
    /// Cap the database size (`PRAGMA max_page_count`); answered with the limit in bytes.
    SizeLimit {
        max_bytes: Option<u64>,
        reply: Reply<u64>,
    },
    /// Close the connection and stop; later requests get [`StoreError::Closed`].
    Close { reply: oneshot::Sender<()> },
}

/// Counters shared with the store handle, for tests and metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub transactions: AtomicU64,
    pub batches: AtomicU64,
    pub persisted: AtomicU64,
    pub removed: AtomicU64,
    pub failures: AtomicU64,
}

/// The state owned by the writer thread.
pub(crate) struct Writer {
    pub conn: Connection,
    /// The database path, for logs and errors.
    pub location: String,
    pub sql: Sql,
    pub counters: Arc<Counters>,
    /// True from a failed transaction until the next successful one: errors are logged once
    /// per outage, not once per batch.
    pub failing: bool,
}

impl Writer {
    /// Serves requests until the store is dropped or closed.
    pub(crate) fn run(mut self, rx: Receiver<Request>) {
        let mut next = None;
        loop {
            let request = match next.take() {
                Some(request) => request,
                None => match rx.recv() {
                    Ok(request) => request,
                    Err(_) => break,
                },
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
                    self.commit_group(group);
                }
                Request::Load { reply } => {
                    let _ = reply.send(self.load());
                }
                Request::Import {
                    table,
                    mut new_handle,
                    reply,
                } => {
                    let _ = reply.send(self.import(&table, &mut *new_handle));
                }
                Request::SizeLimit { max_bytes, reply } => {
                    let _ = reply.send(self.set_size_limit(max_bytes));
                }
                Request::Close { reply } => {
                    let location = self.location.clone();
                    if let Err((_, e)) = self.conn.close() {
                        tracing::warn!(store = %location, error = %e, "closing the job store failed");
                    }
                    tracing::debug!(store = %location, "job store closed");
                    let _ = reply.send(());
                    return;
                }
            }
        }
        tracing::debug!(store = %self.location, "job store writer stopped");
    }

    fn commit_group(&mut self, group: Vec<(Batch, Reply<()>)>) {
        let writes: usize = group.iter().map(|(b, _)| b.len()).sum();
        if writes == 0 {
            for (_, reply) in group {
                let _ = reply.send(Ok(()));
            }
            return;
        }
        let started = Instant::now();
        match self.write_group(group.iter().map(|(b, _)| b)) {
            Ok(()) => {
                let c = &self.counters;
                c.transactions.fetch_add(1, Ordering::Relaxed);
                c.batches.fetch_add(group.len() as u64, Ordering::Relaxed);
                let persisted: usize = group.iter().map(|(b, _)| b.persist.len()).sum();
                c.persisted.fetch_add(persisted as u64, Ordering::Relaxed);
                c.removed
                    .fetch_add((writes - persisted) as u64, Ordering::Relaxed);
                if self.failing {
                    self.failing = false;
                    tracing::info!(store = %self.location, "job store recovered: commits succeed again");
                }
                tracing::trace!(
                    store = %self.location,
                    batches = group.len(),
                    writes,
                    micros = started.elapsed().as_micros() as u64,
                    "group commit"
                );
                for (_, reply) in group {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                let err = classify(e, &self.location);
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                if self.failing {
                    tracing::debug!(store = %self.location, batches = group.len(), error = %err, "job store commit failed again");
                } else {
                    self.failing = true;
                    tracing::error!(
                        store = %self.location,
                        batches = group.len(),
                        error = %err,
                        "job store commit failed; background submits fail until it recovers"
                    );
                }
                for (_, reply) in group {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }

    fn write_group<'b>(
        &mut self,
        batches: impl Iterator<Item = &'b Batch>,
    ) -> rusqlite::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut upsert = tx.prepare_cached(&self.sql.upsert)?;
            let mut delete = tx.prepare_cached(&self.sql.delete)?;
            for batch in batches {
                for job in &batch.persist {
                    schema::write_job(&mut upsert, job)?;
                }
                for handle in &batch.complete {
                    delete.execute([schema::handle_value(handle)])?;
                }
            }
        }
        tx.commit()
    }

    fn set_size_limit(&mut self, max_bytes: Option<u64>) -> Result<u64, StoreError> {
        let db = |e| classify(e, &self.location);
        let page_size: i64 = self
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(db)?;
        let page_size = page_size.max(1) as u64;
        // SQLite clamps the limit to its own maximum and to the current size.
        let pages = max_bytes.map_or(u64::from(u32::MAX), |b| b.div_ceil(page_size).max(1));
        let set: i64 = self
            .conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                r.get(0)
            })
            .map_err(db)?;
        let limit = (set.max(0) as u64).saturating_mul(page_size);
        tracing::info!(store = %self.location, limit_bytes = limit, "job store size limit set");
        Ok(limit)
    }

    fn load(&mut self) -> Result<Vec<StoredJob>, StoreError> {
        let location = &self.location;
        let db = |e| classify(e, location);
        let mut stmt = self.conn.prepare_cached(&self.sql.select).map_err(db)?;
        let mut rows = stmt.query([]).map_err(db)?;
        let mut jobs = Vec::new();
        while let Some(row) = rows.next().map_err(db)? {
            jobs.push(schema::decode_job(row, location)?);
        }
        tracing::debug!(store = %location, jobs = jobs.len(), "loaded stored jobs");
        Ok(jobs)
    }

    fn import(
        &mut self,
        table: &str,
        new_handle: &mut (dyn FnMut() -> Bytes + Send),
    ) -> Result<usize, StoreError> {
        let quoted = schema::quote_ident(table)?;
        let location = self.location.clone();
        let db = |e| classify(e, &location);
        let have = schema::columns(&self.conn, &quoted).map_err(db)?;
        if have.is_empty() {
            tracing::debug!(store = %location, table, "no gearmand queue table to import");
            return Ok(0);
        }
        if let Some(column) = schema::missing_gearmand_column(&have) {
            return Err(StoreError::NotGearmandTable {
                table: table.into(),
                column: column.into(),
            });
        }
        let when = if have.iter().any(|c| c == "when_to_run") {
            "when_to_run"
        } else {
            "0"
        };
        let select =
            format!("SELECT unique_key, function_name, priority, data, {when} FROM {quoted}");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let mut count = 0;
        {
            // gearmand's tables have row ids; their order is the order jobs were queued.
            let mut read = tx
                .prepare(&format!("{select} ORDER BY rowid"))
                .or_else(|_| tx.prepare(&select))
                .map_err(db)?;
            let mut insert = tx.prepare_cached(&self.sql.insert).map_err(db)?;
            let mut rows = read.query([]).map_err(db)?;
            while let Some(row) = rows.next().map_err(db)? {
                let function = schema::bytes_at(row, 1).map_err(db)?;
                let number = schema::int_at(row, 2).map_err(db)?;
                let priority = schema::priority_from(number).unwrap_or_else(|| {
                    tracing::warn!(table, priority = ?number, "gearmand job has an unknown priority; importing it as normal");
                    Priority::Normal
                });
                let job = StoredJob {
                    handle: new_handle(),
                    function,
                    unique: schema::bytes_at(row, 0).map_err(db)?,
                    priority,
                    data: schema::bytes_at(row, 3).map_err(db)?,
                    when_to_run: schema::int_at(row, 4).map_err(db)?.unwrap_or(0).max(0) as u64,
                    schedule: None,
                    reducer: None,
                };
                schema::write_job(&mut insert, &job).map_err(db)?;
                count += 1;
            }
        }
        tx.execute(&format!("DELETE FROM {quoted}"), [])
            .map_err(db)?;
        tx.commit().map_err(db)?;
        self.counters.transactions.fetch_add(1, Ordering::Relaxed);
        self.counters
            .persisted
            .fetch_add(count as u64, Ordering::Relaxed);
        tracing::info!(store = %location, table, jobs = count, "imported the gearmand queue");
        Ok(count)
    }
}

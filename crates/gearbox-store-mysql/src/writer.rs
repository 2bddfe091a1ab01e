//! The writer task: owns the MySQL connection, commits in groups and reconnects.
//!
//! Every request reaches the task over one channel, so requests are served in the order they
//! were made. Consecutive commit requests are drained into one transaction (group commit):
//! while one transaction commits, the next ones queue up and then share the following one,
//! written as one `DELETE ... WHERE handle IN (...)` and one multi-row
//! `INSERT ... ON DUPLICATE KEY UPDATE` (split into chunks only when very large). Every caller
//! of a group is answered after its COMMIT.
//!
//! When the connection is lost the task drops it and reconnects with exponential back-off
//! (also while idle). Requests made meanwhile fail at once with [`StoreError::Unavailable`]
//! unless a reconnection attempt is due, in which case they wait for that one attempt.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gearbox_proto::Priority;
use gearbox_store::{Batch, Durability, StoreError, StoredJob};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Params, Row, Value};
use tokio::sync::{mpsc, oneshot};

use crate::sql::{self, classify};

/// The most commit requests put into one transaction.
const MAX_GROUP: usize = 4096;

/// The most rows in one INSERT or handles in one DELETE (8 placeholders a row stays far
/// below the protocol's 65,535).
const MAX_ROWS: usize = 2000;

/// Payload bytes after which an INSERT is split, to stay below `max_allowed_packet`.
const MAX_STATEMENT_BYTES: usize = 4 << 20;

/// First wait before reconnecting after a loss; doubled after each failed attempt.
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// The longest wait between two reconnection attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Where the answer to a request goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// Makes a new handle for each imported gearmand job.
pub(crate) type HandleMaker = Box<dyn FnMut() -> Bytes + Send>;

/// What the store asks of its writer task.
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
    /// Stop; later requests get [`StoreError::Closed`].
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
    pub connects: AtomicU64,
}

/// The state owned by the writer task.
pub(crate) struct Writer {
    pub opts: Opts,
    pub connect_timeout: Duration,
    pub durability: Durability,
    /// Server and database, without password, for logs and errors.
    pub location: String,
    pub table: String,
    pub quoted: String,
    pub counters: Arc<Counters>,
    pub conn: Option<Conn>,
    /// True from a lost connection or failed transaction until the next success: errors are
    /// logged once per outage, not once per batch.
    pub failing: bool,
    /// The current back-off and when the next reconnection attempt is due.
    pub backoff: Duration,
    pub next_attempt: Instant,
    /// The last connection error, returned to requests made before the next attempt.
    pub last_error: Option<StoreError>,
}

impl Writer {
    /// Connects, creates our table if missing and checks its columns.
    pub(crate) async fn connect(&mut self) -> Result<(), StoreError> {
        let location = self.location.clone();
        let db = |e| classify(e, &location);
        let mut conn =
            match tokio::time::timeout(self.connect_timeout, Conn::new(self.opts.clone())).await {
                Ok(conn) => conn.map_err(db)?,
                Err(elapsed) => {
                    return Err(StoreError::Unavailable {
                        location,
                        source: Arc::new(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("connecting timed out: {elapsed}"),
                        )),
                    })
                }
            };
        // Strict mode: a value that does not fit is an error, never silently cut.
        conn.query_drop(
            "SET SESSION sql_mode = CONCAT_WS(',', @@SESSION.sql_mode, 'STRICT_ALL_TABLES')",
        )
        .await
        .map_err(db)?;
        // Fewer gap locks when several servers share the table.
        conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .await
            .map_err(db)?;
        self.migrate(&mut conn).await?;
        if self.durability == Durability::Fsync {
            let flush: Option<i64> = conn
                .query_first("SELECT @@GLOBAL.innodb_flush_log_at_trx_commit")
                .await
                .map_err(db)?;
            if flush != Some(1) {
                tracing::warn!(store = %location, innodb_flush_log_at_trx_commit = ?flush, "durability fsync asked, but the server does not flush its log at each commit: set innodb_flush_log_at_trx_commit = 1");
            }
        }
        self.conn = Some(conn);
        self.counters.connects.fetch_add(1, Ordering::Relaxed);
        self.backoff = MIN_BACKOFF;
        self.last_error = None;
        Ok(())
    }

    /// Creates our table if missing and checks the columns of an existing one.
    async fn migrate(&self, conn: &mut Conn) -> Result<(), StoreError> {
        let db = |e| classify(e, &self.location);
        conn.query_drop(sql::CREATE_JOBS.replace("{table}", &self.quoted))
            .await
            .map_err(db)?;
        let have: Vec<String> = conn
            .exec(sql::COLUMNS_OF, (self.table.as_str(),))
            .await
            .map_err(db)?;
        if let Some(missing) = sql::OUR_COLUMNS
            .iter()
            .find(|c| !have.iter().any(|h| h == *c))
        {
            return Err(StoreError::SchemaMismatch {
                table: self.table.clone(),
                column: (*missing).into(),
            });
        }
        Ok(())
    }

    /// Serves requests until the store is dropped or closed.
    pub(crate) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Request>) {
        let mut next = None;
        loop {
            let request = match next.take() {
                Some(request) => request,
                None if self.conn.is_none() => {
                    tokio::select! {
                        r = rx.recv() => match r {
                            Some(r) => r,
                            None => break,
                        },
                        _ = tokio::time::sleep_until(self.next_attempt.into()) => {
                            let _ = self.ensure_connected().await;
                            continue;
                        }
                    }
                }
                None => match rx.recv().await {
                    Some(request) => request,
                    None => break,
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
                    self.commit_group(group).await;
                }
                Request::Load { reply } => {
                    let result = self.load().await;
                    self.note(&result);
                    let _ = reply.send(result);
                }
                Request::Import {
                    table,
                    mut new_handle,
                    reply,
                } => {
                    let result = self.import(&table, &mut *new_handle).await;
                    self.note(&result);
                    let _ = reply.send(result);
                }
                Request::Close { reply } => {
                    if let Some(conn) = self.conn.take() {
                        let _ = conn.disconnect().await;
                    }
                    tracing::debug!(store = %self.location, "job store closed");
                    let _ = reply.send(());
                    return;
                }
            }
        }
        if let Some(conn) = self.conn.take() {
            let _ = conn.disconnect().await;
        }
        tracing::debug!(store = %self.location, "job store writer stopped");
    }

    /// Makes sure there is a connection: reconnects if an attempt is due, otherwise fails at
    /// once with the last connection error. (A connection that died silently is noticed by
    /// the next statement, which fails with [`StoreError::Unavailable`].)
    async fn ensure_connected(&mut self) -> Result<(), StoreError> {
        if self.conn.is_some() {
            return Ok(());
        }
        if Instant::now() < self.next_attempt {
            return Err(self.last_error.clone().unwrap_or(StoreError::Closed));
        }
        match self.connect().await {
            Ok(()) => {
                if self.failing {
                    self.failing = false;
                    tracing::info!(store = %self.location, "job store reconnected: commits succeed again");
                }
                Ok(())
            }
            Err(e) => {
                self.next_attempt = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                if self.failing {
                    tracing::debug!(store = %self.location, error = %e, "job store reconnection failed");
                } else {
                    self.failing = true;
                    tracing::error!(store = %self.location, error = %e, cause = %cause(&e), "cannot reach the job store; background submits fail until it is back, reconnecting");
                }
                self.last_error = Some(e.clone());
                Err(e)
            }
        }
    }
    /// Forgets a lost connection; the next attempt is due at once.
    fn lost(&mut self, err: Option<&StoreError>) {
        self.conn = None;
        self.next_attempt = Instant::now();
        self.backoff = MIN_BACKOFF;
        if let Some(e) = err {
            self.last_error = Some(e.clone());
        }
    }

    /// After any operation: a connection loss drops the connection, and outages are logged
    /// once when they start and once when they end.
    fn note<T>(&mut self, result: &Result<T, StoreError>) {
        match result {
            Ok(_) => {
                if self.failing {
                    self.failing = false;
                    tracing::info!(store = %self.location, "job store recovered: commits succeed again");
                }
            }
            Err(e) => {
                let unavailable = matches!(e, StoreError::Unavailable { .. });
                if unavailable && self.conn.is_some() {
                    self.lost(Some(e));
                }
                if self.failing {
                    tracing::debug!(store = %self.location, error = %e, "job store operation failed again");
                } else if unavailable
                    || matches!(
                        e,
                        StoreError::DiskFull { .. }
                            | StoreError::Io { .. }
                            | StoreError::ReadOnly { .. }
                    )
                {
                    self.failing = true;
                    tracing::error!(store = %self.location, error = %e, cause = %cause(e), "job store failed; background submits fail until it recovers");
                } else {
                    tracing::warn!(store = %self.location, error = %e, cause = %cause(e), "job store operation failed");
                }
            }
        }
    }

    async fn commit_group(&mut self, group: Vec<(Batch, Reply<()>)>) {
        let writes: usize = group.iter().map(|(b, _)| b.len()).sum();
        if writes == 0 {
            for (_, reply) in group {
                let _ = reply.send(Ok(()));
            }
            return;
        }
        let started = Instant::now();
        let result = match self.ensure_connected().await {
            Ok(()) => {
                let (deletes, upserts) = net_effect(group.iter().map(|(b, _)| b));
                let result = self.write_group(&deletes, &upserts).await;
                self.finish_tx(result).await
            }
            Err(e) => Err(e),
        };
        match &result {
            Ok(()) => {
                let c = &self.counters;
                c.transactions.fetch_add(1, Ordering::Relaxed);
                c.batches.fetch_add(group.len() as u64, Ordering::Relaxed);
                let persisted: usize = group.iter().map(|(b, _)| b.persist.len()).sum();
                c.persisted.fetch_add(persisted as u64, Ordering::Relaxed);
                c.removed
                    .fetch_add((writes - persisted) as u64, Ordering::Relaxed);
                tracing::trace!(
                    store = %self.location,
                    batches = group.len(),
                    writes,
                    micros = started.elapsed().as_micros() as u64,
                    "group commit"
                );
            }
            Err(_) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.note(&result);
        for (_, reply) in group {
            let _ = reply.send(result.clone());
        }
    }

    /// After a transaction body: on a failure that left the connection up, rolls back (and
    /// drops the connection if even that fails, so that no half transaction lingers).
    async fn finish_tx<T>(&mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &result {
            if !matches!(e, StoreError::Unavailable { .. }) {
                if let Some(conn) = self.conn.as_mut() {
                    if conn.query_drop("ROLLBACK").await.is_err() {
                        self.conn = None;
                        self.next_attempt = Instant::now();
                    }
                }
            }
        }
        result
    }

    /// One transaction with the net effect of a group: one DELETE and one multi-row upsert
    /// (each split only when very large).
    async fn write_group(
        &mut self,
        deletes: &[Bytes],
        upserts: &[&StoredJob],
    ) -> Result<(), StoreError> {
        let location = self.location.clone();
        let db = |e| classify(e, &location);
        let quoted = self.quoted.clone();
        let conn = self.conn.as_mut().ok_or(StoreError::Closed)?;
        conn.query_drop("START TRANSACTION").await.map_err(db)?;
        for chunk in deletes.chunks(MAX_ROWS) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let params: Vec<Value> = chunk.iter().map(|h| Value::Bytes(h.to_vec())).collect();
            conn.exec_drop(
                format!("DELETE FROM {quoted} WHERE handle IN ({marks})"),
                Params::Positional(params),
            )
            .await
            .map_err(db)?;
        }
        insert_rows(conn, &quoted, upserts, true)
            .await
            .map_err(db)?;
        conn.query_drop("COMMIT").await.map_err(db)
    }

    async fn load(&mut self) -> Result<Vec<StoredJob>, StoreError> {
        self.ensure_connected().await?;
        let location = self.location.clone();
        let quoted = self.quoted.clone();
        let conn = self.conn.as_mut().ok_or(StoreError::Closed)?;
        let rows: Vec<Row> = conn
            .exec(
                format!("SELECT {} FROM {quoted} ORDER BY seq", sql::WRITE_COLUMNS),
                (),
            )
            .await
            .map_err(|e| classify(e, &location))?;
        let jobs = rows
            .iter()
            .map(sql::decode_job)
            .collect::<Result<Vec<_>, _>>()?;
        tracing::debug!(store = %location, jobs = jobs.len(), "loaded stored jobs");
        Ok(jobs)
    }

    async fn import(
        &mut self,
        table: &str,
        new_handle: &mut (dyn FnMut() -> Bytes + Send),
    ) -> Result<usize, StoreError> {
        let quoted = sql::quote_ident(table)?;
        self.ensure_connected().await?;
        let result = self.import_tx(table, &quoted, new_handle).await;
        self.finish_tx(result).await
    }

    async fn import_tx(
        &mut self,
        table: &str,
        quoted: &str,
        new_handle: &mut (dyn FnMut() -> Bytes + Send),
    ) -> Result<usize, StoreError> {
        let location = self.location.clone();
        let db = |e| classify(e, &location);
        let ours = self.quoted.clone();
        let conn = self.conn.as_mut().ok_or(StoreError::Closed)?;
        let have: Vec<String> = conn.exec(sql::COLUMNS_OF, (table,)).await.map_err(db)?;
        if have.is_empty() {
            tracing::debug!(store = %location, table, "no gearmand queue table to import");
            return Ok(0);
        }
        if let Some(column) = sql::GEARMAND_COLUMNS
            .iter()
            .find(|c| !have.iter().any(|h| h == *c))
        {
            return Err(StoreError::NotGearmandTable {
                table: table.into(),
                column: (*column).into(),
            });
        }
        let when = if have.iter().any(|h| h == "when_to_run") {
            "when_to_run"
        } else {
            "0"
        };
        conn.query_drop("START TRANSACTION").await.map_err(db)?;
        // Every column read as bytes, whatever gearmand's version made it (VARCHAR, TEXT,
        // BLOB); FOR UPDATE keeps other writers (even gearmand) out until the rows are gone.
        let rows: Vec<Row> = conn
            .exec(
                format!(
                    "SELECT CAST(unique_key AS BINARY), CAST(function_name AS BINARY), \
                     priority, CAST(data AS BINARY), {when} FROM {quoted} FOR UPDATE"
                ),
                (),
            )
            .await
            .map_err(db)?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let get = |i| Bytes::from(sql::bytes_at(row, i).unwrap_or_default());
            let number = sql::int_at(row, 2);
            let priority = sql::priority_from(number).unwrap_or_else(|| {
                tracing::warn!(table, priority = ?number, "gearmand job has an unknown priority; importing it as normal");
                Priority::Normal
            });
            let job = StoredJob {
                handle: new_handle(),
                unique: get(0),
                function: get(1),
                priority,
                data: get(3),
                when_to_run: sql::int_at(row, 4).unwrap_or(0).max(0) as u64,
                schedule: None,
                reducer: None,
            };
            if let Some(e) = sql::unstorable(&job) {
                return Err(e);
            }
            jobs.push(job);
        }
        let refs: Vec<&StoredJob> = jobs.iter().collect();
        insert_rows(conn, &ours, &refs, false).await.map_err(db)?;
        conn.query_drop(format!("DELETE FROM {quoted}"))
            .await
            .map_err(db)?;
        conn.query_drop("COMMIT").await.map_err(db)?;
        let count = jobs.len();
        self.counters.transactions.fetch_add(1, Ordering::Relaxed);
        self.counters
            .persisted
            .fetch_add(count as u64, Ordering::Relaxed);
        tracing::info!(store = %location, table, jobs = count, "imported the gearmand queue");
        Ok(count)
    }
}

/// Writes `jobs` in order with multi-row INSERTs (as few as the size limits allow). With
/// `upsert`, an existing handle keeps its `seq` and gets the new fields; without, it fails.
async fn insert_rows(
    conn: &mut Conn,
    quoted: &str,
    jobs: &[&StoredJob],
    upsert: bool,
) -> Result<(), mysql_async::Error> {
    let mut start = 0;
    while start < jobs.len() {
        let mut end = start;
        let mut size = 0;
        while end < jobs.len()
            && end - start < MAX_ROWS
            && (end == start || size < MAX_STATEMENT_BYTES)
        {
            let j = jobs[end];
            size += j.data.len() + j.function.len() + j.unique.len() + j.handle.len() + 64;
            end += 1;
        }
        let chunk = &jobs[start..end];
        let mut params = Vec::with_capacity(chunk.len() * 8);
        for job in chunk {
            sql::job_values(job, &mut params);
        }
        let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut statement = format!(
            "INSERT INTO {quoted} ({}) VALUES {rows}",
            sql::WRITE_COLUMNS
        );
        if upsert {
            statement.push_str(
                " ON DUPLICATE KEY UPDATE function = VALUES(function), \
                 unique_key = VALUES(unique_key), priority = VALUES(priority), \
                 data = VALUES(data), when_to_run = VALUES(when_to_run), \
                 schedule = VALUES(schedule), reducer = VALUES(reducer)",
            );
        }
        conn.exec_drop(statement, Params::Positional(params))
            .await?;
        start = end;
    }
    Ok(())
}

/// The driver's own message behind a store error (the store error says what to do, this says
/// what happened), for logs.
fn cause(e: &StoreError) -> String {
    match std::error::Error::source(e) {
        Some(source) => source.to_string(),
        None => String::new(),
    }
}

/// The handles to delete and the jobs to write (in the order their rows must be created) that
/// have the same effect as applying `batches` one after the other, each persisting before it
/// removes.
///
/// A handle removed in the group is deleted first; if it is persisted again after its last
/// removal it is then written as a new row, placed where that persist came. A handle only
/// persisted is written once, with its last fields, placed where it was first persisted.
pub(crate) fn net_effect<'b>(
    batches: impl Iterator<Item = &'b Batch>,
) -> (Vec<Bytes>, Vec<&'b StoredJob>) {
    // handle -> (position of the persist that creates its row, latest job or None if removed)
    let mut state: HashMap<&[u8], (usize, Option<&'b StoredJob>)> = HashMap::new();
    let mut deletes: Vec<Bytes> = Vec::new();
    let mut seen_delete: std::collections::HashSet<&[u8]> = Default::default();
    let mut position = 0;
    for batch in batches {
        for job in &batch.persist {
            position += 1;
            let entry = state.entry(&job.handle[..]).or_insert((position, None));
            if entry.1.is_none() {
                entry.0 = position;
            }
            entry.1 = Some(job);
        }
        for handle in &batch.complete {
            // A handle too long for the key column was never stored: nothing to delete.
            if handle.len() <= sql::MAX_HANDLE && seen_delete.insert(&handle[..]) {
                deletes.push(handle.clone());
            }
            if let Some(entry) = state.get_mut(&handle[..]) {
                entry.1 = None;
            }
        }
    }
    let mut upserts: Vec<(usize, &StoredJob)> = state
        .into_values()
        .filter_map(|(pos, job)| job.map(|j| (pos, j)))
        .collect();
    upserts.sort_by_key(|(pos, _)| *pos);
    (deletes, upserts.into_iter().map(|(_, j)| j).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handles(jobs: &[&StoredJob]) -> Vec<String> {
        jobs.iter()
            .map(|j| String::from_utf8_lossy(&j.handle).into_owned())
            .collect()
    }

    #[test]
    fn net_effect_matches_applying_batches_in_order() {
        let a1 = StoredJob::new("a", "f", "1");
        let a2 = StoredJob::new("a", "f", "2");
        let b = StoredJob::new("b", "f", "");
        let c = StoredJob::new("c", "f", "");
        let batches = [
            Batch::persist(a1),
            Batch::persist(b.clone()),
            Batch::persist(a2.clone()),
            Batch {
                persist: vec![c.clone()],
                complete: vec![Bytes::from("b"), Bytes::from("x")],
            },
            Batch::persist(b.clone()),
        ];
        let (deletes, upserts) = net_effect(batches.iter());
        assert_eq!(deletes, [Bytes::from("b"), Bytes::from("x")]);
        // a: first persisted first, with its last data; c next; b re-created after its removal.
        assert_eq!(handles(&upserts), ["a", "c", "b"]);
        assert_eq!(upserts[0].data, a2.data);
    }
}

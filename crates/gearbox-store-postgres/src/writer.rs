//! The writer task: owns the PostgreSQL connection, commits in groups and reconnects.
//!
//! Every request reaches the task over one channel, so requests are served in the order they
//! were made. Consecutive commit requests are drained into one transaction (group commit):
//! while one transaction commits, the next ones queue up and then share the following one.
//! Every caller of a group is answered after its COMMIT.
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
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Client, Config, NoTls, Statement};

use crate::sql::{self, classify, Sql};

/// The most commit requests put into one transaction.
const MAX_GROUP: usize = 4096;

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

/// A live connection with its prepared statements.
pub(crate) struct Conn {
    client: Client,
    upsert: Statement,
    delete: Statement,
}

/// The state owned by the writer task.
pub(crate) struct Writer {
    pub config: Config,
    pub durability: Durability,
    /// Server and database, without password, for logs and errors.
    pub location: String,
    pub table: String,
    pub quoted: String,
    pub sql: Sql,
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
    /// Connects, creates our table if missing and prepares the statements.
    pub(crate) async fn connect(&mut self) -> Result<(), StoreError> {
        let location = self.location.clone();
        let db = |e| classify(e, &location);
        let (mut client, connection) = self.config.connect(NoTls).await.map_err(db)?;
        let log_location = location.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(store = %log_location, error = %e, "job store connection ended");
            }
        });
        let sync = match self.durability {
            Durability::Fsync => "on",
            Durability::Normal | Durability::None => "off",
        };
        client
            .batch_execute(&format!("SET synchronous_commit = {sync}"))
            .await
            .map_err(db)?;
        self.migrate(&mut client).await?;
        let upsert = client.prepare(&self.sql.upsert).await.map_err(db)?;
        let delete = client.prepare(&self.sql.delete).await.map_err(db)?;
        self.conn = Some(Conn {
            client,
            upsert,
            delete,
        });
        self.counters.connects.fetch_add(1, Ordering::Relaxed);
        self.backoff = MIN_BACKOFF;
        self.last_error = None;
        Ok(())
    }

    /// Creates our table if missing (serialised by an advisory lock, since other servers may
    /// do the same at the same moment) and checks the columns of an existing one.
    async fn migrate(&self, client: &mut Client) -> Result<(), StoreError> {
        let db = |e| classify(e, &self.location);
        let tx = client.transaction().await.map_err(db)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('gearbox:' || $1::text))",
            &[&self.table],
        )
        .await
        .map_err(db)?;
        tx.batch_execute(&sql::CREATE_JOBS.replace("{table}", &self.quoted))
            .await
            .map_err(db)?;
        let rows = tx
            .query(sql::COLUMNS_OF, &[&self.table])
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let have: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
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
                    self.conn = None;
                    tracing::debug!(store = %self.location, "job store closed");
                    let _ = reply.send(());
                    return;
                }
            }
        }
        tracing::debug!(store = %self.location, "job store writer stopped");
    }

    /// Makes sure there is a live connection: reconnects if an attempt is due, otherwise
    /// fails at once with the last connection error.
    async fn ensure_connected(&mut self) -> Result<(), StoreError> {
        if let Some(conn) = &self.conn {
            if !conn.client.is_closed() {
                return Ok(());
            }
            self.lost(None);
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
            Ok(()) => self.write_group(group.iter().map(|(b, _)| b)).await,
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

    /// One transaction with the net effect of the batches applied in order.
    async fn write_group<'b>(
        &mut self,
        batches: impl Iterator<Item = &'b Batch>,
    ) -> Result<(), StoreError> {
        let (deletes, upserts) = net_effect(batches);
        let location = self.location.clone();
        let db = |e| classify(e, &location);
        let conn = self.conn.as_mut().ok_or(StoreError::Closed)?;
        let tx = conn.client.transaction().await.map_err(db)?;
        if !deletes.is_empty() {
            tx.execute(&conn.delete, &[&deletes]).await.map_err(db)?;
        }
        if !upserts.is_empty() {
            let cols = Columns::of(&upserts);
            tx.execute(
                &conn.upsert,
                &[
                    &cols.handle,
                    &cols.function,
                    &cols.unique,
                    &cols.priority,
                    &cols.data,
                    &cols.when,
                    &cols.schedule,
                    &cols.reducer,
                ],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn load(&mut self) -> Result<Vec<StoredJob>, StoreError> {
        self.ensure_connected().await?;
        let location = self.location.clone();
        let conn = self.conn.as_ref().ok_or(StoreError::Closed)?;
        let rows = conn
            .client
            .query(&self.sql.select, &[])
            .await
            .map_err(|e| classify(e, &location))?;
        let jobs = rows
            .iter()
            .map(|r| sql::decode_job(r, &location))
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
        let location = self.location.clone();
        let db = |e| classify(e, &location);
        let conn = self.conn.as_mut().ok_or(StoreError::Closed)?;
        let tx = conn.client.transaction().await.map_err(db)?;
        let have: Vec<(String, String)> = tx
            .query(sql::COLUMNS_OF, &[&table])
            .await
            .map_err(db)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        if have.is_empty() {
            tracing::debug!(store = %location, table, "no gearmand queue table to import");
            return Ok(0);
        }
        let type_of = |name: &str| {
            have.iter()
                .find(|(c, _)| c == name)
                .map(|(_, t)| t.as_str())
        };
        if let Some(column) = sql::GEARMAND_COLUMNS.iter().find(|c| type_of(c).is_none()) {
            return Err(StoreError::NotGearmandTable {
                table: table.into(),
                column: (*column).into(),
            });
        }
        // Every column read as bytes, whatever gearmand's version made it (VARCHAR, TEXT, BYTEA).
        let bytes = |c: &str| match type_of(c) {
            Some("bytea") => c.to_owned(),
            _ => format!("convert_to({c}::text, 'UTF8')"),
        };
        let when = if type_of("when_to_run").is_some() {
            "when_to_run::bigint"
        } else {
            "0::bigint"
        };
        // Other servers (even gearmand) may still write the table: lock out writers until
        // the rows moved are deleted.
        tx.batch_execute(&format!("LOCK TABLE {quoted} IN SHARE ROW EXCLUSIVE MODE"))
            .await
            .map_err(db)?;
        // gearmand's table has no ordering column; physical order is the insertion order of a
        // queue that is only ever appended to and emptied.
        let rows = tx
            .query(
                &format!(
                    "SELECT {}, {}, priority::bigint, {}, {when} FROM {quoted} ORDER BY ctid",
                    bytes("unique_key"),
                    bytes("function_name"),
                    bytes("data"),
                ),
                &[],
            )
            .await
            .map_err(db)?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let get = |i: usize| -> Result<Bytes, StoreError> {
                let v: Option<Vec<u8>> = row.try_get(i).map_err(db)?;
                Ok(v.map(Bytes::from).unwrap_or_default())
            };
            let number: Option<i64> = row.try_get(2).map_err(db)?;
            let priority = sql::priority_from(number).unwrap_or_else(|| {
                tracing::warn!(table, priority = ?number, "gearmand job has an unknown priority; importing it as normal");
                Priority::Normal
            });
            let when: Option<i64> = row.try_get(4).map_err(db)?;
            let job = StoredJob {
                handle: new_handle(),
                unique: get(0)?,
                function: get(1)?,
                priority,
                data: get(3)?,
                when_to_run: when.unwrap_or(0).max(0) as u64,
                schedule: None,
                reducer: None,
            };
            if let Some(e) = sql::unstorable(&job) {
                return Err(e);
            }
            jobs.push(job);
        }
        if !jobs.is_empty() {
            let refs: Vec<&StoredJob> = jobs.iter().collect();
            let cols = Columns::of(&refs);
            tx.execute(
                &self.sql.insert,
                &[
                    &cols.handle,
                    &cols.function,
                    &cols.unique,
                    &cols.priority,
                    &cols.data,
                    &cols.when,
                    &cols.schedule,
                    &cols.reducer,
                ],
            )
            .await
            .map_err(db)?;
        }
        tx.execute(&format!("DELETE FROM {quoted}"), &[])
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let count = jobs.len();
        self.counters.transactions.fetch_add(1, Ordering::Relaxed);
        self.counters
            .persisted
            .fetch_add(count as u64, Ordering::Relaxed);
        tracing::info!(store = %location, table, jobs = count, "imported the gearmand queue");
        Ok(count)
    }
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
) -> (Vec<String>, Vec<&'b StoredJob>) {
    // handle -> (position of the persist that creates its row, latest job or None if removed)
    let mut state: HashMap<&[u8], (usize, Option<&'b StoredJob>)> = HashMap::new();
    let mut deletes: Vec<String> = Vec::new();
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
            // A handle that TEXT cannot hold was never stored: nothing to delete.
            if sql::unstorable_handle(handle).is_none() && seen_delete.insert(&handle[..]) {
                deletes.push(String::from_utf8_lossy(handle).into_owned());
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

/// Jobs as eight parallel arrays, bound to the UNNEST of the upsert and insert statements.
struct Columns<'a> {
    handle: Vec<&'a str>,
    function: Vec<&'a [u8]>,
    unique: Vec<&'a [u8]>,
    priority: Vec<i32>,
    data: Vec<&'a [u8]>,
    when: Vec<i64>,
    schedule: Vec<Option<&'a str>>,
    reducer: Vec<Option<&'a [u8]>>,
}

impl<'a> Columns<'a> {
    /// The jobs must have passed [`sql::unstorable`] (UTF-8 handles).
    fn of(jobs: &[&'a StoredJob]) -> Self {
        let n = jobs.len();
        let mut c = Columns {
            handle: Vec::with_capacity(n),
            function: Vec::with_capacity(n),
            unique: Vec::with_capacity(n),
            priority: Vec::with_capacity(n),
            data: Vec::with_capacity(n),
            when: Vec::with_capacity(n),
            schedule: Vec::with_capacity(n),
            reducer: Vec::with_capacity(n),
        };
        for job in jobs {
            c.handle
                .push(std::str::from_utf8(&job.handle).unwrap_or_default());
            c.function.push(&job.function);
            c.unique.push(&job.unique);
            c.priority.push(job.priority.index() as i32);
            c.data.push(&job.data);
            c.when
                .push(i64::try_from(job.when_to_run).unwrap_or(i64::MAX));
            c.schedule.push(job.schedule.as_deref());
            c.reducer.push(job.reducer.as_deref());
        }
        c
    }
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
        assert_eq!(deletes, ["b", "x"]);
        // a: first persisted first, with its last data; c next; b re-created after its removal.
        assert_eq!(handles(&upserts), ["a", "c", "b"]);
        assert_eq!(upserts[0].data, a2.data);
    }
}

//! The SQLite store: the default durable queue, embedded and bundled.
//!
//! One writer thread owns the connection (rusqlite is blocking) and commits in groups; see
//! `writer.rs`. `schema.rs` holds the SQL, the connection settings and the error mapping.

mod schema;
mod writer;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};

use bytes::Bytes;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{Batch, BoxFuture, Durability, Store, StoreError, StoredJob};
use writer::{Counters, Reply, Request, Writer};

/// The name of our table unless another is configured (`--libsqlite3-table`).
pub const DEFAULT_TABLE: &str = "gearbox_jobs";

/// The table gearmand's libsqlite3 queue plugin uses by default.
pub const DEFAULT_GEARMAND_TABLE: &str = "gearman_queue";

/// What a store has done since it was opened, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Successful transactions (one per group commit, plus imports).
    pub transactions: u64,
    /// Batches committed (each [`Store::commit`] call that succeeded with writes in it).
    pub batches: u64,
    /// Jobs written.
    pub jobs_persisted: u64,
    /// Removals applied (including handles that were not stored).
    pub jobs_removed: u64,
    /// Transactions that failed (every batch in them got the error).
    pub failed_transactions: u64,
}

/// A [`Store`] in a SQLite database file, with group commit.
///
/// Requests go to a dedicated writer thread in the order they are made. The thread stops
/// when the store is dropped (after serving what was already queued) or closed.
#[derive(Debug)]
pub struct SqliteStore {
    /// The writer thread's inbox; std's `Sender` is `Sync`, so no lock is needed.
    requests: mpsc::Sender<Request>,
    counters: Arc<Counters>,
    location: String,
}

impl SqliteStore {
    /// Opens (or creates) the database at `path`, creates `table` in it if missing (use
    /// [`DEFAULT_TABLE`] unless configured otherwise), and starts the writer thread.
    ///
    /// Blocks while the file is opened and checked; call it before serving or from
    /// `spawn_blocking`. The path `:memory:` gives a private in-memory database.
    pub fn open(
        path: impl AsRef<Path>,
        table: &str,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let location = path.as_ref().display().to_string();
        let quoted = schema::quote_ident(table)?;
        let db = |e| schema::classify(e, &location);
        let conn = Connection::open(path.as_ref()).map_err(db)?;
        schema::configure(&conn, durability).map_err(db)?;
        schema::migrate(&conn, &location, table, &quoted)?;
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            conn,
            location: location.clone(),
            sql: schema::Sql::new(&quoted),
            counters: counters.clone(),
            failing: false,
        };
        let (requests, inbox) = mpsc::channel();
        std::thread::Builder::new()
            .name("gearbox-sqlite".into())
            .spawn(move || writer.run(inbox))
            .map_err(|e| StoreError::Backend {
                location: location.clone(),
                source: Arc::new(e),
            })?;
        tracing::info!(store = %location, table, %durability, "job store opened");
        Ok(SqliteStore {
            requests,
            counters,
            location,
        })
    }

    /// Moves every job of a gearmand queue table (`unique_key`, `function_name`, `priority`,
    /// `data` and, if present, `when_to_run`; [`DEFAULT_GEARMAND_TABLE`] by default) in the
    /// same database into ours, in one transaction that also empties gearmand's table.
    ///
    /// Each job gets a handle from `new_handle`, which must not return a handle already
    /// stored (the import then fails and changes nothing). Returns how many jobs moved; a
    /// missing table moves none.
    pub async fn import_gearmand<F>(
        &self,
        gearmand_table: &str,
        new_handle: F,
    ) -> Result<usize, StoreError>
    where
        F: FnMut() -> Bytes + Send + 'static,
    {
        let table = gearmand_table.to_owned();
        self.request(|reply| Request::Import {
            table,
            new_handle: Box::new(new_handle),
            reply,
        })
        .await
    }

    /// Caps the size of the database file at about `max_bytes` (`None`: SQLite's maximum),
    /// like a small disk would: commits that need more room fail with
    /// [`StoreError::DiskFull`]. The limit cannot go below the current size; the one in
    /// force is returned, in bytes. It lasts until the store is closed.
    pub async fn set_size_limit(&self, max_bytes: Option<u64>) -> Result<u64, StoreError> {
        self.request(|reply| Request::SizeLimit { max_bytes, reply })
            .await
    }

    /// Finishes the requests already queued, closes the database and stops the writer.
    /// Later operations fail with [`StoreError::Closed`]. Closing twice is fine.
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.requests.send(Request::Close { reply }).is_ok() {
            let _ = done.await;
        }
    }

    /// The counters since the store was opened.
    pub fn stats(&self) -> StoreStats {
        let c = &self.counters;
        StoreStats {
            transactions: c.transactions.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            jobs_persisted: c.persisted.load(Ordering::Relaxed),
            jobs_removed: c.removed.load(Ordering::Relaxed),
            failed_transactions: c.failures.load(Ordering::Relaxed),
        }
    }

    /// The database path this store was opened with.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Queues a request now and returns the future of its answer.
    fn request<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> Request,
    ) -> BoxFuture<'static, T> {
        let (reply, answer) = oneshot::channel();
        let sent = self.requests.send(make(reply));
        Box::pin(async move {
            sent.map_err(|_| StoreError::Closed)?;
            answer.await.map_err(|_| StoreError::Closed)?
        })
    }
}

impl Store for SqliteStore {
    fn name(&self) -> &str {
        "sqlite"
    }

    fn load(&self) -> BoxFuture<'_, Vec<StoredJob>> {
        self.request(|reply| Request::Load { reply })
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, ()> {
        self.request(|reply| Request::Commit { batch, reply })
    }
}

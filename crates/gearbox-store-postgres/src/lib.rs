//! A PostgreSQL [`Store`] for gearbox: `gearboxd -q libpq`.
//!
//! [`PostgresStore`] keeps background jobs in one table (default [`DEFAULT_TABLE`], created if
//! missing from the embedded migration `migrations/0001_create_jobs.sql`) and follows the
//! design of gearbox's SQLite store:
//!
//! - **Group commit.** One writer task owns the connection. Commit requests queued while a
//!   transaction runs are drained into the next one: one `DELETE ... WHERE handle = ANY($1)`
//!   and one multi-row `INSERT ... SELECT FROM UNNEST(...) ON CONFLICT (handle) DO UPDATE`
//!   carry the net effect of all of them, and every caller is answered after `COMMIT`.
//! - **Not the only writer.** Every statement is idempotent per handle (upsert, delete of
//!   possibly absent rows), the table is created under an advisory lock, and the gearmand
//!   import locks the table it empties, so other servers may share the database.
//! - **Outages.** When the server goes away, commits fail at once with
//!   [`StoreError::Unavailable`] (never a false acknowledgement) while the writer reconnects
//!   with exponential back-off, also when idle. The outage is logged once when it starts and
//!   once when it ends.
//!
//! # Durability
//!
//! `fsync` runs with `synchronous_commit = on`: a commit is acknowledged once PostgreSQL has
//! flushed its WAL. `normal` and `none` set `synchronous_commit = off`: an acknowledged job
//! survives a crash of gearboxd, but a crash of PostgreSQL or of its machine may lose the
//! last few hundred milliseconds of commits (never corrupting the database). PostgreSQL's own
//! `fsync` setting is the operator's.
//!
//! # Leases
//!
//! [`Store::claim`] and [`Store::release`] keep their single-server no-op defaults. The
//! cluster mode is meant to add two columns, `owner TEXT NULL` (the server holding the job)
//! and `lease_until BIGINT NULL` (UNIX seconds), with claim as
//! `UPDATE ... SET owner = $me, lease_until = $t WHERE handle = $h AND (owner IS NULL OR
//! owner = $me OR lease_until < $now)` (granted when one row changed) and release setting
//! `owner` back to NULL.

#![warn(missing_docs)]

mod sql;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gearbox_store::remote::Remote;
use gearbox_store::{Batch, BoxFuture, Durability, Store, StoreError, StoredJob};
use tokio_postgres::config::Host;
use tokio_postgres::Config;

use writer::Postgres;

/// The name of our table unless another is configured (`--libpq-table`).
pub const DEFAULT_TABLE: &str = "gearbox_jobs";

/// The table gearmand's libpq queue plugin uses by default.
pub const DEFAULT_GEARMAND_TABLE: &str = "queue";

/// How long one connection attempt may take unless the conninfo sets `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a store has done since it was created, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PostgresStats {
    /// Successful transactions (one per group commit, plus imports).
    pub transactions: u64,
    /// Batches committed (each [`Store::commit`] call that succeeded with writes in it).
    pub batches: u64,
    /// Jobs written.
    pub jobs_persisted: u64,
    /// Removals applied (including handles that were not stored).
    pub jobs_removed: u64,
    /// Groups of commits that failed (every batch in them got the error), including those
    /// refused while the server was unreachable.
    pub failed_transactions: u64,
    /// Successful connections: 1 after [`PostgresStore::connect`], plus one per reconnection.
    pub connects: u64,
}

/// A [`Store`] in a PostgreSQL table, with group commit and automatic reconnection.
///
/// Requests go to a writer task (spawned on the current tokio runtime) in the order they are
/// made. The task stops when the store is dropped (after serving what was already queued) or
/// closed.
#[derive(Debug)]
pub struct PostgresStore {
    remote: Remote,
    location: String,
}

impl PostgresStore {
    /// Connects to the server described by `conninfo`, creates `table` if missing (use
    /// [`DEFAULT_TABLE`] unless configured otherwise) and starts the writer task.
    ///
    /// `conninfo` is libpq-style (`host=127.0.0.1 port=5432 user=gearbox dbname=jobs`) or a
    /// URL (`postgres://gearbox@127.0.0.1:5432/jobs`). TLS is not supported: use a local or
    /// otherwise trusted network, or a Unix socket (`host=/run/postgresql`).
    ///
    /// The first connection must succeed, so that a wrong address, password or table is
    /// reported at start-up ([`StoreError::Unavailable`], [`StoreError::Backend`] or
    /// [`StoreError::SchemaMismatch`]); later losses are handled by reconnecting. Must be
    /// called within a tokio runtime.
    pub async fn connect(
        conninfo: &str,
        table: &str,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let quoted = sql::quote_ident(table)?;
        let mut config: Config = conninfo.parse().map_err(|e| StoreError::Backend {
            location: "postgres".into(),
            source: Arc::new(e),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("gearboxd");
        }
        let location = describe(&config);
        let backend = Postgres {
            config,
            durability,
            location: location.clone(),
            table: table.to_owned(),
            sql: sql::Sql::new(&quoted),
            quoted,
        };
        let remote = Remote::start(backend, location.clone()).await?;
        tracing::info!(store = %location, table, %durability, "job store connected");
        Ok(PostgresStore { remote, location })
    }

    /// Moves every job of a gearmand queue table (`unique_key`, `function_name`, `priority`,
    /// `data` and, if present, `when_to_run`; [`DEFAULT_GEARMAND_TABLE`] by default) in the
    /// same database and schema into ours, in one transaction that also empties gearmand's
    /// table (locked meanwhile against other writers).
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
        self.remote
            .import(gearmand_table.to_owned(), Box::new(new_handle))
            .await
    }

    /// Finishes the requests already queued, closes the connection and stops the writer.
    /// Later operations fail with [`StoreError::Closed`]. Closing twice is fine.
    pub async fn close(&self) {
        self.remote.close().await
    }

    /// The counters since the store was created.
    pub fn stats(&self) -> PostgresStats {
        let s = self.remote.stats();
        PostgresStats {
            transactions: s.transactions,
            batches: s.batches,
            jobs_persisted: s.jobs_persisted,
            jobs_removed: s.jobs_removed,
            failed_transactions: s.failed_transactions,
            connects: s.connects,
        }
    }

    /// The server and database, as `postgres://user@host:port/dbname` without password.
    pub fn location(&self) -> &str {
        &self.location
    }
}

impl Store for PostgresStore {
    fn name(&self) -> &str {
        "postgres"
    }

    fn load(&self) -> BoxFuture<'_, Vec<StoredJob>> {
        self.remote.load()
    }

    /// Fails at once with [`StoreError::InvalidRow`], writing nothing of the batch, when a
    /// job's handle is not UTF-8 or contains NUL, or its schedule contains NUL (PostgreSQL
    /// TEXT holds neither); every other field is stored as bytes.
    fn commit(&self, batch: Batch) -> BoxFuture<'_, ()> {
        if let Some(err) = batch.persist.iter().find_map(sql::unstorable) {
            return Box::pin(std::future::ready(Err(err)));
        }
        self.remote.commit(batch)
    }
}

/// `postgres://user@host:port/dbname`, without password, for logs and errors.
fn describe(config: &Config) -> String {
    let user = config.get_user().unwrap_or("");
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or(user);
    let at = if user.is_empty() { "" } else { "@" };
    format!("postgres://{user}{at}{host}:{port}/{db}")
}

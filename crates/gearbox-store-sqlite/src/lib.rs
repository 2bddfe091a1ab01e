//! The SQLite job store, gearbox's default queue (`gearboxd -q libsqlite3`): embedded, with
//! its own bundled copy of SQLite.
//!
//! [`SqliteStore`] keeps background jobs in one table (default
//! [`gearbox_store::sql::DEFAULT_TABLE`], created if missing from the embedded migration
//! `migrations/0001_create_jobs.sql`), in WAL mode, with `synchronous` set by the
//! [`Durability`] mode. It runs on the shared [`gearbox_store::driver`]: one task serves the
//! store's requests in order, each commit one `IMMEDIATE` transaction, the blocking SQLite
//! calls on Tokio's blocking pool. It can take over gearmand's libsqlite3 queue table
//! ([`Store::import_gearmand`](gearbox_store::Store::import_gearmand),
//! [`DEFAULT_GEARMAND_TABLE`] by default).
//!
//! # Layout
//!
//! - this file: [`SqliteStore`]: opening it, its size limit.
//! - `backend`: the [`gearbox_store::driver::Backend`]: the batch transaction, loading, the
//!   gearmand import, the size limit.
//! - `schema`: the SQL text, connection settings, row encoding and error classification.

#![warn(missing_docs)]

mod backend;
mod schema;

use std::path::Path;
use std::sync::Arc;

use gearbox_store::driver::{Backoff, Driver, DriverStore};
use gearbox_store::sql::SqlTable;
use gearbox_store::{Durability, StoreError};
use tokio::sync::oneshot;

use backend::{Control, Sqlite};

pub use gearbox_store::sql::DEFAULT_TABLE;

/// The table gearmand's libsqlite3 queue plugin uses by default.
pub const DEFAULT_GEARMAND_TABLE: &str = "gearman_queue";

/// A [`Store`](gearbox_store::Store) in a SQLite database file.
///
/// Requests go to the store's writer task in the order they are made. The task stops when the
/// store is dropped (after serving what was already queued) or closed.
#[derive(Debug)]
pub struct SqliteStore {
    driver: Driver<Sqlite>,
}

impl SqliteStore {
    /// Opens (or creates) the database at `path`, creates `table` in it if missing (use
    /// [`DEFAULT_TABLE`] unless configured otherwise), and starts the writer task on the
    /// current Tokio runtime. The path `:memory:` gives a private in-memory database.
    pub async fn open(
        path: impl AsRef<Path>,
        table: &str,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let location = path.as_ref().display().to_string();
        let at = SqlTable::new(&location, table, schema::IDENTIFIERS, durability)?;
        let backend = Sqlite {
            path: path.as_ref().to_owned(),
            sql: Arc::new(schema::statements(&at.quoted)),
            at,
        };
        let driver = Driver::start(backend, location, Backoff::default()).await?;
        Ok(SqliteStore { driver })
    }

    /// Caps the size of the database file at about `max_bytes` (`None`: SQLite's maximum),
    /// like a small disk would: commits that need more room fail with
    /// [`StoreError::DiskFull`]. The limit cannot go below the current size; the one in
    /// force is returned, in bytes. It lasts until the store is closed.
    pub async fn set_size_limit(&self, max_bytes: Option<u64>) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        if !self.driver.control(Control::SizeLimit { max_bytes, reply }) {
            return Err(StoreError::Closed);
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

impl DriverStore for SqliteStore {
    type Backend = Sqlite;

    fn driver(&self) -> &Driver<Sqlite> {
        &self.driver
    }
}

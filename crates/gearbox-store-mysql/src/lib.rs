//! A MySQL/MariaDB [`Store`] for gearbox: `gearboxd -q mysql`.
//!
//! [`MysqlStore`] keeps background jobs in one InnoDB table (default [`DEFAULT_TABLE`],
//! created if missing from the embedded migration `migrations/0001_create_jobs.sql`) and
//! follows the design of gearbox's PostgreSQL store:
//!
//! - **Group commit.** One writer task owns the connection. Commit requests queued while a
//!   transaction runs are drained into the next one: one `DELETE ... WHERE handle IN (...)`
//!   and one multi-row `INSERT ... ON DUPLICATE KEY UPDATE` carry the net effect of all of
//!   them (split into chunks only past 2,000 rows or 4 MiB), and every caller is answered
//!   after `COMMIT`.
//! - **Binary-safe.** Handle, function, unique id, payload and reducer are binary columns
//!   (`VARBINARY`/`BLOB`), written as bound parameters: NUL bytes and non-UTF-8 survive.
//!   Handles and unique ids are limited to 255 bytes and function names to 512; a batch with
//!   a longer one fails at once with [`StoreError::InvalidRow`], writing nothing.
//! - **Outages.** When the server goes away, commits fail with [`StoreError::Unavailable`]
//!   (never a false acknowledgement) while the writer reconnects with exponential back-off
//!   (100 ms doubling to 2 s), also when idle. The outage is logged once when it starts and
//!   once when it ends.
//!
//! # Durability
//!
//! MySQL decides flushing globally (`innodb_flush_log_at_trx_commit`), not per session, so
//! the [`Durability`] mode cannot change it: with `fsync` the store checks at each connection
//! that the server flushes at every commit (the default, `1`) and logs a warning otherwise.
//! `normal` and `none` accept whatever the server does.
//!
//! # Leases
//!
//! [`Store::claim`] and [`Store::release`] keep their single-server no-op defaults.

#![warn(missing_docs)]

mod sql;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gearbox_store::remote::Remote;
use gearbox_store::{Batch, BoxFuture, Durability, Store, StoreError, StoredJob};
use mysql_async::{Opts, OptsBuilder};

use writer::Mysql;

/// The name of our table unless another is configured (`--mysql-table`).
pub const DEFAULT_TABLE: &str = "gearbox_jobs";

/// The table gearmand's MySQL queue plugin uses by default.
pub const DEFAULT_GEARMAND_TABLE: &str = "gearman_queue";

/// The port used when none is given.
pub const DEFAULT_PORT: u16 = 3306;

/// How long one connection attempt may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the server is, as gearmand's `--mysql-host/-port/-user/-password/-db` give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlOptions {
    /// Host name or IP address (`--mysql-host`, default `localhost`).
    pub host: String,
    /// TCP port (`--mysql-port`, default 3306).
    pub port: u16,
    /// User name (`--mysql-user`).
    pub user: Option<String>,
    /// Password (`--mysql-password`); never logged.
    pub password: Option<String>,
    /// Database (`--mysql-db`).
    pub db: Option<String>,
}

impl Default for MysqlOptions {
    fn default() -> Self {
        MysqlOptions {
            host: "localhost".into(),
            port: DEFAULT_PORT,
            user: None,
            password: None,
            db: None,
        }
    }
}

impl MysqlOptions {
    /// Parses `mysql://user:password@host:port/db` (percent-encoded where needed).
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let opts = Opts::from_url(url).map_err(|e| StoreError::Backend {
            location: "mysql".into(),
            source: Arc::new(e),
        })?;
        Ok(MysqlOptions {
            host: opts.ip_or_hostname().to_owned(),
            port: opts.tcp_port(),
            user: opts.user().map(str::to_owned),
            password: opts.pass().map(str::to_owned),
            db: opts.db_name().map(str::to_owned),
        })
    }

    /// `mysql://user@host:port/db`, without password, for logs and errors.
    pub fn location(&self) -> String {
        let user = self.user.as_deref().unwrap_or("");
        let at = if user.is_empty() { "" } else { "@" };
        let db = self.db.as_deref().unwrap_or("");
        format!("mysql://{user}{at}{}:{}/{db}", self.host, self.port)
    }

    fn driver_opts(&self) -> Opts {
        OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(self.user.clone())
            .pass(self.password.clone())
            .db_name(self.db.clone())
            // Stay on the address given: no switch to the server's Unix socket.
            .prefer_socket(false)
            .into()
    }
}

impl std::str::FromStr for MysqlOptions {
    type Err = StoreError;

    fn from_str(url: &str) -> Result<Self, StoreError> {
        MysqlOptions::from_url(url)
    }
}

/// What [`MysqlStore::connect`] accepts: a `mysql://` URL (`&str` or `String`) or
/// [`MysqlOptions`].
pub trait IntoMysqlOptions {
    /// The options, or the error of a URL that cannot be parsed.
    fn into_mysql_options(self) -> Result<MysqlOptions, StoreError>;
}

impl IntoMysqlOptions for MysqlOptions {
    fn into_mysql_options(self) -> Result<MysqlOptions, StoreError> {
        Ok(self)
    }
}

impl IntoMysqlOptions for &MysqlOptions {
    fn into_mysql_options(self) -> Result<MysqlOptions, StoreError> {
        Ok(self.clone())
    }
}

impl IntoMysqlOptions for &str {
    fn into_mysql_options(self) -> Result<MysqlOptions, StoreError> {
        MysqlOptions::from_url(self)
    }
}

impl IntoMysqlOptions for &String {
    fn into_mysql_options(self) -> Result<MysqlOptions, StoreError> {
        MysqlOptions::from_url(self)
    }
}

impl IntoMysqlOptions for String {
    fn into_mysql_options(self) -> Result<MysqlOptions, StoreError> {
        MysqlOptions::from_url(&self)
    }
}

/// What a store has done since it was created, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MysqlStats {
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
    /// Successful connections: 1 after [`MysqlStore::connect`], plus one per reconnection.
    pub connects: u64,
}

/// A [`Store`] in a MySQL/MariaDB table, with group commit and automatic reconnection.
///
/// Requests go to a writer task (spawned on the current tokio runtime) in the order they are
/// made. The task stops when the store is dropped (after serving what was already queued) or
/// closed.
#[derive(Debug)]
pub struct MysqlStore {
    remote: Remote,
    location: String,
}

impl MysqlStore {
    /// Connects to the server (a `mysql://` URL or [`MysqlOptions`]), creates `table` if
    /// missing (use [`DEFAULT_TABLE`] unless configured otherwise) and starts the writer task.
    ///
    /// TLS is not supported: use a local or otherwise trusted network. The first connection
    /// must succeed, so that a wrong address, password or table is reported at start-up
    /// ([`StoreError::Unavailable`], [`StoreError::Backend`] or
    /// [`StoreError::SchemaMismatch`]); later losses are handled by reconnecting. Must be
    /// called within a tokio runtime.
    pub async fn connect(
        opts: impl IntoMysqlOptions,
        table: &str,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let quoted = sql::quote_ident(table)?;
        let opts = opts.into_mysql_options()?;
        let location = opts.location();
        let backend = Mysql {
            opts: opts.driver_opts(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            durability,
            location: location.clone(),
            table: table.to_owned(),
            quoted,
        };
        let remote = Remote::start(backend, location.clone()).await?;
        tracing::info!(store = %location, table, %durability, "job store connected");
        Ok(MysqlStore { remote, location })
    }

    /// Moves every job of a gearmand queue table (`unique_key`, `function_name`, `priority`,
    /// `data` and, if present, `when_to_run`; [`DEFAULT_GEARMAND_TABLE`] by default) in the
    /// same database into ours, in one transaction that also empties gearmand's table (its
    /// rows locked meanwhile against other writers).
    ///
    /// Each job gets a handle from `new_handle`, which must not return a handle already
    /// stored (the import then fails and changes nothing). Returns how many jobs moved; a
    /// missing table moves none. gearmand's table has no ordering column, so the jobs'
    /// order among themselves is the server's scan order.
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
    pub fn stats(&self) -> MysqlStats {
        let s = self.remote.stats();
        MysqlStats {
            transactions: s.transactions,
            batches: s.batches,
            jobs_persisted: s.jobs_persisted,
            jobs_removed: s.jobs_removed,
            failed_transactions: s.failed_transactions,
            connects: s.connects,
        }
    }

    /// The server and database, as `mysql://user@host:port/db` without password.
    pub fn location(&self) -> &str {
        &self.location
    }
}

impl Store for MysqlStore {
    fn name(&self) -> &str {
        "mysql"
    }

    fn load(&self) -> BoxFuture<'_, Vec<StoredJob>> {
        self.remote.load()
    }

    /// Fails at once with [`StoreError::InvalidRow`], writing nothing of the batch, when a
    /// job's handle or unique id is longer than 255 bytes or its function name longer than
    /// 512; every field is otherwise stored as bytes.
    fn commit(&self, batch: Batch) -> BoxFuture<'_, ()> {
        if let Some(err) = batch.persist.iter().find_map(sql::unstorable) {
            return Box::pin(std::future::ready(Err(err)));
        }
        self.remote.commit(batch)
    }
}

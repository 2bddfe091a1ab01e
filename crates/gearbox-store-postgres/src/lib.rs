//! A PostgreSQL [`Store`](gearbox_store::Store) for gearbox: `gearboxd -q libpq`.
//!
//! [`PostgresStore`] keeps background jobs in one table (default [`DEFAULT_TABLE`], created if
//! missing from the embedded migration `migrations/0001_create_jobs.sql`) and follows the
//! design of gearbox's SQLite store:
//!
//! - **One transaction per batch.** The store runs on the shared [`gearbox_store::driver`]:
//!   one task owns the connection and serves requests in order. A batch is written as one
//!   `DELETE ... WHERE handle = ANY($1)` and one multi-row
//!   `INSERT ... SELECT FROM UNNEST(...) ON CONFLICT (handle) DO UPDATE` carrying its
//!   [`gearbox_store::NetEffect`], and the caller is answered after `COMMIT`.
//! - **Not the only writer.** Every statement is idempotent per handle (upsert, delete of
//!   possibly absent rows), the table is created under an advisory lock, and the gearmand
//!   import locks the table it empties, so other servers may share the database.
//! - **Outages.** When the server goes away, commits fail at once with
//!   [`StoreError::Unavailable`] (never a false acknowledgement) while the driver reconnects
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
//! # Cluster mode
//!
//! [`PostgresClusterStore`] is the same store shared by several gearboxd servers
//! ([`gearbox_store::cluster::ClusterStore`]). At connect it adds to the table (under the
//! same advisory lock, once, from `migrations/0002_cluster.sql`) an `owner` column (the
//! member holding the job, NULL while it is free), a partial index on the free jobs in claim
//! order, an index on the owner, a partial unique index on `(function, unique_key)` (the
//! cross-server coalescing; a table already holding duplicates is refused with an error
//! saying so) and the members table `<table>_members` (id, address, heartbeat, joined). It
//! then `LISTEN`s on `<table>_wake` and joins: refuses to start when a member with its id
//! has a live heartbeat, otherwise frees the jobs a previous life of the server left.
//!
//! - **Claim** is one `UPDATE ... SET owner = $me WHERE seq IN (...)` over a
//!   `LATERAL (... ORDER BY priority, seq LIMIT n FOR UPDATE SKIP LOCKED)` per function
//!   wanted, plus the timed jobs: two members never take the same row, and neither waits
//!   for the other.
//! - **Commit** upserts jobs without a unique id as the member's own; jobs with one are
//!   inserted `ON CONFLICT DO NOTHING`, and those left out are looked up: another job's
//!   handle is reported as coalesced, the job's own row (a batch applied again) is updated.
//! - **Heartbeat** upserts the member's row by the database's clock (with its published load
//!   in the `status` column, encoded as `cluster_status` documents), deletes the members
//!   silent for longer than the dead-after bound and frees every job whose owner is no
//!   member; **release**, **leave** and any freeing `NOTIFY` the channel, and the
//!   connection's task turns the other members' notifications into [`wake`] calls.
//!
//! Cluster requests run on the same writer task and connection as commits, in order; one
//! made while the database is unreachable fails with [`StoreError::Unavailable`].
//!
//! [`wake`]: gearbox_store::cluster::ClusterStore::wake
//!
//! # Layout
//!
//! - this file: [`PostgresStore`] and connecting (the conninfo and TLS parsing both stores
//!   share); its [`Store`](gearbox_store::Store) implementation is the driver's
//!   ([`gearbox_store::driver::DriverStore`]).
//! - `backend`: the [`gearbox_store::driver::Backend`]: the batch transaction, loading, the
//!   gearmand import; in cluster mode it also drives the notifications and serves the
//!   cluster requests.
//! - `cluster`: [`PostgresClusterStore`], its [`Store`](gearbox_store::Store) and
//!   [`ClusterStore`](gearbox_store::cluster::ClusterStore) implementations.
//! - `cluster_backend`: the cluster side of the backend: the cluster requests
//!   (`Control`), the migration's additions, LISTEN and joining.
//! - `cluster_ops`: the cluster requests' transactions (commit, claim, release, heartbeat,
//!   view, leave).
//! - `cluster_sql`: the cluster mode's derived names (kept within 63 bytes) and SQL text.
//! - `sql`: the SQL text, row decoding and error classification.
//! - `tls`: libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey` keys ([`PgTls`]) and
//!   the rustls connector they make.
//!
//! # TLS
//!
//! The conninfo (or the URL's query string) takes libpq's keys: `sslmode=disable`, `prefer`
//! (the default, as with libpq: TLS if the server offers it), `require`, `verify-ca` or
//! `verify-full`; `sslrootcert=FILE` (the CA, needed by the two `verify-` modes; with
//! `prefer` or `require` it makes them check the chain, as libpq does); `sslcert=FILE` and
//! `sslkey=FILE` for a server that requires a client certificate. TLS is rustls with the ring
//! provider, TLS 1.2 and 1.3.

#![warn(missing_docs)]

mod backend;
mod cluster;
mod cluster_backend;
mod cluster_ops;
mod cluster_sql;
mod cluster_status;
mod sql;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use gearbox_store::driver::{Backoff, Driver, DriverStore};
use gearbox_store::sql::SqlTable;
use gearbox_store::{Durability, StoreError};
use tokio_postgres::config::Host;
use tokio_postgres::Config;

use backend::Postgres;

pub use cluster::PostgresClusterStore;
pub use gearbox_store::sql::DEFAULT_TABLE;
pub use tls::{split_conninfo, PgTls, SslMode};

/// The table gearmand's libpq queue plugin uses by default.
pub const DEFAULT_GEARMAND_TABLE: &str = "queue";

/// How long one connection attempt may take unless the conninfo sets `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Store`](gearbox_store::Store) in a PostgreSQL table, one transaction per batch, with
/// automatic reconnection.
///
/// Requests go to a writer task (spawned on the current tokio runtime) in the order they are
/// made. The task stops when the store is dropped (after serving what was already queued) or
/// closed.
#[derive(Debug)]
pub struct PostgresStore {
    driver: Driver<Postgres>,
}

impl PostgresStore {
    /// Connects to the server described by `conninfo`, creates `table` if missing (use
    /// [`DEFAULT_TABLE`] unless configured otherwise) and starts the writer task.
    ///
    /// `conninfo` is libpq-style (`host=127.0.0.1 port=5432 user=gearbox dbname=jobs`) or a
    /// URL (`postgres://gearbox@127.0.0.1:5432/jobs`), with libpq's TLS keys (see the
    /// [crate documentation](crate#tls)).
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
        Self::connect_with_password(conninfo, None, table, durability).await
    }

    /// [`PostgresStore::connect`], with the password to use when `conninfo` has none (read
    /// from a file or the environment by the caller, so that it is never on a command line).
    pub async fn connect_with_password(
        conninfo: &str,
        password: Option<&str>,
        table: &str,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let (backend, location) = backend(conninfo, password, table, durability, None)?;
        let driver = Driver::start(backend, location, Backoff::default()).await?;
        Ok(PostgresStore { driver })
    }
}

/// The backend for `table` at `conninfo` (parsed as [`PostgresStore::connect`] says), in
/// cluster mode when `cluster` is given, and the store's location for logs.
pub(crate) fn backend(
    conninfo: &str,
    password: Option<&str>,
    table: &str,
    durability: Durability,
    cluster: Option<backend::ClusterState>,
) -> Result<(Postgres, String), StoreError> {
    let bad = |e: String| StoreError::Backend {
        location: "postgres".into(),
        source: Arc::new(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)),
    };
    let (conninfo, tls) = split_conninfo(conninfo).map_err(bad)?;
    let mut config: Config = conninfo.parse().map_err(|e| StoreError::Backend {
        location: "postgres".into(),
        source: Arc::new(e),
    })?;
    if let (None, Some(p)) = (config.get_password(), password) {
        config.password(p);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("gearboxd");
    }
    let location = describe(&config, tls.mode);
    let connector = tls.connector(&mut config, &location)?;
    let at = SqlTable::new(&location, table, sql::IDENTIFIERS, durability)?;
    let backend = Postgres {
        config,
        connector,
        sql: sql::statements(&at.quoted),
        at,
        cluster,
    };
    Ok((backend, location))
}

impl DriverStore for PostgresStore {
    type Backend = Postgres;

    fn driver(&self) -> &Driver<Postgres> {
        &self.driver
    }
}

/// `postgres://user@host:port/dbname?sslmode=...`, without password, for logs and errors.
fn describe(config: &Config, mode: SslMode) -> String {
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
    format!(
        "postgres://{user}{at}{host}:{port}/{db}?sslmode={}",
        mode.as_str()
    )
}

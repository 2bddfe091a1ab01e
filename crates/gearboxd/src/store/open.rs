//! Opening the store (or connecting to it), reading its jobs, importing gearmand's queue table.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gearbox_store::cluster::ClusterMember;
#[cfg(feature = "redis")]
use gearbox_store::Durability;
use gearbox_store::{
    Batch, BoxFuture, HandleMaker, MemoryStore, Store, StoreError, StoreStats, StoredJob,
};
#[cfg(feature = "memcached")]
use gearbox_store_memcached::{MemcachedOptions, MemcachedStore};
#[cfg(feature = "mysql")]
use gearbox_store_mysql::MysqlStore;
#[cfg(feature = "postgres")]
use gearbox_store_postgres::{PostgresClusterStore, PostgresStore};
#[cfg(feature = "redis")]
use gearbox_store_redis::RedisStore;
#[cfg(feature = "sqlite")]
use gearbox_store_sqlite::SqliteStore;

#[cfg(feature = "sqlite")]
use super::lock::StoreLock;
#[cfg(feature = "mysql")]
use super::MysqlSettings;
#[cfg(feature = "redis")]
use super::RedisSettings;
#[cfg(feature = "sqlite")]
use super::SqliteSettings;
use super::StoreSettings;
#[cfg(feature = "sqlite")]
use crate::error::CliError;

/// Held while gearboxd runs, released when it exits (only the SQLite store has one).
#[cfg(feature = "sqlite")]
type Lock = Option<StoreLock>;
#[cfg(not(feature = "sqlite"))]
type Lock = Option<std::convert::Infallible>;

/// An opened store, ready for [`gearbox_server::run_with_store`].
pub struct OpenedStore {
    /// What the server gets (for the builtin queue, a memory store that is not durable).
    pub store: Arc<dyn Store>,
    /// Jobs moved from gearmand's table at this start-up.
    pub imported: usize,
    /// Released when gearboxd exits, after the store is closed.
    _lock: Lock,
}

impl std::fmt::Debug for OpenedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedStore")
            .field("store", &self.store.name())
            .field("imported", &self.imported)
            .finish()
    }
}

impl OpenedStore {
    /// Finishes the store's pending writes and closes it (a clean SQLite shutdown, a closed
    /// database connection).
    pub async fn close(&self) {
        self.store.close().await
    }
}

/// Opens the store `settings` names: creates the data directory, opens (or creates) the
/// database, or connects to the server, reads its jobs and imports gearmand's queue table if
/// there is one. New handles for imported jobs start with `handle_prefix`.
///
/// Errors name the directory, file or server at fault; a server that cannot be reached is an
/// error (gearboxd does not start without its store).
///
/// With `cluster` (only for PostgreSQL: the settings check that), the store is the shared
/// queue of a cluster and this server joins it as that member.
pub async fn open(
    settings: &StoreSettings,
    handle_prefix: &str,
    cluster: Option<ClusterMember>,
) -> anyhow::Result<OpenedStore> {
    // Only the PostgreSQL store takes it (the settings refuse --cluster with any other).
    #[cfg(not(feature = "postgres"))]
    let _ = cluster;
    let (store, lock): (Arc<dyn Store>, Lock) = match settings {
        StoreSettings::Builtin => (Arc::new(MemoryStore::new()), None),
        #[cfg(feature = "sqlite")]
        StoreSettings::Sqlite(s) => open_sqlite(s).await?,
        #[cfg(feature = "postgres")]
        StoreSettings::Postgres(s) if cluster.is_some() => {
            let shown = super::parse::redact_conninfo(&s.conninfo);
            let member = cluster.expect("checked by the guard");
            let store = PostgresClusterStore::connect_with_password(
                &s.conninfo,
                s.password.as_deref(),
                gearbox_store::sql::DEFAULT_TABLE,
                s.durability,
                member,
            )
            .await
            .map_err(|e| unreachable_store(e, "PostgreSQL", &shown))?;
            (Arc::new(store), None)
        }
        #[cfg(feature = "postgres")]
        StoreSettings::Postgres(s) => {
            let shown = super::parse::redact_conninfo(&s.conninfo);
            let store = PostgresStore::connect_with_password(
                &s.conninfo,
                s.password.as_deref(),
                gearbox_store::sql::DEFAULT_TABLE,
                s.durability,
            )
            .await
            .map_err(|e| unreachable_store(e, "PostgreSQL", &shown))?;
            (Arc::new(store), None)
        }
        #[cfg(feature = "mysql")]
        StoreSettings::Mysql(s) => {
            let options = mysql_options(s);
            let store =
                MysqlStore::connect(&options, gearbox_store::sql::DEFAULT_TABLE, s.durability)
                    .await
                    .map_err(|e| unreachable_store(e, "MySQL/MariaDB", &s.location()))?;
            (Arc::new(store), None)
        }
        #[cfg(feature = "redis")]
        StoreSettings::Redis(s) => {
            let options = redis_options(s);
            let shown = options.location();
            let store = RedisStore::connect(options)
                .await
                .map_err(|e| unreachable_store(e, "Redis", &shown))?;
            warn_about_redis(&store);
            (Arc::new(store), None)
        }
        #[cfg(feature = "memcached")]
        StoreSettings::Memcached(s) => {
            let options = MemcachedOptions::new(&s.servers)
                .map_err(anyhow::Error::new)?
                .prefix(s.prefix.clone())
                .handle_prefix(handle_prefix);
            let shown = options.location();
            let store = MemcachedStore::connect(options)
                .await
                .map_err(|e| unreachable_store(e, "memcached", &shown))?;
            tracing::warn!(
                store = %shown,
                "memcached keeps jobs in memory only: a restart of memcached loses them, and \
                 it evicts them silently when full unless started with -M; use the SQLite store \
                 (the default) for jobs that must survive"
            );
            (Arc::new(store), None)
        }
        // Settings resolve to a store this build lacks only if made by hand.
        #[cfg(not(all(
            feature = "sqlite",
            feature = "postgres",
            feature = "mysql",
            feature = "redis",
            feature = "memcached"
        )))]
        other => {
            let kind = other.kind();
            kind.built_in()?;
            anyhow::bail!("the {} store has no driver in this build", kind.what())
        }
    };
    let shown = store.location().to_owned();
    let jobs = if store.is_durable() {
        load(&*store, &shown).await?
    } else {
        Vec::new()
    };
    let imported = match settings.import_table() {
        Some((table, given)) => {
            let first = next_number(&jobs, handle_prefix);
            let result = store
                .import_gearmand(table, Box::new(handles(handle_prefix, first)))
                .await;
            imported(result, table, given, &shown)?
        }
        None => 0,
    };
    Ok(OpenedStore {
        store: preloaded(store, jobs, imported),
        imported,
        _lock: lock,
    })
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(s: &SqliteSettings) -> anyhow::Result<(Arc<dyn Store>, Option<StoreLock>)> {
    if let Some(dir) = &s.data_dir {
        std::fs::create_dir_all(dir).map_err(|source| CliError::DataDir {
            path: dir.clone(),
            source,
        })?;
    }
    let lock = StoreLock::acquire(&s.path)?;
    let store = SqliteStore::open(&s.path, gearbox_store::sql::DEFAULT_TABLE, s.durability)
        .await
        .map_err(|e| about(e, &s.path.display().to_string()))?;
    Ok((Arc::new(store), lock))
}

/// The MySQL driver's options.
#[cfg(feature = "mysql")]
fn mysql_options(s: &MysqlSettings) -> gearbox_store_mysql::MysqlOptions {
    gearbox_store_mysql::MysqlOptions {
        host: s.host.clone(),
        port: s.port,
        user: s.user.clone(),
        password: s.password.as_deref().map(str::to_owned),
        db: Some(s.db.clone()),
        ssl_mode: s.ssl_mode,
        ssl: s.ssl.clone(),
    }
}

/// The Redis driver's options.
#[cfg(feature = "redis")]
fn redis_options(s: &RedisSettings) -> gearbox_store_redis::RedisOptions {
    let mut o =
        gearbox_store_redis::RedisOptions::new(s.host.clone(), s.port).prefix(s.prefix.clone());
    o.password = s.password.as_deref().map(str::to_owned);
    o.username.clone_from(&s.username);
    o.db = s.db;
    o.tls.clone_from(&s.tls);
    o
}

/// Says when Redis's own persistence settings fall short of fsync durability.
#[cfg(feature = "redis")]
fn warn_about_redis(store: &RedisStore) {
    let shown = store.location();
    match store.persistence() {
        Some(p) if p.durability() != Durability::Fsync => tracing::warn!(
            store = %shown,
            appendonly = p.appendonly,
            appendfsync = %p.appendfsync,
            "acknowledged jobs survive a crash of gearboxd, but a crash of Redis (or of its \
             machine) may lose them: set `appendonly yes` and `appendfsync always` on the \
             Redis server for fsync durability"
        ),
        Some(_) => {}
        None => tracing::warn!(
            store = %shown,
            "cannot read the Redis server's persistence settings (CONFIG GET refused); \
             durability depends on its appendonly and appendfsync settings"
        ),
    }
}

/// A connection failure at start-up, with the reason gearboxd stops.
#[cfg(any(
    feature = "postgres",
    feature = "mysql",
    feature = "redis",
    feature = "memcached"
))]
fn unreachable_store(e: StoreError, what: &str, shown: &str) -> anyhow::Error {
    let e = about(e, shown);
    e.context(format!(
        "cannot open the {what} job store (gearboxd does not start without its store)"
    ))
}

/// Reads the stored jobs, logging how many and how long it took.
async fn load(store: &dyn Store, shown: &str) -> anyhow::Result<Vec<StoredJob>> {
    let started = std::time::Instant::now();
    let jobs = store.load().await.map_err(|e| about(e, shown))?;
    tracing::info!(
        store = %shown,
        jobs = jobs.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "read the stored jobs"
    );
    Ok(jobs)
}

/// The server's store: `inner`, with `jobs` kept for its first `load` unless an import
/// added jobs (then it reads them all again).
fn preloaded(inner: Arc<dyn Store>, jobs: Vec<StoredJob>, imported: usize) -> Arc<dyn Store> {
    Arc::new(Preloaded {
        inner,
        jobs: Mutex::new((imported == 0).then_some(jobs)),
    })
}

/// New handles `<prefix>:<first>`, `<prefix>:<first+1>`... for imported jobs.
fn handles(prefix: &str, first: u64) -> impl FnMut() -> Bytes + Send + 'static {
    let prefix = prefix.to_owned();
    let mut n = first;
    move || {
        let handle = gearbox_proto::format_handle(prefix.as_bytes(), n);
        n += 1;
        handle
    }
}

/// The outcome of moving gearmand's queue table into ours.
fn imported(
    result: Result<usize, StoreError>,
    table: &str,
    table_given: bool,
    shown: &str,
) -> anyhow::Result<usize> {
    match result {
        Ok(count) => Ok(count),
        Err(e @ StoreError::NotGearmandTable { .. }) if !table_given => {
            // Only gearmand's default name was tried; the user's table happens to have it.
            tracing::warn!(store = %shown, error = %e, "not importing it");
            Ok(0)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot import gearmand's queue table `{table}` from {shown}"
        ))),
    }
}

/// The number after the highest `<prefix>:<n>` handle among `jobs` (1 if none).
pub(super) fn next_number(jobs: &[StoredJob], prefix: &str) -> u64 {
    jobs.iter()
        .filter_map(|j| gearbox_proto::parse_handle(&j.handle, prefix.as_bytes()))
        .max()
        .map_or(1, |n| n.saturating_add(1))
}

/// A store error that names `shown` (the store's own messages usually do already).
fn about(e: StoreError, shown: &str) -> anyhow::Error {
    if e.to_string().contains(shown) {
        anyhow::Error::new(e)
    } else {
        anyhow::Error::new(e).context(format!("job store {shown}"))
    }
}

/// The store with the jobs read at start-up kept for the server's first `load`, so the
/// database is read once.
struct Preloaded {
    inner: Arc<dyn Store>,
    jobs: Mutex<Option<Vec<StoredJob>>>,
}

impl Store for Preloaded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn location(&self) -> &str {
        self.inner.location()
    }

    fn is_durable(&self) -> bool {
        self.inner.is_durable()
    }

    fn load(&self) -> BoxFuture<'_, Vec<StoredJob>> {
        let preloaded = self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        match preloaded {
            Some(jobs) => Box::pin(std::future::ready(Ok(jobs))),
            None => self.inner.load(),
        }
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, ()> {
        self.inner.commit(batch)
    }

    fn import_gearmand(&self, table: &str, new_handle: HandleMaker) -> BoxFuture<'_, usize> {
        self.inner.import_gearmand(table, new_handle)
    }

    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.inner.close()
    }

    fn stats(&self) -> StoreStats {
        self.inner.stats()
    }

    fn as_cluster(self: Arc<Self>) -> Option<Arc<dyn gearbox_store::cluster::ClusterStore>> {
        self.inner.clone().as_cluster()
    }
}

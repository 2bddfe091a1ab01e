//! Opening the store (or connecting to it), reading its jobs, importing gearmand's queue table.

use std::sync::{Arc, Mutex};

use anyhow::Context;
use bytes::Bytes;
use gearbox_store::{
    Batch, BoxFuture, Durability, SqliteStore, Store, StoreError, StoredJob, DEFAULT_TABLE,
};
use gearbox_store_mysql::MysqlStore;
use gearbox_store_postgres::PostgresStore;
use gearbox_store_redis::RedisStore;

use super::lock::StoreLock;
use super::{MysqlSettings, PostgresSettings, RedisSettings, SqliteSettings, StoreSettings};
use crate::error::CliError;

/// An opened store, ready for [`gearbox_server::run_with_store`].
pub struct OpenedStore {
    /// What the server gets: `None` for the builtin queue.
    pub store: Option<Arc<dyn Store>>,
    /// Jobs moved from gearmand's table at this start-up.
    pub imported: usize,
    closer: Closer,
    /// Released when gearboxd exits, after the store is closed.
    _lock: Option<StoreLock>,
}

/// What [`OpenedStore::close`] has to finish.
enum Closer {
    Nothing,
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>),
    Mysql(Arc<MysqlStore>),
}

impl std::fmt::Debug for OpenedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedStore")
            .field("store", &self.store.as_ref().map(|s| s.name().to_owned()))
            .field("imported", &self.imported)
            .finish()
    }
}

impl OpenedStore {
    /// Finishes the store's pending writes and closes it (a clean SQLite shutdown, a closed
    /// PostgreSQL or MySQL connection; the Redis writer stops once the server drops the store).
    pub async fn close(&self) {
        match &self.closer {
            Closer::Nothing => {}
            Closer::Sqlite(s) => s.close().await,
            Closer::Postgres(s) => s.close().await,
            Closer::Mysql(s) => s.close().await,
        }
    }

    fn builtin() -> OpenedStore {
        OpenedStore {
            store: None,
            imported: 0,
            closer: Closer::Nothing,
            _lock: None,
        }
    }
}

/// Opens the store `settings` names: creates the data directory, opens (or creates) the
/// database, or connects to the server, reads its jobs and imports gearmand's queue table if
/// there is one. New handles for imported jobs start with `handle_prefix`.
///
/// Errors name the directory, file or server at fault; a server that cannot be reached is an
/// error (gearboxd does not start without its store).
pub async fn open(settings: &StoreSettings, handle_prefix: &str) -> anyhow::Result<OpenedStore> {
    match settings {
        StoreSettings::Builtin => Ok(OpenedStore::builtin()),
        StoreSettings::Sqlite(s) => open_sqlite(s, handle_prefix).await,
        StoreSettings::Postgres(s) => open_postgres(s, handle_prefix).await,
        StoreSettings::Redis(s) => open_redis(s).await,
        StoreSettings::Mysql(s) => open_mysql(s, handle_prefix).await,
    }
}

async fn open_sqlite(s: &SqliteSettings, handle_prefix: &str) -> anyhow::Result<OpenedStore> {
    if let Some(dir) = &s.data_dir {
        std::fs::create_dir_all(dir).map_err(|source| CliError::DataDir {
            path: dir.clone(),
            source,
        })?;
    }
    let lock = StoreLock::acquire(&s.path)?;
    let path = s.path.clone();
    let durability = s.durability;
    let sqlite =
        tokio::task::spawn_blocking(move || SqliteStore::open(&path, DEFAULT_TABLE, durability))
            .await
            .context("the task opening the job store failed")?
            .map_err(|e| about(e, &s.path.display().to_string()))?;
    let sqlite = Arc::new(sqlite);
    let shown = s.path.display().to_string();
    let jobs = load(&*sqlite, &shown).await?;
    let first = next_number(&jobs, handle_prefix);
    let result = sqlite
        .import_gearmand(&s.gearmand_table, handles(handle_prefix, first))
        .await;
    let imported = imported(result, &s.gearmand_table, s.gearmand_table_given, &shown)?;
    Ok(OpenedStore {
        store: Some(preloaded(sqlite.clone(), jobs, imported)),
        imported,
        closer: Closer::Sqlite(sqlite),
        _lock: lock,
    })
}

async fn open_postgres(s: &PostgresSettings, handle_prefix: &str) -> anyhow::Result<OpenedStore> {
    let shown = super::parse::redact_conninfo(&s.conninfo);
    let pg = PostgresStore::connect(
        &s.conninfo,
        gearbox_store_postgres::DEFAULT_TABLE,
        s.durability,
    )
    .await
    .map_err(|e| unreachable_store(e, "PostgreSQL", &shown))?;
    let pg = Arc::new(pg);
    let shown = pg.location().to_owned();
    let jobs = load(&*pg, &shown).await?;
    let first = next_number(&jobs, handle_prefix);
    let result = pg
        .import_gearmand(&s.gearmand_table, handles(handle_prefix, first))
        .await;
    let imported = imported(result, &s.gearmand_table, s.gearmand_table_given, &shown)?;
    Ok(OpenedStore {
        store: Some(preloaded(pg.clone(), jobs, imported)),
        imported,
        closer: Closer::Postgres(pg),
        _lock: None,
    })
}

async fn open_mysql(s: &MysqlSettings, handle_prefix: &str) -> anyhow::Result<OpenedStore> {
    let shown = s.options.location();
    let mysql = MysqlStore::connect(&s.options, gearbox_store_mysql::DEFAULT_TABLE, s.durability)
        .await
        .map_err(|e| unreachable_store(e, "MySQL/MariaDB", &shown))?;
    let mysql = Arc::new(mysql);
    let shown = mysql.location().to_owned();
    let jobs = load(&*mysql, &shown).await?;
    let first = next_number(&jobs, handle_prefix);
    let result = mysql
        .import_gearmand(&s.gearmand_table, handles(handle_prefix, first))
        .await;
    let imported = imported(result, &s.gearmand_table, s.gearmand_table_given, &shown)?;
    Ok(OpenedStore {
        store: Some(preloaded(mysql.clone(), jobs, imported)),
        imported,
        closer: Closer::Mysql(mysql),
        _lock: None,
    })
}

async fn open_redis(s: &RedisSettings) -> anyhow::Result<OpenedStore> {
    let options = s.options();
    let shown = options.location();
    let redis = RedisStore::connect(options)
        .await
        .map_err(|e| unreachable_store(e, "Redis", &shown))?;
    match redis.persistence() {
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
    let redis = Arc::new(redis);
    let jobs = load(&*redis, &shown).await?;
    Ok(OpenedStore {
        store: Some(preloaded(redis, jobs, 0)),
        imported: 0,
        closer: Closer::Nothing,
        _lock: None,
    })
}

/// A connection failure at start-up, with the reason gearboxd stops.
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
        let handle = Bytes::from(format!("{prefix}:{n}"));
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
        .filter_map(|j| {
            let n = j
                .handle
                .strip_prefix(prefix.as_bytes())?
                .strip_prefix(b":")?;
            std::str::from_utf8(n).ok()?.parse::<u64>().ok()
        })
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

    fn claim(&self, handle: Bytes) -> BoxFuture<'_, bool> {
        self.inner.claim(handle)
    }

    fn release(&self, handle: Bytes) -> BoxFuture<'_, ()> {
        self.inner.release(handle)
    }
}

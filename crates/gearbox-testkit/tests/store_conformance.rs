//! The store conformance suite ([`gearbox_testkit::conformance`]) against every store: the
//! memory store, SQLite in a temporary directory, and throwaway PostgreSQL, MariaDB and Redis
//! servers (skipped with a printed reason where their binaries are missing, except under CI).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gearbox_store::{Durability, MemoryStore, Store, StoreError, StoredJob};
use gearbox_store_memcached::{MemcachedOptions, MemcachedStore};
use gearbox_store_mysql::MysqlStore;
use gearbox_store_postgres::PostgresStore;
use gearbox_store_redis::{RedisOptions, RedisStore};
use gearbox_store_sqlite::SqliteStore;
use gearbox_testkit::conformance::{GearmandRow, Harness};
use gearbox_testkit::conformance_tests;
use gearbox_testkit::servers::free_port;
use gearbox_testkit::servers::mariadb::MariaDb;
use gearbox_testkit::servers::postgres::PgServer;
use gearbox_testkit::servers::proxy::Proxy;
use gearbox_testkit::servers::redis::RedisServer;
use mysql_async::prelude::Queryable;

/// The memory store that retains jobs: one per namespace, reopened on each `open`.
#[derive(Default)]
struct Memory(Mutex<HashMap<String, MemoryStore>>);

impl Harness for Memory {
    async fn try_open(&self, namespace: &str) -> Result<Arc<dyn Store>, StoreError> {
        let mut stores = self.0.lock().unwrap();
        let root = stores
            .entry(namespace.to_owned())
            .or_insert_with(MemoryStore::retaining);
        Ok(Arc::new(root.reopen()))
    }
}

conformance_tests!(memory, |_| Some(Memory::default()));

/// SQLite: every namespace a table of one database file; an outage is a full disk.
struct Sqlite {
    dir: tempfile::TempDir,
    last: Mutex<Option<Arc<SqliteStore>>>,
}

impl Sqlite {
    fn start(_: &str) -> Option<Sqlite> {
        Some(Sqlite {
            dir: tempfile::tempdir().expect("temporary directory"),
            last: Mutex::new(None),
        })
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("jobs.db")
    }

    fn sql(&self, sql: &str) -> i64 {
        let conn = rusqlite::Connection::open(self.path()).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        let mut rows = stmt.query([]).unwrap();
        match rows.next().unwrap() {
            Some(row) => row.get(0).unwrap(),
            None => 0,
        }
    }

    fn last(&self) -> Arc<SqliteStore> {
        self.last
            .lock()
            .unwrap()
            .clone()
            .expect("a store was opened")
    }
}

impl Harness for Sqlite {
    async fn try_open(&self, namespace: &str) -> Result<Arc<dyn Store>, StoreError> {
        let store = SqliteStore::open(self.path(), namespace, Durability::Fsync).await?;
        let store = Arc::new(store);
        *self.last.lock().unwrap() = Some(store.clone());
        Ok(store)
    }

    async fn break_store(&mut self, _: &Arc<dyn Store>) -> bool {
        self.last()
            .set_size_limit(Some(0))
            .await
            .expect("cap the size");
        true
    }

    async fn mend_store(&mut self, _: &Arc<dyn Store>) {
        self.last()
            .set_size_limit(None)
            .await
            .expect("lift the cap");
    }

    fn is_outage_error(&self, error: &StoreError) -> bool {
        matches!(error, StoreError::DiskFull { .. })
    }

    async fn seed_gearmand(&self, table: &str, rows: &[GearmandRow]) -> bool {
        let conn = rusqlite::Connection::open(self.path()).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        // As gearmand's libsqlite3 plugin creates it.
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (unique_key TEXT, function_name TEXT, \
             priority INTEGER, data BLOB, when_to_run INTEGER, PRIMARY KEY (unique_key, \
             function_name))"
        ))
        .unwrap();
        for (u, f, p, d, w) in rows {
            conn.execute(
                &format!("INSERT INTO {table} VALUES (?1, ?2, ?3, ?4, ?5)"),
                rusqlite::params![u, f, p, d, w],
            )
            .unwrap();
        }
        true
    }

    async fn count_rows(&self, table: &str) -> i64 {
        self.sql(&format!("SELECT COUNT(*) FROM {table}"))
    }

    async fn seed_foreign_table(&self, table: &str) -> bool {
        self.sql(&format!(
            "CREATE TABLE {table} (unique_key TEXT, other TEXT)"
        ));
        true
    }
}

conformance_tests!(sqlite, Sqlite::start);

/// PostgreSQL: every namespace a table of one database.
struct Postgres(PgServer);

impl Harness for Postgres {
    async fn try_open(&self, namespace: &str) -> Result<Arc<dyn Store>, StoreError> {
        let conninfo = self.0.conninfo();
        let store = PostgresStore::connect(&conninfo, namespace, Durability::Fsync).await?;
        Ok(Arc::new(store))
    }

    async fn open_unreachable(&self) -> Option<Result<Arc<dyn Store>, StoreError>> {
        let closed = format!(
            "host=127.0.0.1 port={} user=x connect_timeout=2",
            free_port()
        );
        let store = PostgresStore::connect(&closed, "gearbox_jobs", Durability::Fsync).await;
        Some(store.map(|s| Arc::new(s) as Arc<dyn Store>))
    }

    /// PostgreSQL TEXT holds neither invalid UTF-8 nor NUL.
    fn unstorable_jobs(&self) -> Vec<StoredJob> {
        let mut schedule = StoredJob::new("H:s:1", "f", "");
        schedule.schedule = Some("*\0".into());
        vec![
            StoredJob::new(Bytes::from_static(b"H:\xff"), "f", "\0data\0"),
            StoredJob::new(Bytes::from_static(b"H:\x00"), "f", ""),
            schedule,
        ]
    }

    async fn break_store(&mut self, _: &Arc<dyn Store>) -> bool {
        self.0.stop();
        true
    }

    async fn mend_store(&mut self, _: &Arc<dyn Store>) {
        self.0.start_again();
    }

    async fn restart(&mut self) -> bool {
        self.0.stop();
        self.0.start_again();
        true
    }

    async fn seed_gearmand(&self, table: &str, rows: &[GearmandRow]) -> bool {
        let client = self.0.client().await;
        // As gearmand's libpq plugin creates it.
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (unique_key VARCHAR(64), \
                 function_name VARCHAR(255), priority INTEGER, data BYTEA, \
                 when_to_run BIGINT, UNIQUE (unique_key, function_name))"
            ))
            .await
            .unwrap();
        for (u, f, p, d, w) in rows {
            let p = *p as i32;
            client
                .execute(
                    &format!("INSERT INTO {table} VALUES ($1, $2, $3, $4, $5)"),
                    &[u, f, &p, d, w],
                )
                .await
                .unwrap();
        }
        true
    }

    async fn count_rows(&self, table: &str) -> i64 {
        let client = self.0.client().await;
        let row = client
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .await
            .unwrap();
        row.get(0)
    }

    async fn seed_foreign_table(&self, table: &str) -> bool {
        let client = self.0.client().await;
        client
            .batch_execute(&format!(
                "CREATE TABLE {table} (unique_key TEXT, other TEXT)"
            ))
            .await
            .unwrap();
        true
    }
}

conformance_tests!(postgres, |test| PgServer::start(test).map(Postgres));

/// MySQL/MariaDB: every namespace a table of one database.
struct Mysql(MariaDb);

impl Harness for Mysql {
    async fn try_open(&self, namespace: &str) -> Result<Arc<dyn Store>, StoreError> {
        let url = self.0.url();
        let store = MysqlStore::connect(&url, namespace, Durability::Fsync).await?;
        Ok(Arc::new(store))
    }

    async fn open_unreachable(&self) -> Option<Result<Arc<dyn Store>, StoreError>> {
        let closed = format!("mysql://x@127.0.0.1:{}/gearbox", free_port());
        let store = MysqlStore::connect(&closed, "gearbox_jobs", Durability::Fsync).await;
        Some(store.map(|s| Arc::new(s) as Arc<dyn Store>))
    }

    /// Handles and unique ids are limited to 255 bytes, function names to 512.
    fn unstorable_jobs(&self) -> Vec<StoredJob> {
        let mut unique = StoredJob::new("H:u:1", "f", "");
        unique.unique = Bytes::from(vec![0u8; 256]);
        vec![
            StoredJob::new(Bytes::from(vec![b'h'; 256]), "f", ""),
            StoredJob::new("H:f:1", vec![b'f'; 513], ""),
            unique,
        ]
    }

    async fn break_store(&mut self, _: &Arc<dyn Store>) -> bool {
        self.0.kill();
        true
    }

    async fn mend_store(&mut self, _: &Arc<dyn Store>) {
        self.0.start_again();
    }

    async fn restart(&mut self) -> bool {
        self.0.kill();
        self.0.start_again();
        true
    }

    async fn seed_gearmand(&self, table: &str, rows: &[GearmandRow]) -> bool {
        let mut conn = self.0.conn().await;
        // As gearmand's MySQL plugin creates it.
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {table} (unique_key VARCHAR(64), \
             function_name VARCHAR(255), priority INT, data LONGBLOB, when_to_run INT, \
             unique key (unique_key, function_name))"
        ))
        .await
        .unwrap();
        for (u, f, p, d, w) in rows {
            conn.exec_drop(
                format!("INSERT INTO {table} VALUES (?, ?, ?, ?, ?)"),
                (u, f, p, d, w),
            )
            .await
            .unwrap();
        }
        true
    }

    async fn count_rows(&self, table: &str) -> i64 {
        let mut conn = self.0.conn().await;
        conn.query_first(format!("SELECT COUNT(*) FROM {table}"))
            .await
            .unwrap()
            .unwrap()
    }

    async fn seed_foreign_table(&self, table: &str) -> bool {
        let mut conn = self.0.conn().await;
        conn.query_drop(format!(
            "CREATE TABLE {table} (unique_key TEXT, other TEXT)"
        ))
        .await
        .unwrap();
        true
    }
}

conformance_tests!(mysql, |test| MariaDb::start(test).map(Mysql));

/// Redis: every namespace a key prefix.
struct Redis(RedisServer);

impl Harness for Redis {
    async fn try_open(&self, namespace: &str) -> Result<Arc<dyn Store>, StoreError> {
        let options = RedisOptions::new("127.0.0.1", self.0.port())
            .prefix(format!("{namespace}:"))
            .max_backoff(Duration::from_millis(100));
        Ok(Arc::new(RedisStore::connect(options).await?))
    }

    async fn open_unreachable(&self) -> Option<Result<Arc<dyn Store>, StoreError>> {
        let store = RedisStore::connect(RedisOptions::new("127.0.0.1", free_port())).await;
        Some(store.map(|s| Arc::new(s) as Arc<dyn Store>))
    }

    async fn break_store(&mut self, _: &Arc<dyn Store>) -> bool {
        self.0.kill();
        true
    }

    async fn mend_store(&mut self, _: &Arc<dyn Store>) {
        self.0.restart();
    }

    async fn restart(&mut self) -> bool {
        self.0.restart();
        true
    }
}

conformance_tests!(redis, |test| RedisServer::start(test).map(Redis));

/// memcached: every namespace a key prefix, reached through a proxy. Restarting memcached
/// loses every item, so there is no restart case; an outage is the proxy cutting the network.
struct Memcached {
    /// Kept running until the test ends.
    _server: gearbox_testkit::servers::memcached::Memcached,
    proxy: Proxy,
}

impl Memcached {
    fn options(servers: &str) -> MemcachedOptions {
        MemcachedOptions::new(servers)
            .expect("server list")
            .max_backoff(Duration::from_millis(100))
            .response_timeout(Duration::from_millis(500))
    }
}

impl Harness for Memcached {
    async fn try_open(&self, namespace: &str) -> Result<Arc<dyn Store>, StoreError> {
        let address = format!("127.0.0.1:{}", self.proxy.port());
        let options = Memcached::options(&address).prefix(format!("{namespace}:"));
        Ok(Arc::new(MemcachedStore::connect(options).await?))
    }

    async fn open_unreachable(&self) -> Option<Result<Arc<dyn Store>, StoreError>> {
        let closed = format!("127.0.0.1:{}", free_port());
        let store = MemcachedStore::connect(Memcached::options(&closed)).await;
        Some(store.map(|s| Arc::new(s) as Arc<dyn Store>))
    }

    /// Data past memcached's 1 MiB item limit.
    fn unstorable_jobs(&self) -> Vec<StoredJob> {
        vec![StoredJob::new("H:big:1", "f", vec![0u8; 1024 * 1024])]
    }

    async fn break_store(&mut self, _: &Arc<dyn Store>) -> bool {
        self.proxy.cut();
        true
    }

    async fn mend_store(&mut self, _: &Arc<dyn Store>) {
        self.proxy.restore();
    }
}

conformance_tests!(memcached, |test| {
    gearbox_testkit::servers::memcached::Memcached::start(test).map(|server| {
        let proxy = Proxy::start(server.port());
        Memcached {
            _server: server,
            proxy,
        }
    })
});

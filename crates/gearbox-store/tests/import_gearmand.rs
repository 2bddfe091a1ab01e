//! Picking up the queue of gearmand's libsqlite3 plugin.

use std::path::Path;

use bytes::Bytes;
use gearbox_proto::Priority;
use gearbox_store::{
    Batch, Durability, SqliteStore, Store, StoreError, StoredJob, DEFAULT_GEARMAND_TABLE,
    DEFAULT_TABLE,
};
use rusqlite::{params, Connection};

/// Creates gearmand's table the way its libsqlite3 plugin does and queues four jobs.
fn gearmand_queue(path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE gearman_queue (unique_key TEXT, function_name TEXT, priority INTEGER, \
         data BLOB, when_to_run INTEGER, PRIMARY KEY (unique_key, function_name))",
    )
    .unwrap();
    let rows: [(&str, &str, i64, &[u8], i64); 4] = [
        ("u-1", "resize", 0, b"\x00img\xff", 0),
        ("", "resize", 1, b"no unique", 0),
        ("", "email", 2, b"low", 1_700_000_000),
        ("u-2", "email", 1, b"", 0),
    ];
    for (unique, function, priority, data, when) in rows {
        conn.execute(
            "INSERT INTO gearman_queue VALUES (?1, ?2, ?3, ?4, ?5)",
            params![unique, function, priority, data, when],
        )
        .unwrap();
    }
}

fn counter(prefix: &'static str) -> impl FnMut() -> Bytes + Send + 'static {
    let mut n = 0;
    move || {
        n += 1;
        Bytes::from(format!("H:{prefix}:{n}"))
    }
}

fn expected(
    handle: &str,
    function: &str,
    unique: &str,
    p: Priority,
    data: &[u8],
    when: u64,
) -> StoredJob {
    StoredJob {
        handle: Bytes::from(handle.to_owned()),
        function: Bytes::from(function.to_owned()),
        unique: Bytes::from(unique.to_owned()),
        priority: p,
        data: Bytes::copy_from_slice(data),
        when_to_run: when,
        schedule: None,
        reducer: None,
    }
}

fn gearmand_rows(path: &Path) -> i64 {
    let conn = Connection::open(path).unwrap();
    conn.query_row("SELECT count(*) FROM gearman_queue", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn imports_the_gearmand_queue_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gearmand.sqlite3");
    gearmand_queue(&path);
    let store = SqliteStore::open(&path, DEFAULT_TABLE, Durability::Fsync).unwrap();
    store
        .commit(Batch::persist(StoredJob::new("H:old:1", "f", "x")))
        .await
        .unwrap();

    let moved = store
        .import_gearmand(DEFAULT_GEARMAND_TABLE, counter("imp"))
        .await
        .unwrap();
    assert_eq!(moved, 4);
    assert_eq!(gearmand_rows(&path), 0);
    let jobs = store.load().await.unwrap();
    assert_eq!(
        jobs,
        [
            StoredJob::new("H:old:1", "f", "x"),
            expected(
                "H:imp:1",
                "resize",
                "u-1",
                Priority::High,
                b"\x00img\xff",
                0
            ),
            expected("H:imp:2", "resize", "", Priority::Normal, b"no unique", 0),
            expected("H:imp:3", "email", "", Priority::Low, b"low", 1_700_000_000),
            expected("H:imp:4", "email", "u-2", Priority::Normal, b"", 0),
        ]
    );

    // A second import finds nothing; the jobs are ours now and survive a restart.
    assert_eq!(
        store
            .import_gearmand(DEFAULT_GEARMAND_TABLE, counter("again"))
            .await
            .unwrap(),
        0
    );
    store.close().await;
    let again = SqliteStore::open(&path, DEFAULT_TABLE, Durability::Fsync).unwrap();
    assert_eq!(again.load().await.unwrap(), jobs);
}

#[tokio::test]
async fn a_failed_import_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gearmand.sqlite3");
    gearmand_queue(&path);
    let store = SqliteStore::open(&path, DEFAULT_TABLE, Durability::Fsync).unwrap();
    store
        .commit(Batch::persist(StoredJob::new("H:imp:3", "f", "x")))
        .await
        .unwrap();
    // The third new handle collides with a stored job.
    let err = store
        .import_gearmand(DEFAULT_GEARMAND_TABLE, counter("imp"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend { .. }), "{err}");
    assert_eq!(gearmand_rows(&path), 4);
    assert_eq!(
        store.load().await.unwrap(),
        [StoredJob::new("H:imp:3", "f", "x")]
    );
    // The store still works, and an import with fresh handles succeeds.
    assert_eq!(
        store
            .import_gearmand(DEFAULT_GEARMAND_TABLE, counter("new"))
            .await
            .unwrap(),
        4
    );
}

#[tokio::test]
async fn missing_or_foreign_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE other (unique_key TEXT, data BLOB)")
            .unwrap();
        // Old gearmand versions had no when_to_run column.
        conn.execute_batch(
            "CREATE TABLE old_queue (unique_key TEXT, function_name TEXT, priority INTEGER, data BLOB); \
             INSERT INTO old_queue VALUES ('k', 'f', 2, 'payload');",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path, DEFAULT_TABLE, Durability::Fsync).unwrap();
    assert_eq!(
        store
            .import_gearmand("gearman_queue", counter("x"))
            .await
            .unwrap(),
        0
    );
    let err = store
        .import_gearmand("other", counter("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotGearmandTable { .. }), "{err}");
    let err = store
        .import_gearmand("bad name", counter("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidTableName { .. }), "{err}");
    assert_eq!(
        store
            .import_gearmand("old_queue", counter("old"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.load().await.unwrap(),
        [expected("H:old:1", "f", "k", Priority::Low, b"payload", 0)]
    );
}

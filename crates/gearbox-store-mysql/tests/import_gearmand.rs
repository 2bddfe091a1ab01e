//! Picking up the queue of gearmand's MySQL plugin (table `gearman_queue`).

mod common;

use bytes::Bytes;
use common::MariaDb;
use gearbox_proto::Priority;
use gearbox_store::{Batch, Durability, Store, StoreError, StoredJob};
use gearbox_store_mysql::{MysqlStore, DEFAULT_GEARMAND_TABLE, DEFAULT_TABLE};
use mysql_async::prelude::Queryable;

fn counter(prefix: &'static str) -> impl FnMut() -> Bytes + Send + 'static {
    let mut n = 0;
    move || {
        n += 1;
        Bytes::from(format!("H:{prefix}:{n}"))
    }
}

/// The fields of an imported job other than its handle.
fn fields(job: &StoredJob) -> (Bytes, Bytes, Priority, Bytes, u64, bool) {
    (
        job.function.clone(),
        job.unique.clone(),
        job.priority,
        job.data.clone(),
        job.when_to_run,
        job.schedule.is_none() && job.reducer.is_none(),
    )
}

async fn count(conn: &mut mysql_async::Conn, table: &str) -> i64 {
    conn.query_first(format!("SELECT COUNT(*) FROM {table}"))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_the_gearmand_queue_once() {
    let Some(db) = MariaDb::start("imports_the_gearmand_queue_once") else {
        return;
    };
    let mut conn = db.conn().await;
    // The table as gearmand's MySQL plugin creates it.
    conn.query_drop(
        "CREATE TABLE gearman_queue (unique_key VARCHAR(64), function_name VARCHAR(255), \
         priority INT, data LONGBLOB, when_to_run INT, unique key (unique_key, function_name))",
    )
    .await
    .unwrap();
    let rows: Vec<(&str, &str, i32, &[u8], i32)> = vec![
        ("u-1", "resize", 0, b"\x00img\xff", 0),
        ("", "resize", 1, b"no unique", 0),
        ("", "email", 2, b"low", 1_700_000_000),
        ("u-2", "email", 1, b"", 0),
    ];
    for row in &rows {
        conn.exec_drop("INSERT INTO gearman_queue VALUES (?, ?, ?, ?, ?)", *row)
            .await
            .unwrap();
    }

    let store = MysqlStore::connect(&db.url(), DEFAULT_TABLE, Durability::Fsync)
        .await
        .unwrap();
    store
        .commit(Batch::persist(StoredJob::new("H:old:1", "f", "x")))
        .await
        .unwrap();
    let moved = store
        .import_gearmand(DEFAULT_GEARMAND_TABLE, counter("imp"))
        .await
        .unwrap();
    assert_eq!(moved, 4);
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded[0], StoredJob::new("H:old:1", "f", "x"));
    let mut handles: Vec<_> = loaded[1..].iter().map(|j| j.handle.clone()).collect();
    handles.sort();
    assert_eq!(handles, ["H:imp:1", "H:imp:2", "H:imp:3", "H:imp:4"]);
    // gearmand's table has no order: compare the fields as sets.
    let mut got: Vec<_> = loaded[1..].iter().map(fields).collect();
    let mut want: Vec<_> = rows
        .iter()
        .map(|(u, f, p, d, w)| {
            (
                Bytes::from(f.to_string()),
                Bytes::from(u.to_string()),
                Priority::ALL[*p as usize],
                Bytes::copy_from_slice(d),
                *w as u64,
                true,
            )
        })
        .collect();
    got.sort_by(|a, b| a.3.cmp(&b.3));
    want.sort_by(|a, b| a.3.cmp(&b.3));
    assert_eq!(got, want);
    assert_eq!(
        count(&mut conn, "gearman_queue").await,
        0,
        "gearmand's table is emptied"
    );

    // A second import finds nothing; a missing table moves nothing.
    assert_eq!(
        store
            .import_gearmand("gearman_queue", counter("again"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .import_gearmand("no_such_table", counter("x"))
            .await
            .unwrap(),
        0
    );

    // A handle clash fails the whole import and changes nothing.
    conn.query_drop("INSERT INTO gearman_queue VALUES ('u', 'f', 1, 'abc', 0)")
        .await
        .unwrap();
    let err = store
        .import_gearmand("gearman_queue", counter("imp"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend { .. }), "{err}");
    assert_eq!(count(&mut conn, "gearman_queue").await, 1);
    assert_eq!(store.load().await.unwrap().len(), 5);
    // The store still works after the failed import.
    store
        .commit(Batch::persist(StoredJob::new("H:new:1", "f", "")))
        .await
        .unwrap();
    assert_eq!(store.load().await.unwrap().len(), 6);

    // A table without gearmand's columns is refused.
    conn.query_drop("CREATE TABLE not_a_queue (unique_key TEXT, payload BLOB)")
        .await
        .unwrap();
    let err = store
        .import_gearmand("not_a_queue", counter("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotGearmandTable { .. }), "{err}");
}

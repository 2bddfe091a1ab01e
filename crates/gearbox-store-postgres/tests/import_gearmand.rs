//! Picking up the queue of gearmand's libpq plugin (table `queue`).

mod common;

use bytes::Bytes;
use common::PgServer;
use gearbox_proto::Priority;
use gearbox_store::{Batch, Durability, Store, StoreError, StoredJob};
use gearbox_store_postgres::{PostgresStore, DEFAULT_GEARMAND_TABLE, DEFAULT_TABLE};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_the_gearmand_queue_once() {
    let Some(pg) = PgServer::start("imports_the_gearmand_queue_once") else {
        return;
    };
    let client = pg.client().await;
    // The table as gearmand's libpq plugin creates it.
    client
        .batch_execute(
            "CREATE TABLE queue (unique_key VARCHAR(64), function_name VARCHAR(255), \
             priority INTEGER, data BYTEA, when_to_run INTEGER, \
             unique (unique_key, function_name))",
        )
        .await
        .unwrap();
    let rows: [(&str, &str, i32, &[u8], i32); 4] = [
        ("u-1", "resize", 0, b"\x00img\xff", 0),
        ("", "resize", 1, b"no unique", 0),
        ("", "email", 2, b"low", 1_700_000_000),
        ("u-2", "email", 1, b"", 0),
    ];
    for (unique, function, priority, data, when) in rows {
        client
            .execute(
                "INSERT INTO queue VALUES ($1, $2, $3, $4, $5)",
                &[&unique, &function, &priority, &data, &when],
            )
            .await
            .unwrap();
    }

    let store = PostgresStore::connect(&pg.conninfo(), DEFAULT_TABLE, Durability::Fsync)
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
    assert_eq!(
        loaded,
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
    let left: i64 = client
        .query_one("SELECT count(*) FROM queue", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "gearmand's table is emptied");

    // A second import finds nothing; a missing table moves nothing.
    assert_eq!(
        store
            .import_gearmand("queue", counter("again"))
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
    client
        .batch_execute("INSERT INTO queue VALUES ('u', 'f', 1, 'abc', 0)")
        .await
        .unwrap();
    let err = store
        .import_gearmand("queue", counter("imp"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend { .. }), "{err}");
    let left: i64 = client
        .query_one("SELECT count(*) FROM queue", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 1);
    assert_eq!(store.load().await.unwrap().len(), 5);
    // The store still works after the failed import.
    store
        .commit(Batch::persist(StoredJob::new("H:new:1", "f", "")))
        .await
        .unwrap();

    // A table without gearmand's columns is refused.
    client
        .batch_execute("CREATE TABLE not_a_queue (unique_key TEXT, payload BYTEA)")
        .await
        .unwrap();
    let err = store
        .import_gearmand("not_a_queue", counter("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotGearmandTable { .. }), "{err}");
}

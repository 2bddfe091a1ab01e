//! Every field survives a round trip; order, rewrites, removals and reopening.

mod common;

use bytes::Bytes;
use common::{handles, job, MariaDb};
use gearbox_proto::Priority;
use gearbox_store::{Batch, Durability, Store, StoreError, StoredJob};
use gearbox_store_mysql::{MysqlOptions, MysqlStore, DEFAULT_TABLE};
use mysql_async::prelude::Queryable;

fn full_job() -> StoredJob {
    StoredJob {
        handle: Bytes::from_static(b"H:host:1"),
        function: Bytes::from_static(b"fn\x00with\xffbytes"),
        unique: Bytes::from_static(b"\x00\x01\xfe\xffbinary unique"),
        priority: Priority::Low,
        data: Bytes::from_static(b"\x00payload\x00\x00with NULs\xff"),
        when_to_run: 1_900_000_000,
        schedule: Some("*/5 * * * 1".into()),
        reducer: Some(Bytes::from_static(b"reduce\x00r")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_round_trips_and_order_is_kept() {
    let Some(db) = MariaDb::start("every_field_round_trips_and_order_is_kept") else {
        return;
    };
    let store = MysqlStore::connect(&db.url(), DEFAULT_TABLE, Durability::Fsync)
        .await
        .unwrap();
    assert_eq!(store.name(), "mysql");
    assert!(store.is_durable());
    assert!(
        store.location().contains("127.0.0.1"),
        "{}",
        store.location()
    );
    assert!(store.load().await.unwrap().is_empty());

    let full = full_job();
    let mut empty = StoredJob::new("H:host:2", "", "");
    empty.priority = Priority::High;
    store.commit(Batch::persist(full.clone())).await.unwrap();
    store.commit(Batch::persist(empty.clone())).await.unwrap();
    store
        .commit(Batch {
            persist: vec![job(3), job(4), job(5)],
            complete: vec![],
        })
        .await
        .unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded[0], full);
    assert_eq!(loaded[1], empty);
    assert_eq!(loaded[2..], [job(3), job(4), job(5)]);

    // A rewrite keeps the job's place and replaces its fields.
    let mut rewritten = full.clone();
    rewritten.data = Bytes::from_static(b"new");
    rewritten.schedule = None;
    rewritten.reducer = None;
    store
        .commit(Batch::persist(rewritten.clone()))
        .await
        .unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded[0], rewritten);
    assert_eq!(loaded.len(), 5);

    // Removal is idempotent; a handle persisted and removed in one batch ends up removed.
    store.commit(Batch::complete("H:test:4")).await.unwrap();
    store.commit(Batch::complete("H:test:4")).await.unwrap();
    store.commit(Batch::complete("H:never")).await.unwrap();
    store
        .commit(Batch {
            persist: vec![job(9)],
            complete: vec![Bytes::from_static(b"H:test:9")],
        })
        .await
        .unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(
        handles(&loaded),
        ["H:host:1", "H:host:2", "H:test:3", "H:test:5"]
    );

    // Commits apply in call order even when awaited in another.
    let persist = store.commit(Batch::persist(job(7)));
    let remove = store.commit(Batch::complete("H:test:7"));
    let again = store.commit(Batch::persist(job(8)));
    remove.await.unwrap();
    again.await.unwrap();
    persist.await.unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(
        handles(&loaded),
        ["H:host:1", "H:host:2", "H:test:3", "H:test:5", "H:test:8"]
    );
    let stats = store.stats();
    assert_eq!(stats.connects, 1);
    assert_eq!(stats.failed_transactions, 0);

    // A new store object on the same table sees the same jobs; another table is separate.
    store.close().await;
    assert!(matches!(
        store.commit(Batch::persist(job(10))).await,
        Err(StoreError::Closed)
    ));
    // This time from gearmand-style fields rather than a URL.
    let fields = MysqlOptions {
        host: "127.0.0.1".into(),
        port: db.port,
        user: Some("root".into()),
        password: None,
        db: Some(common::DB.into()),
    };
    let reopened = MysqlStore::connect(&fields, DEFAULT_TABLE, Durability::Normal)
        .await
        .unwrap();
    assert_eq!(reopened.load().await.unwrap(), loaded);
    let other = MysqlStore::connect(&db.url(), "other_jobs", Durability::Fsync)
        .await
        .unwrap();
    assert!(other.load().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_clearly() {
    let Some(db) = MariaDb::start("bad_input_is_refused_clearly") else {
        return;
    };
    let err = MysqlStore::connect(&db.url(), "x;drop", Durability::Fsync)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidTableName { .. }), "{err}");

    // A table of ours' name with another layout.
    let mut conn = db.conn().await;
    conn.query_drop("CREATE TABLE foreign_jobs (handle TEXT)")
        .await
        .unwrap();
    let err = MysqlStore::connect(&db.url(), "foreign_jobs", Durability::Fsync)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::SchemaMismatch { .. }), "{err}");

    // Nothing listening: a clear "unreachable" error at start-up.
    let closed = format!("mysql://x@127.0.0.1:{}/gearbox", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let err = MysqlStore::connect(&closed, DEFAULT_TABLE, Durability::Fsync)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("unreachable"), "{err}");

    // Handles too long for the key column fail that batch only, at once.
    let store = MysqlStore::connect(&db.url(), DEFAULT_TABLE, Durability::Fsync)
        .await
        .unwrap();
    let bad = StoredJob::new(Bytes::from(vec![b'h'; 256]), "f", "");
    let err = store
        .commit(Batch {
            persist: vec![job(1), bad],
            complete: vec![],
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidRow { .. }), "{err}");
    store
        .commit(Batch::complete(Bytes::from(vec![b'h'; 256])))
        .await
        .unwrap();
    assert!(store.load().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_handles_and_large_batches_round_trip() {
    let Some(db) = MariaDb::start("binary_handles_and_large_batches_round_trip") else {
        return;
    };
    let store = MysqlStore::connect(db.url().as_str(), DEFAULT_TABLE, Durability::Fsync)
        .await
        .unwrap();
    // Handles are bytes too: NULs and non-UTF-8 are kept, and distinct from their lossy text.
    let nul = StoredJob::new(Bytes::from_static(b"H:\x00\xff:1"), "f", "a");
    let lossy = StoredJob::new(Bytes::from_static(b"H:\x00\xef\xbf\xbd:1"), "f", "b");
    store
        .commit(Batch {
            persist: vec![nul.clone(), lossy.clone()],
            complete: vec![],
        })
        .await
        .unwrap();
    assert_eq!(store.load().await.unwrap(), [nul.clone(), lossy.clone()]);
    store
        .commit(Batch::complete(nul.handle.clone()))
        .await
        .unwrap();
    assert_eq!(store.load().await.unwrap(), std::slice::from_ref(&lossy));

    // One batch larger than one INSERT may carry (rows and bytes) is still one transaction.
    let big: Vec<StoredJob> = (0..5000)
        .map(|n| {
            let mut j = job(n);
            j.data = Bytes::from(vec![(n % 251) as u8; 2048]);
            j
        })
        .collect();
    let before = store.stats().transactions;
    store
        .commit(Batch {
            persist: big.clone(),
            complete: vec![lossy.handle.clone()],
        })
        .await
        .unwrap();
    assert_eq!(store.stats().transactions, before + 1);
    assert_eq!(store.load().await.unwrap(), big);
}

//! A full disk fails the commit with a clear error, and the store recovers without a restart.

use bytes::Bytes;
use gearbox_store::sql::DEFAULT_TABLE;
use gearbox_store::{Batch, Durability, Store, StoreError, StoredJob};
use gearbox_store_sqlite::SqliteStore;

fn job(n: usize) -> StoredJob {
    StoredJob::new(format!("H:test:{n}"), "f", format!("data-{n}"))
}

fn big_job(n: usize) -> StoredJob {
    StoredJob::new(format!("H:big:{n}"), "f", vec![n as u8; 16 * 1024])
}

#[tokio::test]
async fn disk_full_fails_the_batch_and_the_store_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("jobs.db"), DEFAULT_TABLE, Durability::Fsync)
        .await
        .unwrap();
    store.commit(Batch::persist(job(0))).await.unwrap();
    // About 64 KiB: room for a few big jobs, then SQLITE_FULL.
    let limit = store.set_size_limit(Some(64 * 1024)).await.unwrap();
    assert!(limit <= 64 * 1024, "limit {limit}");

    let mut stored = Vec::new();
    let err = loop {
        let n = stored.len();
        assert!(n < 100, "the size limit was never reached");
        match store.commit(Batch::persist(big_job(n))).await {
            Ok(()) => stored.push(big_job(n)),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, StoreError::DiskFull { .. }), "{err}");
    assert!(err.to_string().contains("free disk space"), "{err}");
    assert!(!stored.is_empty());
    // Several callers of a failing store all get the error; nothing of theirs is written.
    let (a, b) = tokio::join!(
        store.commit(Batch::persist(big_job(500))),
        store.commit(Batch::persist(big_job(501)))
    );
    assert!(matches!(a, Err(StoreError::DiskFull { .. })));
    assert!(matches!(b, Err(StoreError::DiskFull { .. })));
    assert_eq!(store.load().await.unwrap().len(), stored.len() + 1);
    assert!(store.stats().failed_transactions >= 2);

    // Room is made by finishing jobs: their pages are reused.
    let done: Vec<Bytes> = stored.drain(..2).map(|j| j.handle).collect();
    store
        .commit(Batch {
            persist: vec![],
            complete: done,
        })
        .await
        .unwrap();
    store.commit(Batch::persist(big_job(600))).await.unwrap();

    // Room is made by raising the limit: the batch that failed goes through now.
    store.set_size_limit(None).await.unwrap();
    store.commit(Batch::persist(big_job(500))).await.unwrap();
    store.commit(Batch::persist(big_job(501))).await.unwrap();

    let mut expected = vec![job(0)];
    expected.extend(stored);
    expected.extend([big_job(600), big_job(500), big_job(501)]);
    assert_eq!(store.load().await.unwrap(), expected);
}

//! Writing, replaying and removing jobs in a real SQLite file.

mod common;

use bytes::Bytes;
use common::{full_job, handles, job, temp_store};
use gearbox_store::{Batch, Durability, SqliteStore, Store, StoreError, StoredJob, DEFAULT_TABLE};

#[tokio::test]
async fn round_trip_keeps_every_field_and_the_order() {
    let (_dir, _path, store) = temp_store(Durability::Fsync);
    let jobs: Vec<StoredJob> = (0..9).map(full_job).collect();
    // One batch with several jobs, then one job per batch.
    store
        .commit(Batch {
            persist: jobs[..4].to_vec(),
            complete: vec![],
        })
        .await
        .unwrap();
    for j in &jobs[4..] {
        store.commit(Batch::persist(j.clone())).await.unwrap();
    }
    assert_eq!(store.load().await.unwrap(), jobs);
}

#[tokio::test]
async fn empty_and_binary_values_survive() {
    let (_dir, _path, store) = temp_store(Durability::Normal);
    let mut odd = StoredJob::new(Bytes::from_static(b"H:\xff\x00:1"), "", "");
    odd.reducer = Some(Bytes::new());
    odd.schedule = Some(String::new());
    odd.when_to_run = u64::from(u32::MAX) * 4;
    store.commit(Batch::persist(odd.clone())).await.unwrap();
    assert_eq!(store.load().await.unwrap(), [odd.clone()]);
    store.commit(Batch::complete(odd.handle)).await.unwrap();
    assert!(store.load().await.unwrap().is_empty());
}

#[tokio::test]
async fn complete_removes_and_is_idempotent() {
    let (_dir, _path, store) = temp_store(Durability::Fsync);
    for n in 0..5 {
        store.commit(Batch::persist(job(n))).await.unwrap();
    }
    store.commit(Batch::complete("H:test:1")).await.unwrap();
    store.commit(Batch::complete("H:test:1")).await.unwrap();
    store
        .commit(Batch::complete("H:never:stored"))
        .await
        .unwrap();
    store
        .commit(Batch {
            persist: vec![job(5)],
            complete: vec![Bytes::from("H:test:3"), Bytes::from("H:test:5")],
        })
        .await
        .unwrap();
    let left = store.load().await.unwrap();
    assert_eq!(handles(&left), handles(&[job(0), job(2), job(4)]));
    let stats = store.stats();
    assert_eq!(stats.jobs_persisted, 6);
    assert_eq!(stats.jobs_removed, 5);
    assert_eq!(stats.failed_transactions, 0);
}

#[tokio::test]
async fn rewriting_a_job_keeps_its_place() {
    let (_dir, _path, store) = temp_store(Durability::Fsync);
    for n in 0..3 {
        store.commit(Batch::persist(job(n))).await.unwrap();
    }
    let mut changed = job(0);
    changed.when_to_run = 42;
    changed.data = Bytes::from_static(b"new");
    store.commit(Batch::persist(changed.clone())).await.unwrap();
    let jobs = store.load().await.unwrap();
    assert_eq!(jobs, [changed, job(1), job(2)]);
}

#[tokio::test]
async fn jobs_survive_drop_and_reopen() {
    let (_dir, path, store) = temp_store(Durability::Fsync);
    for n in 0..50 {
        store.commit(Batch::persist(full_job(n))).await.unwrap();
    }
    store.commit(Batch::complete("H:host:7")).await.unwrap();
    drop(store);
    let again = SqliteStore::open(&path, DEFAULT_TABLE, Durability::Fsync).unwrap();
    let expected: Vec<_> = (0..50).filter(|&n| n != 7).map(full_job).collect();
    assert_eq!(again.load().await.unwrap(), expected);
    // New jobs go after the replayed ones.
    again.commit(Batch::persist(full_job(99))).await.unwrap();
    let jobs = again.load().await.unwrap();
    assert_eq!(jobs.last().unwrap(), &full_job(99));
    assert_eq!(jobs.len(), 50);
}

#[tokio::test]
async fn every_durability_mode_opens_and_persists() {
    for durability in [Durability::Fsync, Durability::Normal, Durability::None] {
        let (_dir, path, store) = temp_store(durability);
        store.commit(Batch::persist(job(1))).await.unwrap();
        store.close().await;
        let again = SqliteStore::open(&path, DEFAULT_TABLE, durability).unwrap();
        assert_eq!(again.load().await.unwrap(), [job(1)], "{durability}");
    }
    assert_eq!("FSYNC".parse::<Durability>().unwrap(), Durability::Fsync);
    assert_eq!("normal".parse::<Durability>().unwrap(), Durability::Normal);
    assert_eq!("none".parse::<Durability>().unwrap(), Durability::None);
    assert!(matches!(
        "sometimes".parse::<Durability>(),
        Err(StoreError::UnknownDurability(_))
    ));
}

#[tokio::test]
async fn tables_are_separate_and_names_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let a = SqliteStore::open(&path, "queue_a", Durability::Fsync).unwrap();
    let b = SqliteStore::open(&path, "queue_b", Durability::Fsync).unwrap();
    a.commit(Batch::persist(job(1))).await.unwrap();
    b.commit(Batch::persist(job(2))).await.unwrap();
    assert_eq!(a.load().await.unwrap(), [job(1)]);
    assert_eq!(b.load().await.unwrap(), [job(2)]);
    let err = SqliteStore::open(&path, "x; DROP TABLE queue_a", Durability::Fsync).unwrap_err();
    assert!(matches!(err, StoreError::InvalidTableName { .. }), "{err}");
}

#[tokio::test]
async fn closed_store_refuses_work() {
    let (_dir, _path, store) = temp_store(Durability::Fsync);
    store.close().await;
    store.close().await;
    let err = store.commit(Batch::persist(job(1))).await.unwrap_err();
    assert!(matches!(err, StoreError::Closed), "{err}");
    assert!(matches!(store.load().await, Err(StoreError::Closed)));
}

#[tokio::test]
async fn open_reports_a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    let err = SqliteStore::open(&path, DEFAULT_TABLE, Durability::Fsync).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("move it aside"));
}

#[tokio::test]
async fn store_is_usable_as_a_trait_object() {
    let (_dir, _path, store) = temp_store(Durability::Fsync);
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(store);
    assert_eq!(store.name(), "sqlite");
    assert!(store.is_durable());
    assert!(store.claim(Bytes::from("H:test:1")).await.unwrap());
    store.release(Bytes::from("H:test:1")).await.unwrap();
    let task = {
        let store = store.clone();
        tokio::spawn(async move { store.commit(Batch::persist(job(1))).await })
    };
    task.await.unwrap().unwrap();
    assert_eq!(store.load().await.unwrap(), [job(1)]);
}

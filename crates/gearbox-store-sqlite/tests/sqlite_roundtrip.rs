//! What only the SQLite store does: binary handles, the durability modes, a file that is not a
//! database. What every store does is checked by gearbox-testkit's conformance suite
//! (`tests/store_conformance.rs`).

use bytes::Bytes;
use gearbox_store::sql::DEFAULT_TABLE;
use gearbox_store::{Batch, Durability, Store, StoreError, StoredJob};
use gearbox_store_sqlite::SqliteStore;

fn job(n: usize) -> StoredJob {
    StoredJob::new(format!("H:test:{n}"), "f", format!("data-{n}"))
}

#[tokio::test]
async fn empty_and_binary_values_survive() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path().join("jobs.db"),
        DEFAULT_TABLE,
        Durability::Normal,
    )
    .await
    .unwrap();
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
async fn every_durability_mode_opens_and_persists() {
    for durability in [Durability::Fsync, Durability::Normal, Durability::None] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let store = SqliteStore::open(&path, DEFAULT_TABLE, durability)
            .await
            .unwrap();
        store.commit(Batch::persist(job(1))).await.unwrap();
        store.close().await;
        let again = SqliteStore::open(&path, DEFAULT_TABLE, durability)
            .await
            .unwrap();
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
async fn open_reports_a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    let err = SqliteStore::open(&path, DEFAULT_TABLE, Durability::Fsync)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("move it aside"));
}

//! What only the MySQL store does, against a throwaway MariaDB: binary handles. What every
//! store does is checked by gearbox-testkit's conformance suite (`tests/store_conformance.rs`).

use bytes::Bytes;
use gearbox_store::sql::DEFAULT_TABLE;
use gearbox_store::{Batch, Durability, Store, StoredJob};
use gearbox_store_mysql::MysqlStore;
use gearbox_testkit::servers::mariadb::MariaDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_handles_round_trip() {
    let Some(db) = MariaDb::start("binary_handles_round_trip") else {
        return;
    };
    let store = MysqlStore::connect(db.url().as_str(), DEFAULT_TABLE, Durability::Fsync)
        .await
        .unwrap();
    // Handles are bytes too: NULs and non-UTF-8 are kept, and distinct from their lossy text.
    let nul = StoredJob::new(Bytes::from_static(b"H:\x00\xff:1"), "f", "a");
    let lossy = StoredJob::new(Bytes::from_static(b"H:\x00\xef\xbf\xbd:1"), "f", "b");
    let both = Batch {
        persist: vec![nul.clone(), lossy.clone()],
        complete: vec![],
    };
    store.commit(both).await.unwrap();
    assert_eq!(store.load().await.unwrap(), [nul.clone(), lossy.clone()]);
    store.commit(Batch::complete(nul.handle)).await.unwrap();
    assert_eq!(store.load().await.unwrap(), [lossy]);
}

//! Many concurrent commits share transactions.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{handles, job, MariaDb};
use gearbox_store::{Batch, Durability, Store};
use gearbox_store_mysql::{MysqlStore, DEFAULT_TABLE};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_commits_share_transactions() {
    let Some(db) = MariaDb::start("a_thousand_concurrent_commits_share_transactions") else {
        return;
    };
    let store = MysqlStore::connect(&db.url(), DEFAULT_TABLE, Durability::Fsync)
        .await
        .unwrap();
    let store = Arc::new(store);
    let barrier = Arc::new(tokio::sync::Barrier::new(1000));
    let started = Instant::now();
    let tasks: Vec<_> = (0..1000)
        .map(|n| {
            let store = store.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store.commit(Batch::persist(job(n))).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let elapsed = started.elapsed();
    let stats = store.stats();
    assert_eq!(stats.batches, 1000);
    assert_eq!(stats.jobs_persisted, 1000);
    assert_eq!(stats.failed_transactions, 0);
    assert!(
        stats.transactions <= 250,
        "1000 commits took {} transactions",
        stats.transactions
    );
    eprintln!(
        "1000 concurrent commits in {} transactions, {elapsed:?}",
        stats.transactions
    );
    let mut stored = handles(&store.load().await.unwrap());
    let mut expected = handles(&(0..1000).map(job).collect::<Vec<_>>());
    stored.sort();
    expected.sort();
    assert_eq!(stored, expected);

    // Removing them all, concurrently, also shares transactions.
    let before = store.stats().transactions;
    let tasks: Vec<_> = (0..1000)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .commit(Batch::complete(format!("H:test:{n}").into_bytes()))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.jobs_removed, 1000);
    assert!(stats.transactions - before <= 250, "{stats:?}");
    assert!(store.load().await.unwrap().is_empty());
}

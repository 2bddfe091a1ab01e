//! Many concurrent commits share transactions; loads run safely beside commits.

mod common;

use std::sync::Arc;

use common::{handles, job, temp_store};
use gearbox_store::{Batch, Durability, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_commits_share_transactions() {
    let (_dir, _path, store) = temp_store(Durability::Fsync);
    let store = Arc::new(store);
    let barrier = Arc::new(tokio::sync::Barrier::new(1000));
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
    let stats = store.stats();
    assert_eq!(stats.batches, 1000);
    assert_eq!(stats.jobs_persisted, 1000);
    assert!(
        stats.transactions <= 250,
        "1000 commits took {} transactions",
        stats.transactions
    );
    eprintln!(
        "1000 concurrent commits in {} transactions",
        stats.transactions
    );
    let mut stored = handles(&store.load().await.unwrap());
    let mut expected = handles(&(0..1000).map(job).collect::<Vec<_>>());
    stored.sort();
    expected.sort();
    assert_eq!(stored, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_apply_in_call_order_even_when_awaited_later() {
    let (_dir, _path, store) = temp_store(Durability::Fsync);
    // Persist then remove, both queued before either is awaited: the removal wins.
    let persist = store.commit(Batch::persist(job(1)));
    let remove = store.commit(Batch::complete("H:test:1"));
    remove.await.unwrap();
    persist.await.unwrap();
    assert!(store.load().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_while_committing_sees_a_consistent_prefix() {
    let (_dir, _path, store) = temp_store(Durability::Normal);
    let store = Arc::new(store);
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 0..300 {
                store.commit(Batch::persist(job(n))).await.unwrap();
            }
        })
    };
    let all = handles(&(0..300).map(job).collect::<Vec<_>>());
    let mut last = 0;
    while !writer.is_finished() {
        let seen = handles(&store.load().await.unwrap());
        assert!(seen.len() >= last, "a load went back in time");
        assert_eq!(
            seen,
            all[..seen.len()],
            "a load saw a hole or the wrong order"
        );
        last = seen.len();
    }
    writer.await.unwrap();
    assert_eq!(handles(&store.load().await.unwrap()), all);
}

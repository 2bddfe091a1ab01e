//! MariaDB goes away and comes back: commits fail clearly meanwhile, then the same store
//! object reconnects on its own and nothing acknowledged is lost.

mod common;

use std::time::{Duration, Instant};

use common::{handles, job, MariaDb};
use gearbox_store::{Batch, Durability, Store, StoreError};
use gearbox_store_mysql::{MysqlStore, DEFAULT_TABLE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_fail_clearly_during_an_outage_and_recover_after() {
    // The outage should be logged once when it starts and once when it ends (visible with
    // --nocapture).
    let _ = tracing_subscriber::fmt()
        .with_env_filter("gearbox_store_mysql=info")
        .with_test_writer()
        .try_init();
    let Some(db) = MariaDb::start("commits_fail_clearly_during_an_outage_and_recover_after") else {
        return;
    };
    let store = MysqlStore::connect(&db.url(), DEFAULT_TABLE, Durability::Fsync)
        .await
        .unwrap();
    for n in 0..10 {
        store.commit(Batch::persist(job(n))).await.unwrap();
    }

    let stopping = Instant::now();
    tokio::task::block_in_place(|| db.kill());
    eprintln!("kill -9 took {:?}", stopping.elapsed());

    // Every commit during the outage fails, quickly, with the "unreachable" error.
    for n in 10..20 {
        let started = Instant::now();
        let err = store.commit(Batch::persist(job(n))).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("unreachable") && text.contains("reconnects"),
            "{text}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{:?}",
            started.elapsed()
        );
    }
    assert!(store.load().await.is_err());
    let failed = store.stats().failed_transactions;
    assert!(failed >= 10, "{:?}", store.stats());

    tokio::task::block_in_place(|| db.start_again());
    let restarted = Instant::now();

    // The same store reconnects on its own (back-off at most 2 s).
    let deadline = restarted + Duration::from_secs(30);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match store.commit(Batch::persist(job(100))).await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                assert!(matches!(e, StoreError::Unavailable { .. }), "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the store did not recover: {e}"),
        }
    }
    eprintln!(
        "recovered {:?} after the restart, {attempts} attempt(s)",
        restarted.elapsed()
    );
    for n in 101..110 {
        store.commit(Batch::persist(job(n))).await.unwrap();
    }
    let stats = store.stats();
    assert!(stats.connects >= 2, "{stats:?}");

    // Everything acknowledged is there, nothing refused is.
    let loaded = handles(&store.load().await.unwrap());
    let expected: Vec<String> = (0..10)
        .chain(100..110)
        .map(|n| format!("H:test:{n}"))
        .collect();
    assert_eq!(loaded, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_a_restart_between_commits() {
    let Some(db) = MariaDb::start("reconnects_after_a_restart_between_commits") else {
        return;
    };
    let store = MysqlStore::connect(&db.url(), DEFAULT_TABLE, Durability::Fsync)
        .await
        .unwrap();
    store.commit(Batch::persist(job(1))).await.unwrap();
    tokio::task::block_in_place(|| {
        db.kill();
        db.start_again();
    });
    // The writer notices the lost connection on the next commit at the latest; the first
    // commit after the restart succeeds or fails cleanly, and a retry succeeds.
    let first = store.commit(Batch::persist(job(2))).await;
    if let Err(e) = &first {
        assert!(matches!(e, StoreError::Unavailable { .. }), "{e}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        store.commit(Batch::persist(job(2))).await.unwrap();
    }
    assert_eq!(
        handles(&store.load().await.unwrap()),
        ["H:test:1", "H:test:2"]
    );
}

//! The conformance cases. Each takes a [`Harness`] and panics on the first broken promise.

use std::time::{Duration, Instant};

use bytes::Bytes;
use gearbox_proto::Priority;
use gearbox_store::{Batch, HandleMaker, StoreError, StoredJob};

use super::{full_job, handles, job, test_handles, CapturedLogs, GearmandRow, Harness};

/// Every field survives, the replay order is the order of first persist, a rewrite keeps its
/// place, removal is idempotent and comes after the batch's writes, commits apply in call
/// order, a closed store refuses work, and a store opened again sees the same jobs while
/// another namespace sees none.
pub async fn round_trip(h: &mut impl Harness) {
    let store = h.open("gearbox_jobs").await;
    assert!(!store.name().is_empty());
    assert!(!store.location().is_empty());
    assert!(store.is_durable());
    assert!(store.load().await.unwrap().is_empty());

    let full = full_job();
    let mut empty = StoredJob::new("H:host:2", "", "");
    empty.priority = Priority::High;
    store.commit(Batch::persist(full.clone())).await.unwrap();
    store.commit(Batch::persist(empty.clone())).await.unwrap();
    let three = Batch {
        persist: vec![job(3), job(4), job(5)],
        complete: vec![],
    };
    store.commit(three).await.unwrap();
    store.commit(Batch::new()).await.unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded[..2], [full.clone(), empty.clone()]);
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
    let both = Batch {
        persist: vec![job(9), job(9)],
        complete: vec![Bytes::from_static(b"H:test:9")],
    };
    store.commit(both).await.unwrap();
    let kept = ["H:host:1", "H:host:2", "H:test:3", "H:test:5"];
    assert_eq!(handles(&store.load().await.unwrap()), kept);

    // Commits apply in call order even when awaited in another.
    let persist = store.commit(Batch::persist(job(7)));
    let remove = store.commit(Batch::complete("H:test:7"));
    let again = store.commit(Batch::persist(job(8)));
    remove.await.unwrap();
    again.await.unwrap();
    persist.await.unwrap();
    let loaded = store.load().await.unwrap();
    let mut expected: Vec<String> = kept.iter().map(|h| h.to_string()).collect();
    expected.push("H:test:8".into());
    assert_eq!(handles(&loaded), expected);

    let stats = store.stats();
    assert_eq!(stats.failed_transactions, 0, "{stats:?}");
    assert_eq!(stats.jobs_persisted, 1 + 1 + 3 + 1 + 2 + 1 + 1, "{stats:?}");
    assert_eq!(stats.jobs_removed, 3 + 1 + 1, "{stats:?}");

    // Closed: refuses work. Opened again: the same jobs. Another namespace: none.
    store.close().await;
    store.close().await;
    let refused = store.commit(Batch::persist(job(10))).await;
    assert!(matches!(refused, Err(StoreError::Closed)), "{refused:?}");
    assert!(matches!(store.load().await, Err(StoreError::Closed)));
    drop(store);
    let reopened = h.open("gearbox_jobs").await;
    assert_eq!(reopened.load().await.unwrap(), loaded);
    let other = h.open("other_jobs").await;
    assert!(other.load().await.unwrap().is_empty());
    other.commit(Batch::persist(job(1))).await.unwrap();
    assert_eq!(reopened.load().await.unwrap(), loaded);
}

/// A batch of thousands of jobs (more rows and bytes than one SQL statement carries) is one
/// transaction and comes back in
/// order; so does a batch that removes most of them and writes more.
pub async fn large_batches(h: &mut impl Harness) {
    let store = h.open("gearbox_jobs").await;
    let big = |n: usize| {
        let mut j = job(n);
        j.data = Bytes::from(vec![(n % 251) as u8; 2048 + n % 7]);
        j
    };
    let first = Batch {
        persist: (0..3000).map(big).collect(),
        complete: vec![],
    };
    store.commit(first).await.unwrap();
    assert_eq!(store.stats().transactions, 1);
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded, (0..3000).map(big).collect::<Vec<_>>());

    let second = Batch {
        persist: (3000..3500).map(big).collect(),
        complete: (0..2500)
            .map(|n| Bytes::from(format!("H:test:{n}")))
            .collect(),
    };
    store.commit(second).await.unwrap();
    assert_eq!(store.stats().transactions, 2);
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded, (2500..3500).map(big).collect::<Vec<_>>());
}

/// Commits from many tasks at once all land, each answered once its own batch is stored.
pub async fn concurrent_commits(h: &mut impl Harness) {
    let store = h.open("gearbox_jobs").await;
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.commit(Batch::persist(job(n))).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("commit task").expect("commit");
    }
    let mut loaded = handles(&store.load().await.unwrap());
    loaded.sort();
    let mut expected = test_handles(0..200);
    expected.sort();
    assert_eq!(loaded, expected);
    assert_eq!(store.stats().jobs_persisted, 200);
}

/// While the database is away every commit fails at once with the backend's outage error and
/// nothing of it is stored; once it is back the same store recovers on its own, nothing
/// acknowledged is lost, and the outage is logged once when it starts and once when it ends.
pub async fn outage(h: &mut impl Harness) {
    let (logs, _guard) = CapturedLogs::install();
    let store = h.open("gearbox_jobs").await;
    for n in 0..10 {
        store.commit(Batch::persist(job(n))).await.unwrap();
    }
    if !h.break_store(&store).await {
        println!("no outage to simulate for this store");
        return;
    }
    // Large jobs: a full disk refuses them even with free room in the pages it has.
    let big = |n: usize| {
        let mut j = job(n);
        j.data = Bytes::from(vec![7u8; 16 * 1024]);
        j
    };
    for n in 10..30 {
        let started = Instant::now();
        let err = store.commit(Batch::persist(big(n))).await.unwrap_err();
        assert!(h.is_outage_error(&err), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "a failing commit took {:?}",
            started.elapsed()
        );
    }
    assert!(
        store.stats().failed_transactions >= 20,
        "{:?}",
        store.stats()
    );
    h.mend_store(&store).await;

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match store.commit(Batch::persist(big(100))).await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                assert!(h.is_outage_error(&e), "{e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the store did not recover: {e}"),
        }
    }
    for n in 101..110 {
        store.commit(Batch::persist(big(n))).await.unwrap();
    }
    let loaded = handles(&store.load().await.unwrap());
    assert_eq!(loaded, test_handles((0..10).chain(100..110)));

    let text = logs.text();
    assert_eq!(logs.count("job store failed"), 1, "{text}");
    assert_eq!(
        logs.count("reconnected") + logs.count("recovered"),
        1,
        "{text}"
    );
    assert_eq!(logs.count("ERROR"), 1, "{text}");
}

/// A database server restarted while the store is idle costs no failed commit: the store
/// notices the lost connection and reconnects before answering.
pub async fn restart_while_idle(h: &mut impl Harness) {
    let store = h.open("gearbox_jobs").await;
    store.commit(Batch::persist(job(1))).await.unwrap();
    if !h.restart().await {
        println!("no server to restart for this store");
        return;
    }
    store.commit(Batch::persist(job(2))).await.unwrap();
    assert_eq!(handles(&store.load().await.unwrap()), test_handles([1, 2]));
    assert!(store.stats().connects >= 2, "{:?}", store.stats());
}

/// Handles `H:<prefix>:1`, `H:<prefix>:2`...
fn counter(prefix: &'static str) -> HandleMaker {
    let mut n = 0;
    Box::new(move || {
        n += 1;
        Bytes::from(format!("H:{prefix}:{n}"))
    })
}

/// gearmand's queue table moves into ours once, with new handles and every field; a failed
/// import changes nothing; a missing table moves nothing; a table in another format or with
/// a bad name is refused.
pub async fn gearmand_import(h: &mut impl Harness) {
    let rows: [GearmandRow; 4] = [
        ("u-1", "resize", 0, b"\x00img\xff", 0),
        ("", "resize", 1, b"no unique", 0),
        ("", "email", 2, b"low", 1_700_000_000),
        ("u-2", "email", 1, b"", 0),
    ];
    if !h.seed_gearmand("gearman_queue", &rows).await {
        println!("no gearmand table format for this store");
        return;
    }
    let store = h.open("gearbox_jobs").await;
    let old = StoredJob::new("H:old:1", "f", "x");
    store.commit(Batch::persist(old.clone())).await.unwrap();
    let moved = store
        .import_gearmand("gearman_queue", counter("imp"))
        .await
        .unwrap();
    assert_eq!(moved, 4);
    assert_eq!(h.count_rows("gearman_queue").await, 0);
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded[0], old);
    let mut imported: Vec<_> = loaded[1..]
        .iter()
        .map(|j| {
            let row = (
                String::from_utf8_lossy(&j.unique).into_owned(),
                String::from_utf8_lossy(&j.function).into_owned(),
                j.priority.index() as i64,
                j.data.to_vec(),
                j.when_to_run as i64,
            );
            assert!(j.schedule.is_none() && j.reducer.is_none());
            (row, j.handle.clone())
        })
        .collect();
    imported.sort();
    let mut expected: Vec<_> = rows
        .iter()
        .map(|(u, f, p, d, w)| (u.to_string(), f.to_string(), *p, d.to_vec(), *w))
        .collect();
    expected.sort();
    assert_eq!(
        imported.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>(),
        expected
    );
    let mut new_handles: Vec<_> = imported.into_iter().map(|(_, h)| h).collect();
    new_handles.sort();
    assert_eq!(new_handles, ["H:imp:1", "H:imp:2", "H:imp:3", "H:imp:4"]);
    // Imported once: the emptied table gives nothing more.
    let again = store.import_gearmand("gearman_queue", counter("x")).await;
    assert_eq!(again.unwrap(), 0);

    // A handle that is already stored: the import fails and changes nothing.
    assert!(h.seed_gearmand("gearman_queue", &rows[..1]).await);
    let clash: HandleMaker = Box::new(|| Bytes::from_static(b"H:old:1"));
    assert!(store.import_gearmand("gearman_queue", clash).await.is_err());
    assert_eq!(h.count_rows("gearman_queue").await, 1);
    assert_eq!(store.load().await.unwrap(), loaded);

    // No such table: nothing moves. Another format, or a bad name: refused.
    let missing = store.import_gearmand("no_such_table", counter("m")).await;
    assert_eq!(missing.unwrap(), 0);
    assert!(h.seed_foreign_table("not_gearman").await);
    let foreign = store.import_gearmand("not_gearman", counter("f")).await;
    assert!(
        matches!(&foreign, Err(StoreError::NotGearmandTable { column, .. }) if column == "function_name"),
        "{foreign:?}"
    );
    let bad = store.import_gearmand("x; DROP TABLE y", counter("b")).await;
    assert!(
        matches!(bad, Err(StoreError::InvalidTableName { .. })),
        "{bad:?}"
    );
    assert_eq!(store.load().await.unwrap(), loaded);
}

/// What cannot work is refused clearly at once: a table name that is not a plain identifier,
/// a table of another format under our table's name, a server where nothing listens, and a
/// batch with a handle the store cannot keep (refused whole; removing such a handle is fine).
pub async fn bad_input(h: &mut impl Harness) {
    if h.seed_foreign_table("foreign_jobs").await {
        let bad = h.try_open("x;drop").await.map(drop);
        assert!(
            matches!(bad, Err(StoreError::InvalidTableName { .. })),
            "{bad:?}"
        );
        let foreign = h.try_open("foreign_jobs").await.map(drop);
        assert!(
            matches!(foreign, Err(StoreError::SchemaMismatch { .. })),
            "{foreign:?}"
        );
    }
    if let Some(unreachable) = h.open_unreachable().await {
        let err = unreachable.map(drop).unwrap_err();
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
        assert!(err.to_string().contains("unreachable"), "{err}");
    }
    let store = h.open("gearbox_jobs").await;
    for bad in h.unstorable_jobs() {
        let handle = bad.handle.clone();
        let batch = Batch {
            persist: vec![job(1), bad],
            complete: vec![],
        };
        let err = store.commit(batch).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidRow { .. }), "{err}");
        store.commit(Batch::complete(handle)).await.unwrap();
    }
    store.commit(Batch::persist(job(2))).await.unwrap();
    assert_eq!(handles(&store.load().await.unwrap()), test_handles([2]));
}

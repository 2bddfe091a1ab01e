//! A store outage under load, with the real SQLite store: the database runs out of room (a
//! size cap, like a full disk) while clients submit background jobs. Submits fail with a clear
//! error instead of a false JOB_CREATED, foreground jobs carry on, and when room is made the
//! server takes background jobs again without a restart; every acknowledged job is still
//! stored and is served.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{bg, config, fg, grab_uniq, submit_ok, worker};
use gearbox_proto::{Request, Response};
use gearbox_server::ShutdownMode;
use gearbox_store::sql::DEFAULT_TABLE;
use gearbox_store::{Durability, Store};
use gearbox_store_sqlite::SqliteStore;
use gearbox_testkit::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_refuses_background_jobs_then_recovers_without_losing_any() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jobs.sqlite");
    let store = SqliteStore::open(&path, DEFAULT_TABLE, Durability::Fsync).await;
    let store = Arc::new(store.expect("open"));
    let server = TestServer::start_with_store(config(), store.clone()).await;
    let mut c = server.connect().await;
    let payload = "x".repeat(32 * 1024);

    let mut acknowledged = Vec::new();
    for i in 0..5 {
        acknowledged.push(submit_ok(&mut c, &bg("f", &format!("before-{i}"), &payload)).await);
    }
    // The disk fills up: the database may not grow any more.
    store.set_size_limit(Some(0)).await.expect("cap the size");
    let mut refused = 0;
    for i in 0..50 {
        c.send(&bg("f", &format!("during-{i}"), &payload)).await;
        match c.recv().await {
            Response::JobCreated { handle } => acknowledged.push(handle),
            Response::Error { code, text } => {
                assert_eq!(&code[..], b"QUEUE_ERROR");
                assert!(
                    String::from_utf8_lossy(&text).contains("full"),
                    "the error says why: {text:?}"
                );
                refused += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(refused > 0, "the cap made commits fail");
    // Foreground jobs do not need the store.
    let mut w = worker(&server, &["g"]).await;
    let h = submit_ok(&mut c, &fg("g", "", "fg")).await;
    assert_eq!(grab_uniq(&mut w).await.0, h);
    w.send(&Request::WorkComplete {
        handle: h.clone(),
        data: Bytes::from_static(b"ok"),
    })
    .await;
    assert_eq!(
        c.recv().await,
        Response::WorkComplete {
            handle: h,
            data: Bytes::from_static(b"ok")
        }
    );

    // Room is made: background submits work again, without a restart.
    store.set_size_limit(None).await.expect("lift the cap");
    acknowledged.push(submit_ok(&mut c, &bg("f", "after", &payload)).await);

    // Everything acknowledged is stored, and is served after a restart.
    server.stop(ShutdownMode::Immediate).await;
    let stored: Vec<Bytes> = store
        .load()
        .await
        .expect("load")
        .into_iter()
        .map(|j| j.handle)
        .collect();
    for h in &acknowledged {
        assert!(stored.contains(h), "acknowledged job {h:?} is stored");
    }
    assert_eq!(
        stored.len(),
        acknowledged.len(),
        "nothing refused was stored"
    );
    let server = TestServer::start_with_store(config(), store.clone()).await;
    let mut w = worker(&server, &["f"]).await;
    let mut served = Vec::new();
    for _ in 0..acknowledged.len() {
        let (handle, ..) = grab_uniq(&mut w).await;
        w.send(&Request::WorkComplete {
            handle: handle.clone(),
            data: Bytes::new(),
        })
        .await;
        served.push(handle);
    }
    served.sort();
    acknowledged.sort();
    assert_eq!(served, acknowledged);
    server.stop(ShutdownMode::Immediate).await;
}

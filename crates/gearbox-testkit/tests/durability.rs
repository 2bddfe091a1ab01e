//! Durable queues through a real server: background jobs are acknowledged only after the store
//! commits them, a failing store refuses them with an error (and foreground jobs go on), and a
//! restarted server replays what its store holds, with the original handles.

mod common;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::{bg, config, fg, grab_uniq, submit_ok, worker};
use gearbox_proto::{Request, Response};
use gearbox_server::ShutdownMode;
use gearbox_store::{Batch, BoxFuture, MemoryStore, Store, StoreError, StoreStats, StoredJob};
use gearbox_testkit::TestServer;
use tokio::sync::Semaphore;

/// A store whose commits wait for a permit (to hold a commit in flight) or fail on demand.
struct Gate {
    inner: MemoryStore,
    permits: Semaphore,
    fail: Mutex<bool>,
}

impl Gate {
    fn new(open: bool) -> Arc<Gate> {
        Arc::new(Gate {
            inner: MemoryStore::retaining(),
            permits: Semaphore::new(if open { Semaphore::MAX_PERMITS } else { 0 }),
            fail: Mutex::new(false),
        })
    }
}

impl Store for Gate {
    fn name(&self) -> &str {
        "gate"
    }

    fn location(&self) -> &str {
        "gate"
    }

    fn close(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        self.inner.close()
    }

    fn stats(&self) -> StoreStats {
        self.inner.stats()
    }

    fn load(&self) -> BoxFuture<'_, Vec<StoredJob>> {
        self.inner.load()
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.permits.acquire().await.expect("gate open").forget();
            if *self.fail.lock().unwrap() {
                return Err(StoreError::Backend {
                    location: "gate".into(),
                    source: Arc::new(std::io::Error::other("simulated outage")),
                });
            }
            self.inner.commit(batch).await
        })
    }
}

#[tokio::test]
async fn job_created_waits_for_the_commit() {
    let gate = Gate::new(false);
    let server = TestServer::start_with_store(config(), gate.clone()).await;
    let mut c = server.connect().await;
    c.send(&bg("f", "", "x")).await;
    // The echo overtakes JOB_CREATED: the store has not committed yet.
    c.assert_quiet().await;
    gate.permits.add_permits(1);
    assert!(matches!(c.recv().await, Response::JobCreated { .. }));
    // Foreground jobs never wait for the store.
    let h = submit_ok(&mut c, &fg("f", "", "y")).await;
    assert!(!h.is_empty());
}

#[tokio::test]
async fn writes_from_many_connections_share_one_commit() {
    let gate = Gate::new(false);
    let server = TestServer::start_with_store(config(), gate.clone()).await;
    let mut clients = Vec::new();
    for i in 0..10 {
        let mut c = server.connect().await;
        c.send(&bg("f", &format!("u{i}"), "x")).await;
        // The echo comes back once the submit is handled (its write queued for the store).
        c.assert_quiet().await;
        clients.push(c);
    }
    // The persister took the first write alone and waits at the gate; the other nine queued
    // meanwhile and go into the next commit together: two commits acknowledge all ten jobs.
    gate.permits.add_permits(2);
    for c in &mut clients {
        assert!(matches!(c.recv().await, Response::JobCreated { .. }));
    }
    assert!(
        gate.inner.commits() <= 2,
        "{} commits",
        gate.inner.commits()
    );
    assert_eq!(gate.inner.stats().jobs_persisted, 10);
}

#[tokio::test]
async fn a_failing_store_refuses_background_jobs_and_recovers() {
    let gate = Gate::new(true);
    *gate.fail.lock().unwrap() = true;
    let server = TestServer::start_with_store(config(), gate.clone()).await;
    let mut c = server.connect().await;
    c.send(&bg("f", "u1", "x")).await;
    match c.recv().await {
        Response::Error { code, text } => {
            assert_eq!(&code[..], b"QUEUE_ERROR");
            assert!(
                String::from_utf8_lossy(&text).contains("simulated outage"),
                "{text:?}"
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(
        common::status(&mut c, "f").await,
        Some((0, 0, 0)),
        "no job was kept"
    );
    // Foreground work is unaffected.
    let mut w = worker(&server, &["f"]).await;
    let h = submit_ok(&mut c, &fg("f", "", "fg")).await;
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
    // The store comes back: the same submit now succeeds, without a restart.
    *gate.fail.lock().unwrap() = false;
    assert!(!submit_ok(&mut c, &bg("f", "u1", "x")).await.is_empty());
}

#[tokio::test]
async fn a_restarted_server_replays_its_jobs_with_their_handles() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::retaining());
    let server = TestServer::start_with_store(config(), store.clone()).await;
    let mut c = server.connect().await;
    let plain = submit_ok(&mut c, &bg("f", "u-plain", "one")).await;
    let second = submit_ok(&mut c, &bg("f", "", "two")).await;
    let fg_handle = submit_ok(&mut c, &fg("f", "", "foreground")).await;
    let future = {
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        c.send(&Request::SubmitEpoch {
            function: Bytes::from_static(b"f"),
            unique: Bytes::new(),
            epoch,
            data: Bytes::from_static(b"later"),
        })
        .await;
        match c.recv().await {
            Response::JobCreated { handle } => handle,
            other => panic!("{other:?}"),
        }
    };
    server.stop(ShutdownMode::Immediate).await;
    assert_eq!(store.load().await.unwrap().len(), 3, "background jobs only");

    let server = TestServer::start_with_store(config(), store.clone()).await;
    let mut c = server.connect().await;
    // Polling a handle after the restart finds it; coalescing still works.
    c.send(&Request::GetStatus {
        handle: plain.clone(),
    })
    .await;
    assert!(matches!(
        c.recv().await,
        Response::StatusRes { known: true, .. }
    ));
    assert_eq!(submit_ok(&mut c, &bg("f", "u-plain", "again")).await, plain);
    c.send(&Request::GetStatus {
        handle: fg_handle.clone(),
    })
    .await;
    assert!(
        matches!(c.recv().await, Response::StatusRes { known: false, .. }),
        "foreground jobs are not kept"
    );
    let mut w = worker(&server, &["f"]).await;
    for expected in [&plain, &second] {
        let (handle, ..) = grab_uniq(&mut w).await;
        assert_eq!(&handle, expected);
        w.send(&Request::WorkComplete {
            handle,
            data: Bytes::new(),
        })
        .await;
    }
    w.send(&Request::GrabJobUniq).await;
    assert_eq!(
        w.recv().await,
        Response::NoJob,
        "the epoch job waits for its time"
    );
    server.stop(ShutdownMode::Immediate).await;
    let left: Vec<Bytes> = store
        .load()
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.handle)
        .collect();
    assert_eq!(left, [future], "completed jobs left the store");
}

#[tokio::test]
async fn a_store_that_does_not_answer_gets_an_error_not_a_job_created() {
    // The gate never opens: every commit hangs.
    let gate = Gate::new(false);
    let server = TestServer::start_with_store(
        gearbox_server::Config {
            store_timeout_ms: 200,
            ..config()
        },
        gate.clone(),
    )
    .await;
    let mut c = server.connect().await;
    c.send(&bg("f", "", "x")).await;
    match c.recv().await {
        Response::Error { code, text } => {
            assert_eq!(&code[..], b"QUEUE_ERROR");
            assert!(
                String::from_utf8_lossy(&text).contains("did not answer within 200 ms"),
                "{text:?}"
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
    // The server itself is fine.
    c.assert_quiet().await;
    gate.permits.add_permits(Semaphore::MAX_PERMITS);
}

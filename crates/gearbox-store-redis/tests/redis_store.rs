//! The Redis store against a real `redis-server` started by the harness.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gearbox_proto::Priority;
use gearbox_store::{Batch, Durability, Store, StoreError, StoredJob};
use gearbox_store_redis::{RedisOptions, RedisStore};
use gearbox_testkit::servers::redis::RedisServer;

fn options(server: &RedisServer, prefix: &str) -> RedisOptions {
    RedisOptions::new("127.0.0.1", server.port())
        .prefix(prefix)
        .max_backoff(Duration::from_millis(200))
}

async fn connect(server: &RedisServer, prefix: &str) -> RedisStore {
    RedisStore::connect(options(server, prefix))
        .await
        .expect("connect to the test redis-server")
}

/// A plain connection for looking at the keys behind the store's back.
async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{}/", server.port()))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn job(handle: &str, data: &str) -> StoredJob {
    StoredJob::new(handle.to_owned(), "reverse", data.to_owned())
}

fn handles(jobs: &[StoredJob]) -> Vec<Bytes> {
    jobs.iter().map(|j| j.handle.clone()).collect()
}

macro_rules! server {
    ($name:expr) => {
        match RedisServer::start($name) {
            Some(server) => server,
            None => return,
        }
    };
}

#[tokio::test]
async fn every_field_round_trips_binary_safe() {
    let server = server!("every_field_round_trips_binary_safe");
    let store = connect(&server, "gearbox:").await;
    assert_eq!(store.name(), "redis");
    assert!(store.is_durable());
    let full = StoredJob {
        handle: Bytes::from_static(b"H:host\x00:\xff1"),
        function: Bytes::from_static(b"fn\xc3\x28\x00name"),
        unique: Bytes::from_static(b"\x00\xff\xfe unique \x80"),
        priority: Priority::High,
        data: Bytes::from_static(b"\x00\x00payload\r\n\x00\xff"),
        when_to_run: u64::MAX,
        schedule: Some("*/5 * * * 1-5".into()),
        reducer: Some(Bytes::from_static(b"red\x00\xffucer")),
    };
    let low = StoredJob {
        priority: Priority::Low,
        when_to_run: 1_700_000_000,
        ..job("H:host:2", "")
    };
    let normal = StoredJob {
        data: Bytes::new(),
        ..job("H:host:3", "")
    };
    store
        .commit(Batch {
            persist: vec![full.clone(), low.clone(), normal.clone()],
            complete: vec![],
        })
        .await
        .unwrap();
    assert_eq!(store.load().await.unwrap(), vec![full, low, normal]);
}

#[tokio::test]
async fn replay_order_is_first_persist_order_and_rewrites_keep_their_place() {
    let server = server!("replay_order");
    let store = connect(&server, "gearbox:").await;
    for h in ["H:x:3", "H:x:1", "H:x:2"] {
        store.commit(Batch::persist(job(h, "v1"))).await.unwrap();
    }
    // Re-persisting H:x:3 (a re-armed SCHED job, say) replaces its fields, keeps its place,
    // and drops a field the new version no longer has.
    let scheduled = StoredJob {
        schedule: Some("0 * * * *".into()),
        reducer: Some(Bytes::from_static(b"sum")),
        ..job("H:x:1", "v1")
    };
    store
        .commit(Batch::persist(scheduled.clone()))
        .await
        .unwrap();
    store
        .commit(Batch::persist(job("H:x:1", "v2")))
        .await
        .unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(
        handles(&loaded),
        vec![
            Bytes::from("H:x:3"),
            Bytes::from("H:x:1"),
            Bytes::from("H:x:2")
        ]
    );
    assert_eq!(loaded[1], job("H:x:1", "v2"));
}

#[tokio::test]
async fn removal_is_idempotent_and_applied_after_writes() {
    let server = server!("removal_is_idempotent");
    let store = connect(&server, "gearbox:").await;
    store
        .commit(Batch::persist(job("H:r:1", "a")))
        .await
        .unwrap();
    store
        .commit(Batch::persist(job("H:r:2", "b")))
        .await
        .unwrap();
    store.commit(Batch::complete("H:r:1")).await.unwrap();
    store.commit(Batch::complete("H:r:1")).await.unwrap();
    store.commit(Batch::complete("H:never")).await.unwrap();
    // Written and removed in one batch: removed.
    store
        .commit(Batch {
            persist: vec![job("H:r:3", "c")],
            complete: vec![Bytes::from("H:r:3")],
        })
        .await
        .unwrap();
    assert_eq!(store.load().await.unwrap(), vec![job("H:r:2", "b")]);
    // Nothing left behind for removed jobs.
    let mut conn = raw(&server).await;
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("gearbox:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.sort();
    assert_eq!(keys, ["gearbox:job:H:r:2", "gearbox:jobs", "gearbox:seq"]);
    // An empty batch is fine and writes nothing.
    store.commit(Batch::new()).await.unwrap();
    let stats = store.stats();
    assert_eq!(stats.jobs_persisted, 3);
    assert_eq!(stats.jobs_removed, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_share_transactions() {
    let server = server!("concurrent_commits_share_transactions");
    let store = Arc::new(connect(&server, "gearbox:").await);
    let mut conn = raw(&server).await;
    let execs_before = exec_calls(&mut conn).await;
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .commit(Batch::persist(job(&format!("H:g:{i}"), "x")))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let stats = store.stats();
    let execs = exec_calls(&mut conn).await - execs_before;
    println!(
        "1000 concurrent commits: {} transactions (server counted {execs} EXEC)",
        stats.transactions
    );
    assert_eq!(stats.batches, 1000);
    assert_eq!(stats.jobs_persisted, 1000);
    assert_eq!(execs, stats.transactions);
    assert!(
        stats.transactions <= 200,
        "group commit should need far fewer than 1000 transactions, took {}",
        stats.transactions
    );
    assert_eq!(store.load().await.unwrap().len(), 1000);
}

/// How many EXEC commands the server has run (`INFO commandstats`).
async fn exec_calls(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_exec:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn a_new_store_on_the_same_prefix_sees_the_jobs_and_continues_the_order() {
    let server = server!("a_new_store_sees_the_jobs");
    let first = connect(&server, "gearbox:").await;
    first
        .commit(Batch::persist(job("H:n:2", "a")))
        .await
        .unwrap();
    first
        .commit(Batch::persist(job("H:n:1", "b")))
        .await
        .unwrap();
    drop(first);
    let second = connect(&server, "gearbox:").await;
    second
        .commit(Batch::persist(job("H:n:0", "c")))
        .await
        .unwrap();
    assert_eq!(
        second.load().await.unwrap(),
        vec![job("H:n:2", "a"), job("H:n:1", "b"), job("H:n:0", "c")]
    );
}

#[tokio::test]
async fn two_prefixes_stay_separate() {
    let server = server!("two_prefixes_stay_separate");
    let a = connect(&server, "a:").await;
    let b = connect(&server, "b:").await;
    a.commit(Batch::persist(job("H:s:1", "from a")))
        .await
        .unwrap();
    b.commit(Batch::persist(job("H:s:1", "from b")))
        .await
        .unwrap();
    b.commit(Batch::persist(job("H:s:2", "only b")))
        .await
        .unwrap();
    a.commit(Batch::complete("H:s:1")).await.unwrap();
    assert_eq!(a.load().await.unwrap(), vec![]);
    assert_eq!(
        b.load().await.unwrap(),
        vec![job("H:s:1", "from b"), job("H:s:2", "only b")]
    );
}

#[tokio::test]
async fn the_server_persistence_settings_are_reported() {
    let server = server!("persistence_settings");
    let store = connect(&server, "gearbox:").await;
    let p = store.persistence().expect("CONFIG GET is allowed");
    assert!(p.appendonly);
    assert_eq!(p.appendfsync, "always");
    assert_eq!(p.durability(), Durability::Fsync);
    assert_eq!(
        store.location(),
        format!("redis://127.0.0.1:{}/0", server.port())
    );
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_clearly() {
    let server = server!("closed_port");
    let port = server.port();
    drop(server);
    let err = RedisStore::connect(RedisOptions::new("127.0.0.1", port))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("unreachable"), "{msg}");
    assert!(
        msg.contains(&format!("redis://127.0.0.1:{port}/0")),
        "{msg}"
    );
}

#[tokio::test]
async fn a_restart_while_idle_costs_no_failed_commit() {
    let mut server = server!("restart_while_idle");
    let store = connect(&server, "gearbox:").await;
    store
        .commit(Batch::persist(job("H:i:1", "a")))
        .await
        .unwrap();
    server.restart();
    // The old connection is dead; the writer notices, reconnects once and retries.
    store
        .commit(Batch::persist(job("H:i:2", "b")))
        .await
        .unwrap();
    assert_eq!(
        store.load().await.unwrap(),
        vec![job("H:i:1", "a"), job("H:i:2", "b")]
    );
    assert_eq!(store.stats().failed_transactions, 0);
    assert_eq!(store.stats().reconnects, 1);
}

#[tokio::test]
async fn an_outage_fails_commits_clearly_and_recovery_keeps_every_acknowledged_job() {
    let mut server = server!("outage");
    let store = connect(&server, "gearbox:").await;
    let before: Vec<StoredJob> = (0..10)
        .map(|i| job(&format!("H:o:{i}"), "before"))
        .collect();
    for j in &before {
        store.commit(Batch::persist(j.clone())).await.unwrap();
    }

    server.kill();
    for i in 0..5 {
        let started = Instant::now();
        let err = store
            .commit(Batch::persist(job(&format!("H:down:{i}"), "x")))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("unreachable"), "{msg}");
        assert!(msg.contains("reconnects on its own"), "{msg}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a commit during an outage must fail fast, took {:?}",
            started.elapsed()
        );
    }
    assert!(matches!(
        store.load().await,
        Err(StoreError::Unavailable { .. })
    ));

    // Same port, same directory: Redis replays its append-only file.
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = job("H:o:after", "after");
    loop {
        match store.commit(Batch::persist(after.clone())).await {
            Ok(()) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "no recovery within 10 s: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let mut expected = before;
    expected.push(after);
    assert_eq!(store.load().await.unwrap(), expected);
    let stats = store.stats();
    assert!(stats.reconnects >= 1, "{stats:?}");
    assert!(stats.failed_transactions >= 5, "{stats:?}");

    // A brand-new store after the outage sees the same jobs.
    let fresh = connect(&server, "gearbox:").await;
    assert_eq!(fresh.load().await.unwrap(), expected);
}

#[tokio::test]
async fn a_command_failing_inside_the_transaction_is_an_error() {
    let server = server!("failing_inside_exec");
    let store = connect(&server, "gearbox:").await;
    // Another program wrote a string where our sorted set belongs.
    let mut conn = raw(&server).await;
    let () = redis::cmd("SET")
        .arg("gearbox:jobs")
        .arg("not a sorted set")
        .query_async(&mut conn)
        .await
        .unwrap();
    let err = store
        .commit(Batch::persist(job("H:w:1", "x")))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    assert_eq!(store.stats().failed_transactions, 1);
    assert_eq!(store.stats().transactions, 0);
}

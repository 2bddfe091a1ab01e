//! Importing gearmand's Redis queue, against a real `redis-server` started by the harness,
//! with keys written the way gearmand writes them (observed with Debian's gearmand 1.1.20:
//! `HMSET <prefix>-<function>-<unique> data <payload> priority <0|1|2>`). The end-to-end
//! test with gearmand itself is gearboxd's `tests/redis_gearmand.rs`.

use bytes::Bytes;
use gearbox_proto::Priority;
use gearbox_store::{Batch, HandleMaker, Store, StoreError, StoredJob};
use gearbox_store_redis::{RedisOptions, RedisStore, GEARMAND_PREFIX};
use gearbox_testkit::servers::redis::RedisServer;
use redis::aio::MultiplexedConnection;

async fn connect(server: &RedisServer) -> RedisStore {
    RedisStore::connect(RedisOptions::new("127.0.0.1", server.port()))
        .await
        .expect("connect to the test redis-server")
}

async fn raw(server: &RedisServer) -> MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{}/", server.port()))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// A store that holds one job of ours, `handle` with payload `data` for function `mine`.
async fn holding(server: &RedisServer, handle: &'static str, data: &'static str) -> RedisStore {
    let store = connect(server).await;
    let job = StoredJob::new(handle, "mine", data);
    store.commit(Batch::persist(job)).await.unwrap();
    store
}

/// Handles `I:1`, `I:2`...
fn handles() -> HandleMaker {
    let mut n = 0;
    Box::new(move || {
        n += 1;
        Bytes::from(format!("I:{n}"))
    })
}

/// What gearmand 1.1.20 writes for a background job.
async fn gearmand_job(conn: &mut MultiplexedConnection, key: &str, data: &[u8], priority: u8) {
    redis::cmd("HSET")
        .arg(key)
        .arg("data")
        .arg(data)
        .arg("priority")
        .arg(priority.to_string())
        .exec_async(conn)
        .await
        .unwrap();
}

/// Runs `name key args...`.
async fn run(conn: &mut MultiplexedConnection, name: &str, key: &str, args: &[&str]) {
    redis::cmd(name)
        .arg(key)
        .arg(args)
        .exec_async(conn)
        .await
        .unwrap();
}

async fn keys(conn: &mut MultiplexedConnection, pattern: &str) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query_async(conn)
        .await
        .unwrap();
    keys.sort();
    keys
}

fn summary(jobs: &[StoredJob]) -> Vec<(String, String, String, Priority, Vec<u8>)> {
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    jobs.iter()
        .map(|j| {
            let (h, f, u) = (text(&j.handle), text(&j.function), text(&j.unique));
            (h, f, u, j.priority, j.data.to_vec())
        })
        .collect()
}

#[tokio::test]
async fn gearmands_queue_moves_into_our_keys_and_other_keys_stay() {
    let Some(server) = RedisServer::start("gearmands_queue_moves_into_our_keys") else {
        return;
    };
    let mut conn = raw(&server).await;
    gearmand_job(&mut conn, "_gear_-resize-a-b-c", b"\0bin\xff", 2).await;
    gearmand_job(&mut conn, "_gear_-resize-u1", b"urgent", 0).await;
    // A newer gearmand names the function (with a dash) and unique in the hash.
    let fields = [
        "data", "hi", "priority", "1", "function", "mail-x", "unique", "u2",
    ];
    run(&mut conn, "HSET", "_gear_-mail-x-u2", &fields).await;
    // gearmand 1.1.15 and older: a string, a normal job.
    run(&mut conn, "SET", "_gear_-old-u3", &["legacy"]).await;
    // Not gearmand's jobs: left alone.
    run(&mut conn, "SET", "_gear_settings", &["x"]).await;
    run(&mut conn, "RPUSH", "_gear_-list-u4", &["x"]).await;
    gearmand_job(&mut conn, "_gear_-nodash", b"x", 1).await;
    run(&mut conn, "HSET", "_gear_-f-u5", &["data", "no priority"]).await;
    gearmand_job(&mut conn, "other-f-u6", b"another prefix", 1).await;

    let store = holding(&server, "H:ours:1", "kept").await;
    let moved = store
        .import_gearmand(GEARMAND_PREFIX, handles())
        .await
        .unwrap();
    assert_eq!(moved, 4);
    let stats = store.stats();
    assert_eq!((stats.transactions, stats.jobs_persisted), (2, 5));
    // Ours first (replay order), then gearmand's in key order, with new handles.
    let loaded = summary(&store.load().await.unwrap());
    let job =
        |h: &str, f: &str, u: &str, p, d: &[u8]| (h.into(), f.into(), u.into(), p, d.to_vec());
    assert_eq!(
        loaded,
        [
            job("H:ours:1", "mine", "", Priority::Normal, b"kept"),
            job("I:1", "mail-x", "u2", Priority::Normal, b"hi"),
            job("I:2", "old", "u3", Priority::Normal, b"legacy"),
            job("I:3", "resize", "a-b-c", Priority::Low, b"\0bin\xff"),
            job("I:4", "resize", "u1", Priority::High, b"urgent"),
        ]
    );
    assert_eq!(
        keys(&mut conn, "_gear_*").await,
        [
            "_gear_-f-u5",
            "_gear_-list-u4",
            "_gear_-nodash",
            "_gear_settings"
        ]
    );
    assert_eq!(keys(&mut conn, "other*").await, ["other-f-u6"]);
    // Nothing more the second time.
    let again = store.import_gearmand(GEARMAND_PREFIX, handles()).await;
    assert_eq!(again.unwrap(), 0);
    assert_eq!(store.load().await.unwrap().len(), 5);
}

#[tokio::test]
async fn a_queue_larger_than_a_transaction_moves_each_job_once() {
    let Some(server) = RedisServer::start("a_queue_larger_than_a_transaction") else {
        return;
    };
    let mut conn = raw(&server).await;
    let count = 1234;
    let mut pipe = redis::pipe();
    for i in 0..count {
        pipe.cmd("HSET")
            .arg(format!("gm:p-work-{i:05}"))
            .arg(&[("data", format!("job {i}")), ("priority", "1".into())])
            .ignore();
    }
    pipe.exec_async(&mut conn).await.unwrap();
    let store = connect(&server).await;
    assert_eq!(
        store.import_gearmand("gm:p", handles()).await.unwrap(),
        count
    );
    let loaded = store.load().await.unwrap();
    let uniques: Vec<String> = loaded
        .iter()
        .map(|j| String::from_utf8_lossy(&j.unique).into_owned())
        .collect();
    let want: Vec<String> = (0..count).map(|i| format!("{i:05}")).collect();
    assert_eq!(uniques, want);
    assert!(keys(&mut conn, "gm:p*").await.is_empty());
}

#[tokio::test]
async fn a_new_handle_already_stored_moves_nothing() {
    let Some(server) = RedisServer::start("a_new_handle_already_stored") else {
        return;
    };
    let mut conn = raw(&server).await;
    gearmand_job(&mut conn, "_gear_-f-u1", b"one", 1).await;
    gearmand_job(&mut conn, "_gear_-f-u2", b"two", 1).await;
    let store = holding(&server, "I:2", "x").await;
    let err = store
        .import_gearmand(GEARMAND_PREFIX, handles())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(
        cause.contains("I:2") && cause.contains("already stored"),
        "{cause}"
    );
    assert_eq!(
        keys(&mut conn, "_gear_*").await,
        ["_gear_-f-u1", "_gear_-f-u2"]
    );
    assert_eq!(summary(&store.load().await.unwrap()).len(), 1);
    // The store still works (no WATCH left behind).
    store
        .commit(Batch::persist(StoredJob::new("H:2", "mine", "y")))
        .await
        .unwrap();
}

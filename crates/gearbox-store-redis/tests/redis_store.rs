//! What only the Redis store does, against a real `redis-server` started by the harness. What
//! every store does is checked by gearbox-testkit's conformance suite
//! (`tests/store_conformance.rs`).

use gearbox_store::{Batch, Durability, Store, StoreError, StoredJob};
use gearbox_store_redis::{RedisOptions, RedisStore};
use gearbox_testkit::servers::redis::RedisServer;

async fn connect(server: &RedisServer) -> RedisStore {
    RedisStore::connect(RedisOptions::new("127.0.0.1", server.port()))
        .await
        .expect("connect to the test redis-server")
}

#[tokio::test]
async fn the_server_persistence_settings_are_reported() {
    let Some(server) = RedisServer::start("persistence_settings") else {
        return;
    };
    let store = connect(&server).await;
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
async fn a_command_failing_inside_the_transaction_is_an_error() {
    let Some(server) = RedisServer::start("failing_inside_exec") else {
        return;
    };
    let store = connect(&server).await;
    // Another program wrote a string where our sorted set belongs.
    let mut conn = redis::Client::open(format!("redis://127.0.0.1:{}/", server.port()))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = redis::cmd("SET")
        .arg("gearbox:jobs")
        .arg("not a sorted set")
        .query_async(&mut conn)
        .await
        .unwrap();
    let job = StoredJob::new("H:w:1", "reverse", "x");
    let err = store.commit(Batch::persist(job)).await.unwrap_err();
    assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    assert_eq!(store.stats().failed_transactions, 1);
    assert_eq!(store.stats().transactions, 0);
}

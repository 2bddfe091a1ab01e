//! The import's transactions against a real `redis-server`, with another connection (as
//! gearmand would) changing gearmand's keys between the read and the transaction.

use bytes::Bytes;
use gearbox_testkit::servers::redis::RedisServer;

use super::*;

async fn connect(server: &RedisServer) -> MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{}/", server.port()))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn exists(conn: &mut MultiplexedConnection, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query_async(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn keys_changed_while_moving_are_read_again() {
    let Some(server) = RedisServer::start("keys_changed_while_moving_are_read_again") else {
        return;
    };
    let mut conn = connect(&server).await;
    // Another connection, as gearmand's.
    let mut gearmand = connect(&server).await;
    for unique in ["u1", "u2"] {
        redis::cmd("HSET")
            .arg(format!("_gear_-f-{unique}"))
            .arg(&[("data", "old"), ("priority", "1")])
            .exec_async(&mut gearmand)
            .await
            .unwrap();
    }
    let keys = Keys::new(b"gearbox:");
    let start = gearmand::key_start(b"_gear_");
    let mover = Mover {
        keys: &keys,
        start: &start,
        prefix: "_gear_",
        location: "test",
    };
    let mut n = 0;
    let mut make: HandleMaker = Box::new(move || {
        n += 1;
        Bytes::from(format!("H:{n}"))
    });
    let chunk = vec![b"_gear_-f-u1".to_vec(), b"_gear_-f-u2".to_vec()];
    let Ok(ready) = mover.prepare(&mut conn, &chunk, &mut make).await.unwrap() else {
        panic!("two jobs to move");
    };
    // gearmand changes one job and finishes the other meanwhile.
    redis::cmd("HSET")
        .arg("_gear_-f-u1")
        .arg(&[("data", "new")])
        .exec_async(&mut gearmand)
        .await
        .unwrap();
    redis::cmd("DEL")
        .arg("_gear_-f-u2")
        .exec_async(&mut gearmand)
        .await
        .unwrap();
    let outcome = mover.commit(&mut conn, ready).await.unwrap();
    assert!(matches!(outcome, Outcome::Changed));
    assert!(exists(&mut conn, "_gear_-f-u1").await);
    let stored: u64 = redis::cmd("ZCARD")
        .arg("gearbox:jobs")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing written");
    // The next try moves what is there now: the changed job, not the finished one.
    let mut left = Left::default();
    let moved = mover.attempt(&mut conn, &chunk, &mut make, &mut left).await;
    assert_eq!(moved.unwrap(), 1);
    assert_eq!(left.count, 0);
    assert!(!exists(&mut conn, "_gear_-f-u1").await);
    let data: String = redis::cmd("HGET")
        .arg("gearbox:job:H:3")
        .arg("data")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(data, "new");
}

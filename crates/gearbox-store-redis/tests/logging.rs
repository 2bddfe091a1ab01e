//! An outage is logged once when it starts and once when it ends, not once per commit.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gearbox_store::{Batch, Store, StoredJob};
use gearbox_store_redis::{RedisOptions, RedisStore};
use gearbox_testkit::servers::redis::RedisServer;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn count(&self, needle: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }
}

// A current-thread runtime: the store's writer task runs on this thread and so logs to the
// subscriber set for it.
#[tokio::test]
async fn an_outage_is_logged_once_and_its_end_once() {
    let Some(mut server) = RedisServer::start("an_outage_is_logged_once") else {
        return;
    };
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let store = RedisStore::connect(
        RedisOptions::new("127.0.0.1", server.port()).max_backoff(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let job = |i: usize| StoredJob::new(format!("H:l:{i}"), "f", "d");
    store.commit(Batch::persist(job(0))).await.unwrap();

    server.kill();
    for i in 1..=50 {
        assert!(store.commit(Batch::persist(job(i))).await.is_err());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.commit(Batch::persist(job(99))).await.is_err() {
        assert!(Instant::now() < deadline, "no recovery within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for i in 100..110 {
        store.commit(Batch::persist(job(i))).await.unwrap();
    }

    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert_eq!(captured.count("job store failed"), 1, "{log}");
    assert_eq!(
        captured.count("reconnected") + captured.count("recovered"),
        1,
        "{log}"
    );
    assert_eq!(captured.count("ERROR"), 1, "{log}");
}

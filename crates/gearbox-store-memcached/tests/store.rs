//! What the conformance suite does not cover, against Debian's memcached: records are read
//! by number (a memcached that lists no keys still gives gearbox's jobs back), an evicted
//! counter overwrites nothing, and a record whose gearmand item is gone (gearmand finished
//! the job) is dropped. Skipped with a printed reason when memcached is missing (a failure
//! with CI=true).

use std::sync::Arc;

use bytes::Bytes;
use gearbox_store::{Batch, Store, StoredJob};
use gearbox_store_memcached::{MemcachedOptions, MemcachedStore};
use gearbox_testkit::servers::memcached::Memcached;

async fn open(server: &Memcached) -> Arc<dyn Store> {
    let options = MemcachedOptions::new(&server.address()).unwrap();
    Arc::new(MemcachedStore::connect(options).await.unwrap())
}

/// Job `n` of function `work`, unique `u<n>`: written in gearmand's format too.
fn job(n: usize) -> StoredJob {
    let mut j = StoredJob::new(format!("H:t:{n}"), "work", format!("data {n}"));
    j.unique = Bytes::from(format!("u{n}"));
    j
}

/// A job gearmand's format cannot hold (no unique id): only in gearbox's record.
fn inline(n: usize) -> StoredJob {
    StoredJob::new(format!("H:t:{n}"), "work", format!("inline {n}"))
}

fn handles(jobs: &[StoredJob]) -> Vec<String> {
    jobs.iter()
        .map(|j| String::from_utf8_lossy(&j.handle).into_owned())
        .collect()
}

#[tokio::test]
async fn records_are_read_by_number_even_when_memcached_lists_no_keys() {
    let test = "records_are_read_by_number_even_when_memcached_lists_no_keys";
    // -X: no `lru_crawler metadump` (nor `stats cachedump`).
    let Some(server) = Memcached::start_with(test, &["-M", "-X"]) else {
        return;
    };
    let store = open(&server).await;
    for j in [job(1), inline(2), job(3)] {
        store.commit(Batch::persist(j)).await.unwrap();
    }
    store.commit(Batch::complete("H:t:1")).await.unwrap();
    store.close().await;
    let loaded = open(&server).await.load().await.unwrap();
    assert_eq!(loaded, [inline(2), job(3)]);
}

#[tokio::test]
async fn an_evicted_counter_overwrites_no_record() {
    let Some(server) = Memcached::start("an_evicted_counter_overwrites_no_record") else {
        return;
    };
    let store = open(&server).await;
    store.commit(Batch::persist(job(1))).await.unwrap();
    store.commit(Batch::persist(inline(2))).await.unwrap();
    assert!(server.delete("gear_~gb~seq"), "{:?}", server.keys());
    store.commit(Batch::persist(job(3))).await.unwrap();
    store.close().await;
    // A new process whose counter is gone too: the listing finds the records past it.
    assert!(server.delete("gear_~gb~seq"));
    let loaded = open(&server).await.load().await.unwrap();
    assert_eq!(handles(&loaded), ["H:t:1", "H:t:2", "H:t:3"]);
    assert_eq!(loaded[2], job(3));
}

#[tokio::test]
async fn a_job_gearmand_finished_is_dropped_with_its_record() {
    let test = "a_job_gearmand_finished_is_dropped_with_its_record";
    let Some(server) = Memcached::start(test) else {
        return;
    };
    let store = open(&server).await;
    store.commit(Batch::persist(job(1))).await.unwrap();
    store.commit(Batch::persist(job(2))).await.unwrap();
    store.close().await;
    // gearmand ran job 1 and deleted its item, as its libmemcached queue does.
    assert!(server.delete("gear_work-u1"));
    let loaded = open(&server).await.load().await.unwrap();
    assert_eq!(loaded, [job(2)]);
    let keys = server.keys();
    assert!(!keys.contains(&"gear_~gb~1".to_owned()), "{keys:?}");
    assert!(keys.contains(&"gear_~gb~2".to_owned()), "{keys:?}");
}

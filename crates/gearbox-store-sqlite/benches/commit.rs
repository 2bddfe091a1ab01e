//! Durable commits of batches of 1, 16 and 256 jobs, one after the other as gearbox-server's
//! persister makes them (per job: the cost of a commit shared by the batch), and the start-up
//! replay of 100,000 stored jobs.
//!
//! Run with `cargo bench -p gearbox-store-sqlite --bench commit`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gearbox_store::sql::DEFAULT_TABLE;
use gearbox_store::{Batch, Durability, Store, StoredJob};
use gearbox_store_sqlite::SqliteStore;

fn job(n: u64) -> StoredJob {
    let mut job = StoredJob::new(format!("H:bench:{n}"), "resize_image", vec![b'x'; 128]);
    job.unique = format!("unique-{n}").into();
    job
}

/// Commits `total` jobs in batches of `batch_size`, one commit after the other (as
/// gearbox-server's persister does); returns the wall time.
async fn run(store: &SqliteStore, next: &AtomicU64, batch_size: u64, total: u64) -> Duration {
    let started = Instant::now();
    let mut left = total;
    while left > 0 {
        let n = left.min(batch_size);
        let first = next.fetch_add(n, Ordering::Relaxed);
        let batch = Batch {
            persist: (first..first + n).map(job).collect(),
            complete: vec![],
        };
        store.commit(batch).await.unwrap();
        left -= n;
    }
    started.elapsed()
}

fn commits(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for durability in [Durability::Fsync, Durability::Normal] {
        let mut group = c.benchmark_group(format!("commit_{durability}"));
        group.throughput(Throughput::Elements(1));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(5));
        for batch_size in [1u64, 16, 256] {
            let dir = tempfile::tempdir().unwrap();
            let store = rt
                .block_on(SqliteStore::open(
                    dir.path().join("jobs.db"),
                    DEFAULT_TABLE,
                    durability,
                ))
                .unwrap();
            let store = Arc::new(store);
            let next = Arc::new(AtomicU64::new(0));
            group.bench_with_input(
                BenchmarkId::from_parameter(batch_size),
                &batch_size,
                |b, &n| {
                    b.to_async(&rt).iter_custom(|iters| {
                        let (store, next) = (store.clone(), next.clone());
                        async move { run(&store, &next, n, iters.max(n)).await }
                    })
                },
            );
        }
        group.finish();
    }
}

fn load(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = rt
        .block_on(SqliteStore::open(
            dir.path().join("jobs.db"),
            DEFAULT_TABLE,
            Durability::Normal,
        ))
        .unwrap();
    rt.block_on(async {
        for chunk in 0..100u64 {
            let persist = (chunk * 1000..(chunk + 1) * 1000).map(job).collect();
            store
                .commit(Batch {
                    persist,
                    complete: vec![],
                })
                .await
                .unwrap();
        }
    });
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.throughput(Throughput::Elements(100_000));
    group.bench_function("100000_jobs", |b| {
        b.to_async(&rt).iter(|| async {
            let jobs = store.load().await.unwrap();
            assert_eq!(jobs.len(), 100_000);
            jobs
        })
    });
    group.finish();
}

criterion_group!(benches, commits, load);
criterion_main!(benches);

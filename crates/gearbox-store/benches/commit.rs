//! Durable commits with 1, 16 and 256 concurrent committers (each waits for its own commit
//! before the next, as a client waits for JOB_CREATED), and the start-up replay of 100,000
//! stored jobs.
//!
//! Run with `cargo bench -p gearbox-store --bench commit`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gearbox_store::{Batch, Durability, SqliteStore, Store, StoredJob, DEFAULT_TABLE};

fn job(n: u64) -> StoredJob {
    let mut job = StoredJob::new(format!("H:bench:{n}"), "resize_image", vec![b'x'; 128]);
    job.unique = format!("unique-{n}").into();
    job
}

/// `committers` tasks share `total` single-job commits; returns the wall time.
async fn run(
    store: &Arc<SqliteStore>,
    next: &Arc<AtomicU64>,
    committers: u64,
    total: u64,
) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..committers)
        .map(|i| {
            let store = store.clone();
            let next = next.clone();
            let share = total / committers + u64::from(i < total % committers);
            tokio::spawn(async move {
                for _ in 0..share {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    store.commit(Batch::persist(job(n))).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
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
        for committers in [1u64, 16, 256] {
            let dir = tempfile::tempdir().unwrap();
            let store =
                SqliteStore::open(dir.path().join("jobs.db"), DEFAULT_TABLE, durability).unwrap();
            let store = Arc::new(store);
            let next = Arc::new(AtomicU64::new(0));
            group.bench_with_input(
                BenchmarkId::from_parameter(committers),
                &committers,
                |b, &n| {
                    b.to_async(&rt).iter_custom(|iters| {
                        let (store, next) = (store.clone(), next.clone());
                        async move { run(&store, &next, n, iters.max(n)).await }
                    })
                },
            );
            let stats = store.stats();
            eprintln!(
                "{durability}, {committers} committers: {} commits in {} transactions ({:.1} per transaction)",
                stats.batches,
                stats.transactions,
                stats.batches as f64 / stats.transactions.max(1) as f64
            );
        }
        group.finish();
    }
}

fn load(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path().join("jobs.db"),
        DEFAULT_TABLE,
        Durability::Normal,
    )
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

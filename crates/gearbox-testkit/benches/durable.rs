//! Durability costs, measured end to end on an in-process server:
//!
//! - `submit_bg/<store>/<clients>`: background submits from many concurrent raw clients, each
//!   waiting for its JOB_CREATED (so every acknowledged job is committed), for the memory queue
//!   and the SQLite store with `fsync` durability. Group commit makes the durable rate grow
//!   with the number of clients. The server backends join when given a server to use:
//!   `GEARBOX_BENCH_POSTGRES` (a conninfo or postgres:// URL), `GEARBOX_BENCH_REDIS`
//!   (`host:port`) and `GEARBOX_BENCH_MYSQL` (a mysql:// URL); each run uses a fresh table or
//!   key prefix.
//! - `replay/100000`: start-up with 100,000 stored jobs, from `run_with_store` being called to
//!   the first client's echo being answered (load from SQLite plus replay into the core).
//!
//! `cargo bench -p gearbox-testkit --bench durable`

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gearbox_proto::{Priority, Request, Response, SubmitJob};
use gearbox_server::{Config, ShutdownMode};
use gearbox_store::sql::DEFAULT_TABLE;
use gearbox_store::{Batch, Durability, Store, StoredJob};
use gearbox_store_sqlite::SqliteStore;
use gearbox_testkit::TestServer;

const PER_CLIENT: usize = 200;

fn submit(i: usize) -> Request {
    Request::Submit(SubmitJob {
        function: Bytes::from_static(b"bench"),
        unique: Bytes::new(),
        data: Bytes::from(format!("payload-{i:08}-{}", "x".repeat(80))),
        priority: Priority::Normal,
        background: true,
    })
}

async fn load(server: &TestServer, clients: usize) {
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut conn = server.connect().await;
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_CLIENT {
                conn.send(&submit(c * PER_CLIENT + i)).await;
                assert!(matches!(conn.recv().await, Response::JobCreated { .. }));
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
}

fn submit_bg(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("submit_bg");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for clients in [1, 16, 64] {
        group.throughput(Throughput::Elements((clients * PER_CLIENT) as u64));
        group.bench_with_input(BenchmarkId::new("memory", clients), &clients, |b, &n| {
            b.to_async(&rt).iter_custom(|iters| async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let server = TestServer::start().await;
                    let start = Instant::now();
                    load(&server, n).await;
                    total += start.elapsed();
                    server.stop(ShutdownMode::Immediate).await;
                }
                total
            });
        });
        for (name, _) in server_backends() {
            group.bench_with_input(BenchmarkId::new(name, clients), &clients, |b, &n| {
                b.to_async(&rt).iter_custom(|iters| async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let store = open_server_backend(name).await;
                        let server = TestServer::start_with_store(Config::default(), store).await;
                        let start = Instant::now();
                        load(&server, n).await;
                        total += start.elapsed();
                        server.stop(ShutdownMode::Immediate).await;
                    }
                    total
                });
            });
        }
        group.bench_with_input(
            BenchmarkId::new("sqlite-fsync", clients),
            &clients,
            |b, &n| {
                b.to_async(&rt).iter_custom(|iters| async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let dir = tempfile::tempdir().expect("temp dir");
                        let store = SqliteStore::open(
                            dir.path().join("b.sqlite"),
                            DEFAULT_TABLE,
                            Durability::Fsync,
                        )
                        .await
                        .expect("open store");
                        let server =
                            TestServer::start_with_store(Config::default(), Arc::new(store)).await;
                        let start = Instant::now();
                        load(&server, n).await;
                        total += start.elapsed();
                        server.stop(ShutdownMode::Immediate).await;
                    }
                    total
                });
            },
        );
    }
    group.finish();
}

/// The server backends configured through the environment, by benchmark name.
fn server_backends() -> Vec<(&'static str, String)> {
    [
        ("postgres", "GEARBOX_BENCH_POSTGRES"),
        ("redis", "GEARBOX_BENCH_REDIS"),
        ("mysql", "GEARBOX_BENCH_MYSQL"),
    ]
    .into_iter()
    .filter_map(|(name, var)| std::env::var(var).ok().map(|v| (name, v)))
    .collect()
}

/// A fresh table (or key prefix) on the configured server of backend `name`.
async fn open_server_backend(name: &str) -> Arc<dyn Store> {
    static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let table = format!("bench_{}_{run}", std::process::id());
    let (_, target) = server_backends()
        .into_iter()
        .find(|(n, _)| *n == name)
        .expect("configured backend");
    match name {
        "postgres" => Arc::new(
            gearbox_store_postgres::PostgresStore::connect(&target, &table, Durability::Fsync)
                .await
                .expect("connect to PostgreSQL"),
        ),
        "mysql" => Arc::new(
            gearbox_store_mysql::MysqlStore::connect(target.as_str(), &table, Durability::Fsync)
                .await
                .expect("connect to MySQL"),
        ),
        _ => {
            let (host, port) = target
                .rsplit_once(':')
                .expect("GEARBOX_BENCH_REDIS is host:port");
            let options = gearbox_store_redis::RedisOptions::new(host, port.parse().expect("port"))
                .prefix(format!("{table}:"));
            Arc::new(
                gearbox_store_redis::RedisStore::connect(options)
                    .await
                    .expect("connect to Redis"),
            )
        }
    }
}

fn replay(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("replay.sqlite");
    const JOBS: usize = 100_000;
    rt.block_on(async {
        let store = SqliteStore::open(&path, DEFAULT_TABLE, Durability::Normal)
            .await
            .expect("open");
        let mut batch = Batch::new();
        for i in 0..JOBS {
            let mut job = StoredJob::new(
                format!("H:bench:{}", i + 1),
                "bench",
                format!("payload-{i}"),
            );
            job.unique = Bytes::from(format!("u{i}"));
            batch.persist.push(job);
        }
        store.commit(batch).await.expect("fill");
        store.close().await;
    });
    let mut group = c.benchmark_group("replay");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(JOBS as u64));
    group.bench_function(BenchmarkId::from_parameter(JOBS), |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let path = path.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let store = SqliteStore::open(&path, DEFAULT_TABLE, Durability::Normal)
                        .await
                        .expect("open");
                    let start = Instant::now();
                    let server =
                        TestServer::start_with_store(Config::default(), Arc::new(store)).await;
                    let mut c = server.connect().await;
                    c.assert_quiet().await;
                    total += start.elapsed();
                    server.stop(ShutdownMode::Immediate).await;
                }
                total
            }
        });
    });
    group.finish();
}

criterion_group!(benches, submit_bg, replay);
criterion_main!(benches);

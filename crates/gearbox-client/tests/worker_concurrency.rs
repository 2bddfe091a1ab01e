//! Concurrency: a worker runs up to N jobs at once in total, proven by handlers that wait at
//! a barrier of N (they can only finish when N run together) while counting the most running
//! at once (never above N); one worker serves several servers under one shared limit.

mod worker_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use gearbox_client::worker::{Job, JobError, Worker};
use tokio::sync::Barrier;
use worker_support::{b, builder, complete, on_both_servers, spawn, Server};

/// Counts jobs running at once and remembers the most.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Gauge {
    fn enter(&self) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

/// A worker for `servers` whose `meet` handler waits until `n` jobs are running together.
fn meeting_worker(servers: &str, n: usize, gauge: Arc<Gauge>) -> Worker {
    let barrier = Arc::new(Barrier::new(n));
    builder(servers)
        .concurrency(n)
        .register("meet", move |job: Job| {
            let (barrier, gauge) = (barrier.clone(), gauge.clone());
            async move {
                gauge.enter();
                barrier.wait().await;
                gauge.leave();
                Ok::<_, JobError>(job.payload().clone())
            }
        })
        .build()
        .expect("worker builds")
}

/// Runs `meet` jobs `payloads` at once on `server`, each from its own client connection, and
/// checks every result.
async fn meet_all(server: &Server, payloads: &[&str]) {
    let jobs = payloads.iter().map(|p| async move {
        assert_eq!(complete(server, "meet", p).await, b(p), "{}", server.name());
    });
    futures::future::join_all(jobs).await;
}

on_both_servers!(
    runs_n_jobs_at_once_and_never_more,
    default_runs_one_at_a_time
);

async fn runs_n_jobs_at_once_and_never_more(server: Server) {
    let gauge = Arc::new(Gauge::default());
    let w = spawn(meeting_worker(&server.list(), 3, gauge.clone()));
    // Two rounds of three: each round can only pass the barrier with three jobs running.
    meet_all(&server, &["1", "2", "3", "4", "5", "6"]).await;
    assert_eq!(gauge.max(), 3, "{}", server.name());
    assert!(w.stop().await.is_clean());
}

async fn default_runs_one_at_a_time(server: Server) {
    let gauge = Arc::new(Gauge::default());
    let g = gauge.clone();
    let worker = builder(&server.list())
        .register("count", move |_job: Job| {
            let g = g.clone();
            async move {
                g.enter();
                tokio::task::yield_now().await;
                g.leave();
                Ok::<_, JobError>("")
            }
        })
        .build()
        .expect("worker builds");
    let w = spawn(worker);
    let jobs = (0..4).map(|_| complete(&server, "count", ""));
    futures::future::join_all(jobs).await;
    assert_eq!(gauge.max(), 1);
    w.stop().await;
}

/// One worker on two servers, limit 2 in total: two jobs on each server all complete, in
/// pairs (the barrier), and never more than two run at once.
async fn limit_is_shared_by_servers(a: Server, b: Server) {
    let gauge = Arc::new(Gauge::default());
    let servers = format!("{},{}", a.list(), b.list());
    let w = spawn(meeting_worker(&servers, 2, gauge.clone()));
    futures::future::join(meet_all(&a, &["a1", "a2"]), meet_all(&b, &["b1", "b2"])).await;
    assert_eq!(gauge.max(), 2);
    assert!(w.stop().await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gearbox_servers_share_the_limit() {
    limit_is_shared_by_servers(Server::gearbox().await, Server::gearbox().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gearbox_and_gearmand_share_the_limit() {
    let Some(gearmand) = Server::gearmand().await else {
        return;
    };
    limit_is_shared_by_servers(Server::gearbox().await, gearmand).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_on_every_server_are_served() {
    let (a, b) = (Server::gearbox().await, Server::gearbox().await);
    let worker = builder(&format!("{},{}", a.list(), b.list()))
        .register("where", |job: Job| async move {
            Ok::<_, JobError>(job.server().to_string())
        })
        .build()
        .expect("worker builds");
    let w = spawn(worker);
    assert_eq!(complete(&a, "where", "").await, a.list());
    assert_eq!(complete(&b, "where", "").await, b.list());
    w.stop().await;
}

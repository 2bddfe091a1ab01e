//! A worker's life: graceful shutdown (a running job finishes and is counted; one that does
//! not finish in time is abandoned and re-queued by the server), CAN_DO_TIMEOUT, reconnecting
//! after a server restart, starting before the server, giving up, periodic hooks.

mod worker_support;

use std::time::Duration;

use gearbox_client::worker::{Job, JobError, StopReason, Worker};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};
use worker_support::{
    assert_saw, b, builder, complete, expect_job, on_both_servers, spawn, submit, until_done,
};
use worker_support::{Server, Work, WAIT};

/// Waits for a handler's "started" message.
async fn started(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("handler starts in time")
        .expect("handler channel open")
}

/// A worker whose only handler, for `function`, answers every job with `result`.
fn answering(server: &Server, function: &str, result: &'static str) -> Worker {
    builder(&server.list())
        .register(function, move |_job: Job| async move {
            Ok::<_, JobError>(result)
        })
        .build()
        .expect("worker builds")
}

on_both_servers!(
    shutdown_lets_the_running_job_finish_and_takes_no_more,
    shutdown_timeout_abandons_and_the_server_requeues,
);

async fn shutdown_lets_the_running_job_finish_and_takes_no_more(server: Server) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let worker = builder(&server.list())
        .register("long", move |job: Job| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(String::from_utf8_lossy(job.payload()).into_owned());
                // Finish only once the worker is shutting down.
                job.stopping().await;
                assert!(job.is_stopping());
                Ok::<_, JobError>(format!("{} finished", job.payload_str()?))
            }
        })
        .build()
        .expect("worker builds");
    let mut w = spawn(worker);
    let mut first = server.connect().await;
    let h1 = submit(&mut first, "long", "one").await;
    assert_eq!(started(&mut rx).await, "one");
    // Queued while the only permit is taken: it must not be started after the stop.
    let mut second = server.connect().await;
    let h2 = submit(&mut second, "long", "two").await;
    w.request_stop();
    let seen = until_done(&mut first).await;
    assert_saw(&server, &h1, seen, &[Work::Complete("one finished")]);
    assert_eq!(
        w.join().await,
        StopReason::Requested {
            finished: 1,
            abandoned: 0
        }
    );
    assert!(rx.try_recv().is_err(), "the second job was not started");
    let mut admin = server.connect().await;
    let status = admin.admin_list("status").await;
    assert!(
        status.contains("long\t1\t0\t"),
        "{}: {status:?}",
        server.name()
    );

    // A new worker takes it.
    let w = spawn(answering(&server, "long", "by the next worker"));
    let seen = until_done(&mut second).await;
    assert_saw(&server, &h2, seen, &[Work::Complete("by the next worker")]);
    w.stop().await;
}

async fn shutdown_timeout_abandons_and_the_server_requeues(server: Server) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let worker = builder(&server.list())
        .shutdown_timeout(Duration::from_millis(100))
        .register("stuck", move |job: Job| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(String::new());
                std::future::pending::<()>().await;
                Ok::<_, JobError>(job.payload().clone())
            }
        })
        .build()
        .expect("worker builds");
    let w = spawn(worker);
    let mut client = server.connect().await;
    let h = submit(&mut client, "stuck", "x").await;
    started(&mut rx).await;
    assert_eq!(
        w.stop().await,
        StopReason::Requested {
            finished: 0,
            abandoned: 1
        }
    );
    // The closed connection gave the job back to the queue; the client is still waiting.
    let w = spawn(answering(&server, "stuck", "second try"));
    let seen = until_done(&mut client).await;
    assert_saw(&server, &h, seen, &[Work::Complete("second try")]);
    w.stop().await;
}

/// A handler registered with a timeout that it overruns, held until `gate` opens.
fn slow_worker(server: &Server, gate: Arc<Notify>) -> gearbox_client::worker::Worker {
    builder(&server.list())
        .concurrency(2)
        .register_with_timeout("slow", Duration::from_millis(300), move |_job: Job| {
            let gate = gate.clone();
            async move {
                gate.notified().await;
                Ok::<_, JobError>("too late")
            }
        })
        .register("quick", |_job: Job| async { Ok::<_, JobError>("quick") })
        .build()
        .expect("worker builds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn can_do_timeout_fails_an_overrunning_job_on_gearbox() {
    // gearbox's default timeout_action is `fail`.
    let server = Server::gearbox().await;
    can_do_timeout_fails_an_overrunning_job(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn can_do_timeout_fails_an_overrunning_job_on_gearmand() {
    // gearmand re-queues on expiry, counting an attempt; with one attempt allowed the job
    // then fails.
    let Some(server) = Server::gearmand_with(&["--job-retries", "1"]).await else {
        return;
    };
    can_do_timeout_fails_an_overrunning_job(server).await;
}

async fn can_do_timeout_fails_an_overrunning_job(server: Server) {
    let gate = Arc::new(Notify::new());
    let w = spawn(slow_worker(&server, gate.clone()));
    expect_job(&server, "slow", "", &[Work::Fail]).await;
    // The late result is refused by the server (logged); the worker serves on.
    gate.notify_one();
    assert_eq!(complete(&server, "quick", "").await, b("quick"));
    w.stop().await;
}

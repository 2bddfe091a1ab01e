//! The blocking worker on gearbox and gearmand: plain closures on blocking threads, updates in
//! order, exceptions, panics, N handlers at once, and stopping through a channel.

mod worker_support;

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;

use gearbox_client::blocking::worker::{Job, Worker};
use gearbox_client::worker::{JobError, StopReason};
use worker_support::{
    b, complete, expect_job, expect_job_with_exceptions, on_both_servers, Server, Work, WAIT,
};

/// A blocking worker on its own thread, stopped through a channel.
struct Blocking {
    stop: Option<mpsc::Sender<()>>,
    thread: JoinHandle<gearbox_client::Result<StopReason>>,
}

impl Blocking {
    fn start(servers: String) -> Blocking {
        let (stop, stopped) = mpsc::channel();
        let meet = Arc::new(Barrier::new(2));
        let thread = std::thread::spawn(move || {
            let worker = Worker::builder()
                .servers(&servers)
                .concurrency(2)
                .register("upper", |job: &Job| {
                    job.send_data("chunk")?;
                    job.send_status(1, 2)?;
                    job.send_warning("careful")?;
                    Ok::<_, JobError>(job.payload_str()?.to_uppercase())
                })
                .register("raise", |_job: &Job| {
                    Err::<String, _>(JobError::exception("blocking boom"))
                })
                .register("panic", |_job: &Job| -> Result<String, JobError> {
                    panic!("blocking handler panicked on purpose")
                })
                .register("meet", move |job: &Job| {
                    // Both handlers must run at once to pass.
                    meet.wait();
                    Ok::<_, JobError>(job.payload().clone())
                })
                .build()
                .expect("worker builds");
            worker.run_until(stopped)
        });
        Blocking {
            stop: Some(stop),
            thread,
        }
    }

    /// Stops the worker (by dropping the sender when `drop_sender`, else by a message).
    async fn stop(mut self, drop_sender: bool) -> StopReason {
        let stop = self.stop.take().expect("not stopped yet");
        if drop_sender {
            drop(stop);
        } else {
            stop.send(()).expect("worker listens");
        }
        let joined = tokio::task::spawn_blocking(move || self.thread.join());
        tokio::time::timeout(WAIT, joined)
            .await
            .expect("worker stops in time")
            .expect("join task")
            .expect("worker thread")
            .expect("worker result")
    }
}

on_both_servers!(blocking_worker_serves_and_stops);

async fn blocking_worker_serves_and_stops(server: Server) {
    let w = Blocking::start(server.list());

    let updates = [
        Work::Data("chunk"),
        Work::Status("1", "2"),
        Work::Warning("careful"),
        Work::Complete("ABC"),
    ];
    expect_job(&server, "upper", "abc", &updates).await;
    let boom = [Work::Exception("blocking boom")];
    expect_job_with_exceptions(&server, "raise", "", &boom).await;
    expect_job(&server, "panic", "", &[Work::Fail]).await;

    // Two blocking handlers at once (a barrier of two), after the panic.
    let (x, y) = futures::future::join(
        complete(&server, "meet", "x"),
        complete(&server, "meet", "y"),
    )
    .await;
    assert_eq!((x, y), (b("x"), b("y")));

    assert!(w.stop(false).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_sender_stops_the_worker() {
    let server = Server::gearbox().await;
    let w = Blocking::start(server.list());
    assert_eq!(complete(&server, "upper", "q").await, b("Q"));
    assert!(w.stop(true).await.is_clean());
}

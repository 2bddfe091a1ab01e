//! What a handler's outcome looks like to clients, on gearbox and on gearmand: completion,
//! data/status/warning updates in order, exceptions (with and without `OPTION_REQ
//! exceptions`), explicit failure, panics (the job fails, the worker goes on), and the job's
//! handle, function, unique id and payload reaching the handler intact.

mod worker_support;

use gearbox_client::worker::{ExceptionMode, Job, JobError, Worker};
use gearbox_proto::Priority;
use gearbox_testkit::build;
use worker_support::{
    b, builder, complete, expect_job, expect_job_with_exceptions, on_both_servers, spawn, Server,
    Work,
};

/// A worker with every handler these tests use.
fn worker(server: &Server) -> Worker {
    builder(&server.list())
        .client_id("worker-jobs-test")
        .register("echo", |job: Job| async move {
            Ok::<_, JobError>(job.payload().clone())
        })
        .register("updates", |job: Job| async move {
            job.send_data("a").await?;
            job.send_status(1, 2).await?;
            job.send_warning("w").await?;
            job.send_data("b").await?;
            job.send_status(2, 2).await?;
            Ok::<_, JobError>("done")
        })
        .register("raise", |_job: Job| async {
            Err::<String, _>(JobError::exception("boom"))
        })
        .register("parse", |job: Job| async move {
            let n: u32 = job.payload_str()?.parse()?;
            Ok::<_, JobError>((n * 2).to_string())
        })
        .register("fail", |_job: Job| async {
            Err::<Vec<u8>, _>(JobError::Fail)
        })
        .register("panic", |job: Job| async move {
            if job.payload().as_ref() == b"panic" {
                panic!("handler panicked on purpose");
            }
            Ok::<_, JobError>("survived")
        })
        .register("meta", |job: Job| async move {
            let meta = format!(
                "{}|{}|{}|{}",
                job.function(),
                String::from_utf8_lossy(job.unique()),
                job.payload().len(),
                job.handle().is_empty()
            );
            Ok::<_, JobError>(meta)
        })
        .build()
        .expect("worker builds")
}

on_both_servers! {
    completes, updates_reach_the_client_in_order,
    exception_reaches_clients_that_asked_and_fails_the_others, std_errors_become_exceptions,
    explicit_fail, warning_then_fail_mode, panic_fails_the_job_and_the_worker_goes_on,
    handler_sees_function_unique_and_binary_payload
}

async fn completes(server: Server) {
    let w = spawn(worker(&server));
    assert_eq!(complete(&server, "echo", "hello").await, b("hello"));
    assert_eq!(complete(&server, "echo", "").await, b(""));
    assert!(w.stop().await.is_clean());
}

async fn updates_reach_the_client_in_order(server: Server) {
    let w = spawn(worker(&server));
    let updates = [
        Work::Data("a"),
        Work::Status("1", "2"),
        Work::Warning("w"),
        Work::Data("b"),
        Work::Status("2", "2"),
        Work::Complete("done"),
    ];
    expect_job(&server, "updates", "", &updates).await;
    w.stop().await;
}

async fn exception_reaches_clients_that_asked_and_fails_the_others(server: Server) {
    let w = spawn(worker(&server));
    expect_job_with_exceptions(&server, "raise", "", &[Work::Exception("boom")]).await;
    expect_job(&server, "raise", "", &[Work::Fail]).await;
    w.stop().await;
}

async fn std_errors_become_exceptions(server: Server) {
    let w = spawn(worker(&server));
    assert_eq!(complete(&server, "parse", "21").await, b("42"));
    let not_a_number = Work::Exception("invalid digit found in string");
    expect_job_with_exceptions(&server, "parse", "x", &[not_a_number]).await;
    w.stop().await;
}

async fn explicit_fail(server: Server) {
    let w = spawn(worker(&server));
    // Even a client that asked for exceptions gets a plain WORK_FAIL.
    expect_job_with_exceptions(&server, "fail", "", &[Work::Fail]).await;
    w.stop().await;
}

async fn warning_then_fail_mode(server: Server) {
    let worker = builder(&server.list())
        .exception_mode(ExceptionMode::WarningThenFail)
        .register("raise", |_job: Job| async {
            Err::<String, _>(JobError::exception("boom"))
        })
        .build()
        .expect("worker builds");
    let w = spawn(worker);
    // Even a client that asked for exceptions gets the message as a warning, then a failure.
    let warning_then_fail = [Work::Warning("boom"), Work::Fail];
    expect_job_with_exceptions(&server, "raise", "", &warning_then_fail).await;
    w.stop().await;
}

async fn panic_fails_the_job_and_the_worker_goes_on(server: Server) {
    let w = spawn(worker(&server));
    for _ in 0..2 {
        expect_job(&server, "panic", "panic", &[Work::Fail]).await;
        assert_eq!(complete(&server, "panic", "fine").await, b("survived"));
    }
    // The permit of the panicking job was given back: nothing counts as still running.
    assert_eq!(
        w.stop().await,
        gearbox_client::worker::StopReason::Requested {
            finished: 0,
            abandoned: 0
        }
    );
}

async fn handler_sees_function_unique_and_binary_payload(server: Server) {
    let w = spawn(worker(&server));
    let mut c = server.connect().await;
    let payload = "a\0b\0\u{ff}";
    let handle = c
        .submit(&build::submit(
            "meta",
            "my-unique",
            payload,
            Priority::High,
            false,
        ))
        .await;
    let seen = worker_support::until_done(&mut c).await;
    let meta = format!("meta|my-unique|{}|false", payload.len());
    worker_support::assert_saw(&server, &handle, seen, &[Work::Complete(&meta)]);
    // Binary data with NULs goes through untouched.
    assert_eq!(complete(&server, "echo", payload).await, b(payload));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_after_the_handler_returned_are_refused() {
    let server = Server::gearbox().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let worker = builder(&server.list())
        .register("keep", move |job: Job| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(job.clone());
                Ok::<_, JobError>("kept")
            }
        })
        .build()
        .expect("worker builds");
    let w = spawn(worker);
    assert_eq!(complete(&server, "keep", "").await, b("kept"));
    let kept = rx.recv().await.expect("handler ran");
    assert!(matches!(
        kept.send_data("late").await,
        Err(gearbox_client::Error::InvalidArgument(_))
    ));
    w.stop().await;
}

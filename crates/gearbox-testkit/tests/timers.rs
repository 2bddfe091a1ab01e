//! Time-driven behaviour: CAN_DO_TIMEOUT, SUBMIT_JOB_EPOCH and SUBMIT_JOB_SCHED. Every wait is
//! a read of the packet the timer must produce (bounded by the testkit's read timeout); elapsed
//! times are only asserted, never used to synchronise.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use gearbox_proto::{Request, Response};
use gearbox_server::core::{TimeoutAction, TimeoutUnit};
use gearbox_server::net::now_ms;
use gearbox_testkit::{RawConn, TestServer};

async fn timeout_worker(server: &TestServer, function: &str, timeout: Bytes) -> RawConn {
    let mut w = server.connect().await;
    w.send(&Request::CanDoTimeout {
        function: b(function),
        timeout,
    })
    .await;
    w.assert_quiet().await;
    w
}

/// CAN_DO_TIMEOUT in either form clients send it fails a job that overruns it, not before:
/// ASCII seconds (the default unit), and (mikespook/gearman-go) seconds as a four-byte
/// big-endian u32.
#[tokio::test]
async fn can_do_timeout_fails_the_job() {
    let ascii_seconds = (b("1"), Duration::from_millis(950));
    let binary_seconds = (
        Bytes::from_static(&[0, 0, 0, 1]),
        Duration::from_millis(950),
    );
    for (timeout, at_least) in [ascii_seconds, binary_seconds] {
        let (server, [mut c]) = start().await;
        let handle = submit_ok(&mut c, &fg("f", "", "x")).await;
        let mut w = timeout_worker(&server, "f", timeout.clone()).await;
        let started = Instant::now();
        assert_eq!(grab_uniq(&mut w).await.0, handle);
        assert_eq!(c.recv().await, Work::Fail.response(&handle));
        let took = started.elapsed();
        assert!(
            took >= at_least,
            "{timeout:?}: not before the timeout: {took:?}"
        );
        c.assert_quiet().await;
        // The worker's late answer is dropped without an ERROR (as the Perl server: its
        // worker dies on one), and nobody hears of it.
        w.send(&complete(&handle, "late")).await;
        w.assert_quiet().await;
        c.assert_quiet().await;
        assert_eq!(status(&mut c, "f").await, Some((0, 0, 1)));
    }
}

#[tokio::test]
async fn can_do_timeout_with_requeue_gives_the_job_to_another_worker() {
    let server = server_with(|cfg| {
        cfg.timeout_action = TimeoutAction::Requeue;
        cfg.can_do_timeout_unit = TimeoutUnit::Milliseconds;
    })
    .await;
    let [mut admin, mut c] = server.connections().await;
    let mut slow = timeout_worker(&server, "f", b("200")).await;
    let mut spare = sleeping_worker(&server, &["f"]).await;
    let handle = submit_ok(&mut c, &fg("f", "", "x")).await;
    assert_eq!(spare.recv().await, Response::Noop, "woken by the submit");
    assert_eq!(grab_uniq(&mut slow).await.0, handle);
    grab_none(&mut spare).await;
    spare.send(&Request::PreSleep).await;
    // The timeout puts the job back and wakes the sleeper.
    assert_eq!(spare.recv().await, Response::Noop);
    assert_eq!(grab_uniq(&mut spare).await.0, handle);
    assert_eq!(
        show_job(&mut admin, &handle).await.map(|j| j.0),
        Some(1),
        "retry counted"
    );
    c.assert_quiet().await;
    expect_error(&mut slow, &complete(&handle, "late"), "JOB_NOT_FOUND").await;
    spare.send(&complete(&handle, "ok")).await;
    assert_eq!(c.recv().await, Work::Complete("ok").response(&handle));
}

#[tokio::test]
async fn a_job_that_finishes_in_time_is_not_touched_by_its_timeout() {
    let server = server_with(|cfg| cfg.can_do_timeout_unit = TimeoutUnit::Milliseconds).await;
    let [mut c] = server.connections().await;
    let mut w = timeout_worker(&server, "f", b("200")).await;
    let first = submit_ok(&mut c, &fg("f", "", "1")).await;
    grab_uniq(&mut w).await;
    w.send(&complete(&first, "done")).await;
    assert_eq!(c.recv().await, Work::Complete("done").response(&first));
    // A second job with its own timeout: the first job's timer must not fail it early.
    let second = submit_ok(&mut c, &fg("f", "", "2")).await;
    let started = Instant::now();
    grab_uniq(&mut w).await;
    assert_eq!(c.recv().await, Response::WorkFail { handle: second });
    assert!(started.elapsed() >= Duration::from_millis(190));
}

fn epoch(function: &str, at_secs: u64, data: &str) -> Request {
    Request::SubmitEpoch {
        function: b(function),
        unique: b(""),
        epoch: at_secs,
        data: b(data),
    }
}

#[tokio::test]
async fn epoch_job_in_the_past_runs_at_once() {
    let (server, [mut c]) = start().await;
    let mut w = sleeping_worker(&server, &["f"]).await;
    let handle = submit_ok(&mut c, &epoch("f", now_ms().as_secs() - 60, "past")).await;
    assert_eq!(w.recv().await, Response::Noop);
    assert_eq!(grab_uniq(&mut w).await.0, handle);
    c.assert_quiet().await;
}

#[tokio::test]
async fn epoch_job_in_the_future_waits_and_wakes_sleepers_when_due() {
    let (server, [mut c]) = start().await;
    let mut w = worker(&server, &["f"]).await;
    let due_secs = now_ms().as_secs() + 2;
    let handle = submit_ok(&mut c, &epoch("f", due_secs, "later")).await;
    assert_eq!(status(&mut c, "f").await, Some((1, 0, 1)), "held");
    grab_none(&mut w).await;
    w.send(&Request::PreSleep).await;
    assert_eq!(
        w.recv().await,
        Response::Noop,
        "the timer wakes the sleeper"
    );
    assert!(now_ms().as_secs() >= due_secs, "not before its time");
    let (got, _, _, data) = grab_uniq(&mut w).await;
    assert_eq!((got, data), (handle, b("later")));
}

fn sched(function: &str, fields: [&str; 5]) -> Request {
    Request::SubmitSched {
        function: b(function),
        unique: b(""),
        schedule: Box::new(fields.map(b)),
        data: b("cron"),
    }
}

#[tokio::test]
async fn sched_job_is_held_until_its_minute_and_can_be_cancelled() {
    let (server, [mut c]) = start().await;
    let mut w = worker(&server, &["f"]).await;
    let minute_before = now_ms().as_secs() / 60;
    let handle = submit_ok(&mut c, &sched("f", ["*", "*", "*", "*", "*"])).await;
    assert_eq!(status(&mut c, "f").await, Some((1, 0, 1)), "held");
    w.send(&Request::GrabJob).await;
    match w.recv().await {
        Response::NoJob => {}
        // Only acceptable if the clock really crossed a minute boundary meanwhile.
        Response::JobAssign { .. } => {
            assert_ne!(now_ms().as_secs() / 60, minute_before, "ran early")
        }
        other => panic!("unexpected {other:?}"),
    }
    admin_ok(&mut c, &cancel_job(&handle)).await;
    assert_eq!(status(&mut c, "f").await, Some((0, 0, 1)));
    assert_eq!(show_job(&mut c, &handle).await, None);
}

#[tokio::test]
async fn sched_job_with_an_invalid_field_is_refused() {
    let (_server, [mut c]) = start().await;
    for bad in [
        ["61", "*", "*", "*", "*"],
        ["*", "24", "*", "*", "*"],
        ["*", "*", "*", "x", "*"],
        // Valid fields, but no such day: it would never run.
        ["0", "0", "31", "2", "*"],
    ] {
        c.send(&sched("f", bad)).await;
        assert!(
            matches!(c.recv().await, Response::Error { ref code, .. } if &code[..] == b"INVALID_ARGUMENTS"),
            "{bad:?} refused"
        );
    }
    // Nothing was created, and the connection still works.
    assert_eq!(submit_ok(&mut c, &bg("f", "", "x")).await, h(1));
}

/// An admin `shutdown graceful` keeps the timers running while it drains: a worker that
/// hangs on a job with CAN_DO_TIMEOUT is failed by its timeout, and the drain ends.
#[tokio::test]
async fn admin_graceful_shutdown_still_fires_can_do_timeout() {
    let (server, [mut c]) = start().await;
    let handle = submit_ok(&mut c, &fg("f", "", "x")).await;
    let mut w = timeout_worker(&server, "f", b("1")).await;
    assert_eq!(grab_uniq(&mut w).await.0, handle);
    let mut admin = server.connect().await;
    assert_eq!(admin.admin_line("shutdown graceful").await, "OK\r\n");
    // The worker never answers: only its timeout can end the job, and with it the drain.
    assert_eq!(c.recv().await, Work::Fail.response(&handle));
    server.wait_stopped().await;
}

//! Workers: job choice (priority, FIFO, round-robin), sleeping and waking, abilities, and
//! jobs that lose their worker.

mod common;

use common::*;
use gearbox_proto::{Priority, Request, Response};
use gearbox_testkit::TestServer;

async fn grab_data(w: &mut gearbox_testkit::RawConn) -> String {
    String::from_utf8(grab_uniq(w).await.3.to_vec()).unwrap()
}

#[tokio::test]
async fn priority_wins_across_all_of_a_workers_functions() {
    let (server, [mut c]) = start().await;
    for d in ["a-normal-1", "a-normal-2"] {
        submit_ok(&mut c, &bg("a", "", d)).await;
    }
    submit_ok(&mut c, &submit("a", "", "a-low", Priority::Low, true)).await;
    submit_ok(&mut c, &submit("b", "", "b-high", Priority::High, true)).await;
    submit_ok(&mut c, &submit("b", "", "b-low", Priority::Low, true)).await;
    let mut w = worker(&server, &["a", "b"]).await;
    let mut order = Vec::new();
    for _ in 0..5 {
        order.push(grab_data(&mut w).await);
    }
    assert_eq!(order[0], "b-high");
    assert_eq!(
        &order[1..3],
        ["a-normal-1", "a-normal-2"],
        "FIFO within a priority"
    );
    let mut lows = order[3..].to_vec();
    lows.sort();
    assert_eq!(lows, ["a-low", "b-low"]);
    grab_none(&mut w).await;
}

#[tokio::test]
async fn equal_priority_functions_take_turns() {
    let (server, [mut c]) = start().await;
    for d in ["a1", "a2", "a3"] {
        submit_ok(&mut c, &bg("a", "", d)).await;
    }
    for d in ["b1", "b2", "b3"] {
        submit_ok(&mut c, &bg("b", "", d)).await;
    }
    let mut w = worker(&server, &["a", "b"]).await;
    let mut order = Vec::new();
    for _ in 0..6 {
        order.push(grab_data(&mut w).await);
    }
    assert_eq!(order, ["a1", "b1", "a2", "b2", "a3", "b3"]);
}

#[tokio::test]
async fn submit_wakes_only_sleeping_workers_of_that_function() {
    let server = TestServer::start().await;
    let mut asleep = sleeping_worker(&server, &["f"]).await;
    let mut awake = worker(&server, &["f"]).await;
    let mut other = sleeping_worker(&server, &["g"]).await;
    let mut c = server.connect().await;
    submit_ok(&mut c, &bg("f", "", "x")).await;
    assert_eq!(drain(&mut asleep).await, [Response::Noop]);
    assert_eq!(drain(&mut awake).await, []);
    assert_eq!(drain(&mut other).await, []);
    // A woken worker is awake until its next PRE_SLEEP: a second job sends nothing.
    submit_ok(&mut c, &bg("f", "", "y")).await;
    assert_eq!(drain(&mut asleep).await, []);
}

#[tokio::test]
async fn worker_wakeup_limits_how_many_sleepers_get_noop() {
    let server = server_with(|cfg| cfg.worker_wakeup = 1).await;
    let mut w1 = sleeping_worker(&server, &["f"]).await;
    let mut w2 = sleeping_worker(&server, &["f"]).await;
    let mut c = server.connect().await;
    submit_ok(&mut c, &bg("f", "", "x")).await;
    let got = [drain(&mut w1).await, drain(&mut w2).await];
    let noops: usize = got
        .iter()
        .map(|g| g.iter().filter(|r| **r == Response::Noop).count())
        .sum();
    assert_eq!(noops, 1, "exactly one sleeper woken: {got:?}");
    assert!(got.iter().flatten().all(|r| *r == Response::Noop));
    // The next job wakes the one still asleep.
    submit_ok(&mut c, &bg("f", "", "y")).await;
    let again = [drain(&mut w1).await, drain(&mut w2).await];
    for (first, second) in got.iter().zip(&again) {
        assert_eq!(
            first.len() + second.len(),
            1,
            "each worker woken once: {got:?} then {again:?}"
        );
    }
}

#[tokio::test]
async fn a_worker_that_grabs_after_pre_sleep_is_awake_again() {
    let server = server_with(|cfg| cfg.worker_wakeup = 1).await;
    // Registered first, so it would be the first candidate for a NOOP.
    let mut grabbed = sleeping_worker(&server, &["f"]).await;
    grab_none(&mut grabbed).await;
    let mut asleep = sleeping_worker(&server, &["f"]).await;
    let mut c = server.connect().await;
    submit_ok(&mut c, &bg("f", "", "x")).await;
    assert_eq!(
        drain(&mut grabbed).await,
        [],
        "awake since its GRAB_JOB: no NOOP"
    );
    assert_eq!(
        drain(&mut asleep).await,
        [Response::Noop],
        "the wake-up goes to the sleeper"
    );
}

#[tokio::test]
async fn pre_sleep_with_a_job_waiting_gets_noop_at_once() {
    let (server, [mut c]) = start().await;
    submit_ok(&mut c, &bg("f", "", "x")).await;
    let mut w = worker(&server, &["g", "f"]).await;
    w.send(&Request::PreSleep).await;
    assert_eq!(w.recv().await, Response::Noop);
    w.assert_quiet().await;
    assert_eq!(grab_data(&mut w).await, "x");
}

#[tokio::test]
async fn cant_do_and_reset_abilities_stop_jobs_of_those_functions() {
    let (server, [mut c]) = start().await;
    submit_ok(&mut c, &bg("f", "", "x")).await;
    submit_ok(&mut c, &bg("g", "", "y")).await;
    let mut w = worker(&server, &["f", "g"]).await;
    assert_eq!(status(&mut c, "f").await, Some((1, 0, 1)));
    w.send(&Request::CantDo { function: b("f") }).await;
    w.assert_quiet().await;
    assert_eq!(status(&mut c, "f").await, Some((1, 0, 0)));
    assert_eq!(grab_data(&mut w).await, "y", "only g is left");
    submit_ok(&mut c, &bg("g", "", "z")).await;
    w.send(&Request::ResetAbilities).await;
    w.assert_quiet().await;
    grab_none(&mut w).await;
    assert_eq!(status(&mut c, "g").await, Some((2, 1, 0)));
    // A sleeping worker without abilities is not woken either.
    w.send(&Request::PreSleep).await;
    w.assert_quiet().await;
    submit_ok(&mut c, &bg("f", "", "again")).await;
    w.assert_quiet().await;
}

#[tokio::test]
async fn a_lost_worker_puts_its_job_back_for_another_worker() {
    let (server, [mut admin, mut c]) = start().await;
    let handle = submit_ok(&mut c, &fg("f", "", "x")).await;
    let mut w1 = worker(&server, &["f"]).await;
    assert_eq!(grab_uniq(&mut w1).await.0, handle);
    let mut w2 = sleeping_worker(&server, &["f"]).await;
    assert_eq!(show_job(&mut admin, &handle).await.map(|j| j.0), Some(0));
    drop(w1);
    assert_eq!(w2.recv().await, Response::Noop, "re-queue wakes sleepers");
    assert_eq!(grab_uniq(&mut w2).await.0, handle);
    assert_eq!(
        show_job(&mut admin, &handle).await.map(|j| j.0),
        Some(1),
        "retry counted"
    );
    w2.send(&complete(&handle, "ok")).await;
    assert_eq!(c.recv().await, Work::Complete("ok").response(&handle));
    c.assert_quiet().await;
}

/// `job_retries = N` fails a job at its N-th lost worker: gearmand counts attempts, so
/// `-j 1` means the first run is the only one. Before that, each loss re-queues the job and
/// wakes a sleeper, and the client hears nothing.
#[tokio::test]
async fn job_retries_fail_the_job_at_the_nth_loss() {
    for retries in [1, 2] {
        let server = server_with(|cfg| cfg.job_retries = retries).await;
        let mut c = server.connect().await;
        let handle = submit_ok(&mut c, &fg("f", "", "x")).await;
        let mut running = worker(&server, &["f"]).await;
        grab_uniq(&mut running).await;
        for _ in 1..retries {
            let mut next = sleeping_worker(&server, &["f"]).await;
            drop(running);
            assert_eq!(next.recv().await, Response::Noop);
            assert_eq!(grab_uniq(&mut next).await.0, handle);
            c.assert_quiet().await;
            running = next;
        }
        drop(running);
        let failed = Work::Fail.response(&handle);
        assert_eq!(c.recv().await, failed, "job_retries {retries}");
        c.assert_quiet().await;
        assert_eq!(status(&mut c, "f").await, Some((0, 0, 0)));
    }
}

#[tokio::test]
async fn a_result_for_a_job_the_worker_does_not_hold_is_job_not_found() {
    let (server, [mut c]) = start().await;
    let handle = submit_ok(&mut c, &fg("f", "", "x")).await;
    let mut w1 = worker(&server, &["f"]).await;
    let mut w2 = worker(&server, &["f"]).await;
    // Queued but not running: nobody may report on it.
    expect_error(&mut w1, &complete(&handle, "r"), "JOB_NOT_FOUND").await;
    grab_uniq(&mut w1).await;
    // Running on w1: w2 may not report on it.
    expect_error(&mut w2, &complete(&handle, "r"), "JOB_NOT_FOUND").await;
    expect_error(&mut w2, &Work::Fail.request(&handle), "JOB_NOT_FOUND").await;
    c.assert_quiet().await;
    w1.send(&complete(&handle, "r")).await;
    assert_eq!(c.recv().await, Work::Complete("r").response(&handle));
}

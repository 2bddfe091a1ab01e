//! Retries (after WORK_FAIL and after a lost connection) and timeouts, against gearbox and
//! the real gearmand.

mod client_support;

use std::time::Duration;

use bytes::Bytes;
use client_support::{b, both_pairs, events, pinned_to_first, within, Server};
use client_support::{take, ClientSide, Work};
use gearbox_client::{Error, TaskEvent};
use gearbox_testkit::on_both_servers;

on_both_servers! {
    a_failed_job_is_resubmitted_with_a_retry_event, retries_run_out,
    an_exception_is_not_retried, a_task_times_out,
    without_retries_a_lost_connection_is_an_error
}

async fn a_failed_job_is_resubmitted_with_a_retry_event(srv: Server) {
    let job = srv.client().job("flaky", "x").retries(2);
    let mut task = job.start().await.expect("start");
    let (mut w, first) = take(&srv, "flaky").await;
    w.fail(&first.handle).await;
    let second = w.grab().await;
    let name = srv.name();
    assert_eq!(second.unique, first.unique, "{name}: same unique id");
    assert_eq!(second.data, b("x"));
    w.complete(&second.handle, "ok at last").await;
    let created = |handle: &Bytes| TaskEvent::Created {
        handle: handle.clone(),
    };
    let expected = [
        created(&first.handle),
        TaskEvent::Retry { attempt: 2 },
        created(&second.handle),
        TaskEvent::Complete(b("ok at last")),
    ];
    assert_eq!(events(&mut task).await, expected, "{name}");
    assert_eq!(task.attempts(), 2);
    assert_eq!(task.handle(), &second.handle);
}

async fn retries_run_out(srv: Server) {
    let client = srv.client();
    let c = client.clone();
    let call = tokio::spawn(async move { c.job("bad", "x").retries(1).run().await });
    let mut w = srv.worker(&["bad"]).await;
    for _ in 0..2 {
        let job = w.grab().await;
        w.fail(&job.handle).await;
    }
    let err = within("run", call).await.expect("join").expect_err("fails");
    expect_match!(srv, err, Error::JobFailed { attempts: 2 });
    let third = w.try_grab().await;
    assert!(third.is_none(), "{}: no third attempt", srv.name());
}

async fn an_exception_is_not_retried(srv: Server) {
    let job = srv.client().job("ex", "x").retries(3);
    let task = job.start().await.expect("start");
    let (mut w, job) = take(&srv, "ex").await;
    w.work(&job.handle, Work::Exception("bad input")).await;
    let err = within("wait", task.wait()).await.expect_err("exception");
    expect_match!(srv, err, Error::JobException(_));
    let again = w.try_grab().await;
    assert!(again.is_none(), "{}: not resubmitted", srv.name());
}

async fn a_task_times_out(srv: Server) {
    let client = srv.client();
    let limit = Duration::from_millis(200);
    let run = client.job("nobody", "x").timeout(limit).run();
    let err = within("run", run).await.expect_err("no worker");
    expect_match!(srv, &err, Error::Timeout(d) if *d == limit);
    assert!(err.to_string().contains("timed out"), "{err}");

    // A started task reports the timeout as its last event.
    let job = client.job("nobody", "y").timeout(limit);
    let mut task = job.start().await.expect("start");
    let first = task.next_event().await;
    expect_match!(srv, first, Some(Ok(TaskEvent::Created { .. })));
    expect_match!(srv, task.next_event().await, Some(Err(Error::Timeout(_))));
    assert!(task.next_event().await.is_none());
}

#[tokio::test]
async fn a_lost_connection_resubmits_to_the_next_server() {
    both_pairs(|a, other| async move {
        let name = a.name();
        let (client, unique) = pinned_to_first(&a, &other);
        let job = client.job("survive", "x").unique(&unique).retries(1);
        let mut task = job.start().await.expect("created on the first server");
        let mut wb = other.worker(&["survive"]).await;
        a.stop().await;
        let job = wb.grab().await;
        assert_eq!(job.unique, unique.as_bytes(), "{name}");
        wb.complete(&job.handle, "from b").await;
        let events = events(&mut task).await;
        assert!(
            matches!(events[0], TaskEvent::Created { .. }),
            "{name}: {events:?}"
        );
        assert_eq!(events[1], TaskEvent::Retry { attempt: 2 }, "{name}");
        assert_eq!(
            events.last(),
            Some(&TaskEvent::Complete(b("from b"))),
            "{name}"
        );
    })
    .await;
}

async fn without_retries_a_lost_connection_is_an_error(srv: Server) {
    let name = srv.name();
    let client = srv.client();
    let task = client.job("lost", "x").start().await.expect("start");
    srv.stop().await;
    let err = within("wait", task.wait()).await.expect_err("lost");
    assert!(matches!(err, Error::Disconnected { .. }), "{name}: {err:?}");
    assert!(err.to_string().contains("lost the connection"), "{err}");
}

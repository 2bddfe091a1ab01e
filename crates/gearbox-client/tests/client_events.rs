//! A task's events (data, warning, status, complete, fail, exception), the exceptions option
//! and the client id, against gearbox and the real gearmand.

mod client_support;

use client_support::{b, events, take, within, ClientSide, Server, Work};
use futures::StreamExt;
use gearbox_client::{Client, Error, TaskEvent};
use gearbox_testkit::on_both_servers;

on_both_servers! {
    every_event_arrives_in_order, a_task_is_a_stream, work_fail_is_job_failed,
    work_exception_is_job_exception_by_default,
    without_the_exceptions_option_an_exception_is_a_failure,
    the_client_id_is_set_on_each_connection, dropping_a_task_stops_following_its_job
}

async fn every_event_arrives_in_order(srv: Server) {
    let client = srv.client();
    let mut task = client.job("chunks", "in").start().await.expect("start");
    let (mut w, job) = take(&srv, "chunks").await;
    let h = &job.handle;
    for work in [
        Work::Data("part1"),
        Work::Warning("careful"),
        Work::Status("1", "2"),
        Work::Data("part2"),
        Work::Status("2", "2"),
        Work::Complete("all"),
    ] {
        w.work(h, work).await;
    }
    let status = |numerator, denominator| TaskEvent::Status {
        numerator,
        denominator,
    };
    let expected = [
        TaskEvent::Created { handle: h.clone() },
        TaskEvent::Data(b("part1")),
        TaskEvent::Warning(b("careful")),
        status(1, 2),
        TaskEvent::Data(b("part2")),
        status(2, 2),
        TaskEvent::Complete(b("all")),
    ];
    assert_eq!(events(&mut task).await, expected, "{}", srv.name());
    assert!(
        task.next_event().await.is_none(),
        "nothing after the final event"
    );
}

async fn a_task_is_a_stream(srv: Server) {
    let client = srv.client();
    let task = client.job("s", "x").start().await.expect("start");
    let (mut w, job) = take(&srv, "s").await;
    w.work(&job.handle, Work::Data("d")).await;
    w.complete(&job.handle, "r").await;
    let events: Vec<TaskEvent> = within("stream", task.map(|e| e.expect("ok")).collect()).await;
    assert_eq!(events.len(), 3, "{}: {events:?}", srv.name());
    assert_eq!(events[1], TaskEvent::Data(b("d")));
    assert_eq!(events[2], TaskEvent::Complete(b("r")));
}

async fn work_fail_is_job_failed(srv: Server) {
    let client = srv.client();
    let mut task = client.job("f", "x").start().await.expect("start");
    let (mut w, job) = take(&srv, "f").await;
    w.fail(&job.handle).await;
    let created = TaskEvent::Created { handle: job.handle };
    assert_eq!(events(&mut task).await, [created, TaskEvent::Fail]);

    let c = client.clone();
    let call = tokio::spawn(async move { c.submit("f", "y").await });
    let job = w.grab().await;
    w.fail(&job.handle).await;
    let err = within("submit", call)
        .await
        .expect("join")
        .expect_err("fails");
    expect_match!(srv, err, Error::JobFailed { attempts: 1 });
}

async fn work_exception_is_job_exception_by_default(srv: Server) {
    let client = srv.client();
    let task = client.job("e", "x").start().await.expect("start");
    let (mut w, job) = take(&srv, "e").await;
    w.work(&job.handle, Work::Exception("division by zero"))
        .await;
    let err = within("wait", task.wait()).await.expect_err("an exception");
    expect_match!(srv, err, Error::JobException(ref data) if data == "division by zero");
}

async fn without_the_exceptions_option_an_exception_is_a_failure(srv: Server) {
    let client = Client::builder()
        .servers(&srv.list())
        .exceptions(false)
        .build()
        .expect("client");
    let task = client.job("e", "x").start().await.expect("start");
    let (mut w, job) = take(&srv, "e").await;
    w.work(&job.handle, Work::Exception("boom")).await;
    let err = within("wait", task.wait()).await.expect_err("fails");
    expect_match!(srv, err, Error::JobFailed { .. });
}

async fn the_client_id_is_set_on_each_connection(srv: Server) {
    let client = Client::builder()
        .servers(&srv.list())
        .client_id("billing-7")
        .build()
        .expect("client");
    client.echo("open the connection").await.expect("echo");
    let workers = srv.connect().await.admin_list("workers").await;
    assert!(
        workers.lines().any(|l| l.contains(" billing-7 :")),
        "{}: {workers}",
        srv.name()
    );
}

async fn dropping_a_task_stops_following_its_job(srv: Server) {
    let client = srv.client();
    let task = client.job("d", "x").start().await.expect("start");
    drop(task);
    // The job still runs; its packets go nowhere, and the connection keeps working.
    let (mut w, job) = take(&srv, "d").await;
    w.work(&job.handle, Work::Data("ignored")).await;
    w.complete(&job.handle, "ignored").await;
    let echoed = client.echo("ok").await.expect("echo");
    assert_eq!(echoed, b("ok"), "{}", srv.name());
    let next = client.job("d", "y").start().await.expect("start");
    let job = w.grab().await;
    w.complete(&job.handle, "second").await;
    assert_eq!(within("wait", next.wait()).await.expect("ok"), b("second"));
}

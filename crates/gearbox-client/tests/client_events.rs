//! A task's events (data, warning, status, complete, fail, exception), the exceptions option
//! and the client id, against gearbox and the real gearmand.

mod client_support;

use client_support::{b, both, within};
use futures::StreamExt;
use gearbox_client::{Client, Error, TaskEvent};

#[tokio::test]
async fn every_event_arrives_in_order() {
    both(|srv| async move {
        let client = srv.client();
        let mut task = client.job("chunks", "in").start().await.expect("start");
        let mut w = srv.worker(&["chunks"]).await;
        let job = w.grab().await;
        w.data(&job.handle, "part1").await;
        w.warning(&job.handle, "careful").await;
        w.status(&job.handle, 1, 2).await;
        w.data(&job.handle, "part2").await;
        w.status(&job.handle, 2, 2).await;
        w.complete(&job.handle, "all").await;
        let mut events = Vec::new();
        while let Some(ev) = within("event", task.next_event()).await {
            events.push(ev.expect("no error"));
        }
        assert_eq!(
            events,
            [
                TaskEvent::Created {
                    handle: job.handle.clone()
                },
                TaskEvent::Data(b("part1")),
                TaskEvent::Warning(b("careful")),
                TaskEvent::Status {
                    numerator: 1,
                    denominator: 2
                },
                TaskEvent::Data(b("part2")),
                TaskEvent::Status {
                    numerator: 2,
                    denominator: 2
                },
                TaskEvent::Complete(b("all")),
            ],
            "{}",
            srv.name()
        );
        assert!(
            task.next_event().await.is_none(),
            "nothing after the final event"
        );
    })
    .await;
}

#[tokio::test]
async fn a_task_is_a_stream() {
    both(|srv| async move {
        let client = srv.client();
        let task = client.job("s", "x").start().await.expect("start");
        let mut w = srv.worker(&["s"]).await;
        let job = w.grab().await;
        w.data(&job.handle, "d").await;
        w.complete(&job.handle, "r").await;
        let events: Vec<TaskEvent> = within("stream", task.map(|e| e.expect("ok")).collect()).await;
        assert_eq!(events.len(), 3, "{}: {events:?}", srv.name());
        assert_eq!(events[1], TaskEvent::Data(b("d")));
        assert_eq!(events[2], TaskEvent::Complete(b("r")));
    })
    .await;
}

#[tokio::test]
async fn work_fail_is_job_failed() {
    both(|srv| async move {
        let client = srv.client();
        let mut task = client.job("f", "x").start().await.expect("start");
        let mut w = srv.worker(&["f"]).await;
        let job = w.grab().await;
        w.fail(&job.handle).await;
        assert!(matches!(
            task.next_event().await,
            Some(Ok(TaskEvent::Created { .. }))
        ));
        assert_eq!(
            task.next_event().await.expect("event").expect("ok"),
            TaskEvent::Fail
        );
        assert!(task.next_event().await.is_none());

        let c = client.clone();
        let call = tokio::spawn(async move { c.submit("f", "y").await });
        let job = w.grab().await;
        w.fail(&job.handle).await;
        let err = within("submit", call)
            .await
            .expect("join")
            .expect_err("fails");
        assert!(
            matches!(err, Error::JobFailed { attempts: 1 }),
            "{}: {err:?}",
            srv.name()
        );
    })
    .await;
}

#[tokio::test]
async fn work_exception_is_job_exception_by_default() {
    both(|srv| async move {
        let client = srv.client();
        let task = client.job("e", "x").start().await.expect("start");
        let mut w = srv.worker(&["e"]).await;
        let job = w.grab().await;
        w.exception(&job.handle, "division by zero").await;
        match within("wait", task.wait()).await {
            Err(Error::JobException(data)) => assert_eq!(data, b("division by zero")),
            other => panic!("{}: expected JobException, got {other:?}", srv.name()),
        }
    })
    .await;
}

#[tokio::test]
async fn without_the_exceptions_option_an_exception_is_a_failure() {
    both(|srv| async move {
        let client = Client::builder()
            .servers(&srv.list())
            .exceptions(false)
            .build()
            .expect("client");
        let task = client.job("e", "x").start().await.expect("start");
        let mut w = srv.worker(&["e"]).await;
        let job = w.grab().await;
        w.exception(&job.handle, "boom").await;
        let err = within("wait", task.wait()).await.expect_err("fails");
        assert!(
            matches!(err, Error::JobFailed { .. }),
            "{}: {err:?}",
            srv.name()
        );
    })
    .await;
}

#[tokio::test]
async fn the_client_id_is_set_on_each_connection() {
    both(|srv| async move {
        let client = Client::builder()
            .servers(&srv.list())
            .client_id("billing-7")
            .build()
            .expect("client");
        client.echo("open the connection").await.expect("echo");
        let mut admin = srv.connect().await;
        let workers = admin.admin_list("workers").await;
        assert!(
            workers.lines().any(|l| l.contains(" billing-7 :")),
            "{}: {workers}",
            srv.name()
        );
    })
    .await;
}

#[tokio::test]
async fn dropping_a_task_stops_following_its_job() {
    both(|srv| async move {
        let client = srv.client();
        let task = client.job("d", "x").start().await.expect("start");
        drop(task);
        // The job still runs; its packets go nowhere, and the connection keeps working.
        let mut w = srv.worker(&["d"]).await;
        let job = w.grab().await;
        w.data(&job.handle, "ignored").await;
        w.complete(&job.handle, "ignored").await;
        assert_eq!(
            client.echo("ok").await.expect("echo"),
            b("ok"),
            "{}",
            srv.name()
        );
        let next = client.job("d", "y").start().await.expect("start");
        let job = w.grab().await;
        w.complete(&job.handle, "second").await;
        assert_eq!(within("wait", next.wait()).await.expect("ok"), b("second"));
    })
    .await;
}

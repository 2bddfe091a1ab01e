//! Retries (after WORK_FAIL and after a lost connection) and timeouts, against gearbox and
//! the real gearmand.

mod client_support;

use std::time::Duration;

use client_support::{b, both, both_pairs, within};
use gearbox_client::{Client, Error, TaskEvent};

#[tokio::test]
async fn a_failed_job_is_resubmitted_with_a_retry_event() {
    both(|srv| async move {
        let client = srv.client();
        let mut task = client
            .job("flaky", "x")
            .retries(2)
            .start()
            .await
            .expect("start");
        let mut w = srv.worker(&["flaky"]).await;
        let first = w.grab().await;
        w.fail(&first.handle).await;
        let second = w.grab().await;
        assert_eq!(
            second.unique,
            first.unique,
            "{}: same unique id",
            srv.name()
        );
        assert_eq!(second.data, b("x"));
        w.complete(&second.handle, "ok at last").await;
        let mut events = Vec::new();
        while let Some(ev) = within("event", task.next_event()).await {
            events.push(ev.expect("no error"));
        }
        assert_eq!(
            events,
            [
                TaskEvent::Created {
                    handle: first.handle.clone()
                },
                TaskEvent::Retry { attempt: 2 },
                TaskEvent::Created {
                    handle: second.handle.clone()
                },
                TaskEvent::Complete(b("ok at last")),
            ],
            "{}",
            srv.name()
        );
        assert_eq!(task.attempts(), 2);
        assert_eq!(task.handle(), &second.handle);
    })
    .await;
}

#[tokio::test]
async fn retries_run_out() {
    both(|srv| async move {
        let client = srv.client();
        let c = client.clone();
        let call = tokio::spawn(async move { c.job("bad", "x").retries(1).run().await });
        let mut w = srv.worker(&["bad"]).await;
        for _ in 0..2 {
            let job = w.grab().await;
            w.fail(&job.handle).await;
        }
        let err = within("run", call).await.expect("join").expect_err("fails");
        assert!(
            matches!(err, Error::JobFailed { attempts: 2 }),
            "{}: {err:?}",
            srv.name()
        );
        assert!(
            w.try_grab().await.is_none(),
            "{}: no third attempt",
            srv.name()
        );
    })
    .await;
}

#[tokio::test]
async fn an_exception_is_not_retried() {
    both(|srv| async move {
        let client = srv.client();
        let task = client
            .job("ex", "x")
            .retries(3)
            .start()
            .await
            .expect("start");
        let mut w = srv.worker(&["ex"]).await;
        let job = w.grab().await;
        w.exception(&job.handle, "bad input").await;
        let err = within("wait", task.wait()).await.expect_err("exception");
        assert!(
            matches!(err, Error::JobException(_)),
            "{}: {err:?}",
            srv.name()
        );
        assert!(
            w.try_grab().await.is_none(),
            "{}: not resubmitted",
            srv.name()
        );
    })
    .await;
}

#[tokio::test]
async fn a_task_times_out() {
    both(|srv| async move {
        let client = srv.client();
        let limit = Duration::from_millis(200);
        let err = within("run", client.job("nobody", "x").timeout(limit).run())
            .await
            .expect_err("no worker");
        assert!(
            matches!(err, Error::Timeout(d) if d == limit),
            "{}: {err:?}",
            srv.name()
        );
        assert!(err.to_string().contains("timed out"), "{err}");

        // A started task reports the timeout as its last event.
        let mut task = client
            .job("nobody", "y")
            .timeout(limit)
            .start()
            .await
            .expect("start");
        assert!(matches!(
            task.next_event().await,
            Some(Ok(TaskEvent::Created { .. }))
        ));
        assert!(matches!(
            task.next_event().await,
            Some(Err(Error::Timeout(_)))
        ));
        assert!(task.next_event().await.is_none());
    })
    .await;
}

/// A unique id that hashes to the server at `index` of `client`'s list.
fn unique_on(client: &Client, index: usize) -> String {
    let target = client.servers()[index].clone();
    (0..)
        .map(|i| format!("job-{i}"))
        .find(|u| client.server_for(u) == target)
        .expect("some unique hashes there")
}

#[tokio::test]
async fn a_lost_connection_resubmits_to_the_next_server() {
    both_pairs(|a, other| async move {
        let name = a.name();
        let client = Client::builder()
            .servers(&format!("{},{}", a.list(), other.list()))
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
            .build()
            .expect("client");
        let unique = unique_on(&client, 0);
        let mut task = client
            .job("survive", "x")
            .unique(&unique)
            .retries(1)
            .start()
            .await
            .expect("created on the first server");
        let mut wb = other.worker(&["survive"]).await;
        a.stop().await;
        let job = wb.grab().await;
        assert_eq!(job.unique, unique.as_bytes(), "{name}");
        wb.complete(&job.handle, "from b").await;
        let mut events = Vec::new();
        while let Some(ev) = within("event", task.next_event()).await {
            events.push(ev.expect("no error"));
        }
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

#[tokio::test]
async fn without_retries_a_lost_connection_is_an_error() {
    both(|srv| async move {
        let name = srv.name();
        let client = srv.client();
        let task = client.job("lost", "x").start().await.expect("start");
        srv.stop().await;
        let err = within("wait", task.wait()).await.expect_err("lost");
        assert!(matches!(err, Error::Disconnected { .. }), "{name}: {err:?}");
        assert!(err.to_string().contains("lost the connection"), "{err}");
    })
    .await;
}

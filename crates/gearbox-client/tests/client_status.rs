//! job_status, unique_status, echo, and jobs at a time (SUBMIT_JOB_EPOCH) or on a schedule
//! (SUBMIT_JOB_SCHED), against gearbox and the real gearmand.

mod client_support;

use std::time::{Duration, SystemTime};

use client_support::{b, take, within, ClientSide, Server, Work};
use gearbox_client::{Error, JobStatus, UniqueStatus};
use gearbox_testkit::on_both_servers;

on_both_servers! {
    job_status_follows_a_job, job_status_of_an_unknown_handle,
    unique_status_counts_attached_clients, echo_returns_the_data,
    an_epoch_job_is_accepted_and_waits_for_its_time,
    a_schedule_job_is_accepted_by_gearbox_and_refused_by_gearmand
}

async fn job_status_follows_a_job(srv: Server) {
    let client = srv.client();
    let handle = client.submit_background("st", "x").await.expect("handle");
    let queued = client.job_status(&handle).await.expect("status");
    assert_eq!(
        queued,
        JobStatus {
            handle: handle.clone(),
            known: true,
            running: false,
            numerator: 0,
            denominator: 0
        },
        "{}",
        srv.name()
    );
    let (mut w, job) = take(&srv, "st").await;
    w.work(&job.handle, Work::Status("3", "7")).await;
    let running = client.job_status(&handle).await.expect("status");
    assert!(
        running.known && running.running,
        "{}: {running:?}",
        srv.name()
    );
    assert_eq!((running.numerator, running.denominator), (3, 7));
    w.complete(&job.handle, "").await;
    let gone = client.job_status(&handle).await.expect("status");
    assert!(!gone.known && !gone.running, "{}: {gone:?}", srv.name());
}

async fn job_status_of_an_unknown_handle(srv: Server) {
    let client = srv.client();
    let st = client.job_status("H:nowhere:99").await.expect("status");
    assert!(!st.known && !st.running, "{}: {st:?}", srv.name());
    assert_eq!(st.handle, b("H:nowhere:99"));
}

async fn unique_status_counts_attached_clients(srv: Server) {
    let client = srv.client();
    let job = |data, unique| client.job("us", data).unique(unique);
    job("x", "bg-1").background().await.expect("bg");
    let bg = client.unique_status("bg-1").await.expect("status");
    assert!(bg.known && !bg.running, "{}: {bg:?}", srv.name());
    assert_eq!(bg.unique, b("bg-1"));

    let task = job("y", "fg-1").start().await.expect("fg");
    let fg = client.unique_status("fg-1").await.expect("status");
    assert_eq!(fg.client_count, 1, "{}: {fg:?}", srv.name());

    let mut w = srv.worker(&["us"]).await;
    for _ in 0..2 {
        let job = w.grab().await;
        w.complete(&job.handle, "r").await;
    }
    within("wait", task.wait()).await.expect("fg result");
    let never = client.unique_status("never-submitted").await;
    let none = never.expect("status");
    assert_eq!(
        none,
        UniqueStatus {
            unique: b("never-submitted"),
            known: false,
            running: false,
            numerator: 0,
            denominator: 0,
            client_count: 0
        },
        "{}",
        srv.name()
    );
}

async fn echo_returns_the_data(srv: Server) {
    let client = srv.client();
    assert_eq!(
        client.echo("ping").await.expect("echo"),
        b("ping"),
        "{}",
        srv.name()
    );
    let big = vec![7u8; 256 * 1024];
    assert_eq!(client.echo(big.clone()).await.expect("echo big"), big);
    assert_eq!(client.echo("a\0b").await.expect("echo nul"), b("a\0b"));
}

async fn an_epoch_job_is_accepted_and_waits_for_its_time(srv: Server) {
    let client = srv.client();
    let later = SystemTime::now() + Duration::from_secs(3600);
    let job = client.job("later", "x").at(later);
    let handle = job.background().await.expect("handle");
    let st = client.job_status(&handle).await.expect("status");
    assert!(st.known && !st.running, "{}: {st:?}", srv.name());
    let mut w = srv.worker(&["later"]).await;
    assert!(w.try_grab().await.is_none(), "{}: not due yet", srv.name());

    // A time in the past (as plain epoch seconds) runs at once.
    let h = client.job("now", "y").at(1u64).background().await;
    let (_w, job) = take(&srv, "now").await;
    assert_eq!(job.handle, h.expect("handle"), "{}", srv.name());
}

#[tokio::test]
async fn epoch_and_schedule_jobs_are_background_only() {
    let srv = client_support::Server::gearbox().await;
    let client = srv.client();
    for job in [
        client.job("f", "x").at(1u64),
        client.job("f", "x").schedule("* * * * *"),
    ] {
        let err = job.clone().run().await.expect_err("foreground refused");
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
        let err = job.start().await.expect_err("foreground refused");
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    }
}

#[tokio::test]
async fn a_schedule_needs_five_fields() {
    // Refused before any I/O: this client's server does not exist.
    let client = gearbox_client::Client::new("127.0.0.1:1").expect("client");
    let err = client
        .job("f", "x")
        .schedule("*/5 * *")
        .background()
        .await
        .expect_err("three fields");
    match err {
        Error::InvalidArgument(msg) => assert!(msg.contains("expected 5"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

async fn a_schedule_job_is_accepted_by_gearbox_and_refused_by_gearmand(srv: Server) {
    let client = srv.client();
    let res = client
        .job("cron", "tick")
        .unique("every-5-min")
        .schedule("*/5 * * * *")
        .background()
        .await;
    if srv.is_gearmand() {
        match res {
            Err(Error::Server { code, .. }) => assert_eq!(code, "INVALID_COMMAND"),
            other => panic!("gearmand: expected INVALID_COMMAND, got {other:?}"),
        }
    } else {
        let handle = res.expect("gearbox accepts SUBMIT_JOB_SCHED");
        assert!(client.job_status(&handle).await.expect("status").known);
    }
    // Either way the connection is still in step.
    assert_eq!(
        client.echo("after").await.expect("echo"),
        b("after"),
        "{}",
        srv.name()
    );
}

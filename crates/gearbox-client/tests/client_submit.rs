//! Submitting through the client, against gearbox and the real gearmand: foreground results,
//! background handles, priorities, unique ids and coalescing.

mod client_support;

use client_support::{b, take, within, ClientSide, Server};
use gearbox_client::{Error, Priority, TaskEvent};
use gearbox_testkit::on_both_servers;

on_both_servers! {
    foreground_submit_returns_the_result, payloads_with_nuls_and_empty_payloads_pass_unchanged,
    background_submit_returns_the_handle, workers_get_high_before_normal_before_low,
    foreground_priorities_are_honoured_too, same_unique_coalesces_into_one_job,
    a_unique_id_is_generated_when_none_is_given, events_start_with_created,
    server_errors_become_typed_errors
}

async fn foreground_submit_returns_the_result(srv: Server) {
    let client = srv.client();
    let mut w = srv.worker(&["reverse"]).await;
    let c = client.clone();
    let call = tokio::spawn(async move { c.submit("reverse", "hello").await });
    let job = w.grab().await;
    assert_eq!(job.function, b("reverse"), "{}", srv.name());
    assert_eq!(job.data, b("hello"));
    w.complete(&job.handle, "olleh").await;
    let out = within("submit", call).await.expect("join");
    assert_eq!(out.expect("result"), b("olleh"), "{}", srv.name());
}

async fn payloads_with_nuls_and_empty_payloads_pass_unchanged(srv: Server) {
    let client = srv.client();
    let mut w = srv.worker(&["f"]).await;
    for payload in [&b"a\0b\0\0c"[..], &b""[..]] {
        let job = client.job("f", payload.to_vec());
        let task = job.start().await.expect("created");
        let job = w.grab().await;
        assert_eq!(&job.data[..], payload, "{}", srv.name());
        w.complete(&job.handle, "x\0y").await;
        assert_eq!(within("wait", task.wait()).await.expect("ok"), b("x\0y"));
    }
}

async fn background_submit_returns_the_handle(srv: Server) {
    let client = srv.client();
    let submitted = client.submit_background("bg", "payload").await;
    let handle = submitted.expect("handle");
    assert!(!handle.is_empty(), "{}", srv.name());
    let (mut w, job) = take(&srv, "bg").await;
    assert_eq!(job.handle, handle, "{}", srv.name());
    assert_eq!(job.data, b("payload"));
    w.complete(&job.handle, "done").await;
}

async fn workers_get_high_before_normal_before_low(srv: Server) {
    let client = srv.client();
    let job = |data| client.job("p", data);
    for queued in [
        job("low").low(),
        job("normal"),
        job("high").high(),
        job("normal2").priority(Priority::Normal),
    ] {
        queued.background().await.expect("queued");
    }
    let mut w = srv.worker(&["p"]).await;
    let mut order = Vec::new();
    for _ in 0..4 {
        let job = w.grab().await;
        order.push(String::from_utf8_lossy(&job.data).into_owned());
        w.complete(&job.handle, "").await;
    }
    assert_eq!(
        order,
        ["high", "normal", "normal2", "low"],
        "{}",
        srv.name()
    );
}

async fn foreground_priorities_are_honoured_too(srv: Server) {
    let client = srv.client();
    let low = client.job("fp", "low").low().start().await.expect("low");
    let high = client.job("fp", "high").high().start().await.expect("high");
    let mut w = srv.worker(&["fp"]).await;
    let first = w.grab().await;
    assert_eq!(first.data, b("high"), "{}", srv.name());
    w.complete(&first.handle, "H").await;
    let second = w.grab().await;
    assert_eq!(second.data, b("low"));
    w.complete(&second.handle, "L").await;
    assert_eq!(within("high", high.wait()).await.expect("high"), b("H"));
    assert_eq!(within("low", low.wait()).await.expect("low"), b("L"));
}

async fn same_unique_coalesces_into_one_job(srv: Server) {
    let client = srv.client();
    let render = || client.job("render", "page").unique("page-7");
    let t1 = render().start().await.expect("t1");
    let t2 = render().start().await.expect("t2");
    assert_eq!(t1.handle(), t2.handle(), "{}: one job", srv.name());
    assert_eq!(t1.unique(), &b("page-7"));
    let (mut w, job) = take(&srv, "render").await;
    assert_eq!(job.unique, b("page-7"));
    w.complete(&job.handle, "rendered").await;
    assert_eq!(within("t1", t1.wait()).await.expect("t1"), b("rendered"));
    assert_eq!(within("t2", t2.wait()).await.expect("t2"), b("rendered"));
    assert!(
        w.try_grab().await.is_none(),
        "{}: no second job",
        srv.name()
    );

    let bgu = |data| client.job("bgu", data).unique("u");
    let h1 = bgu("a").background().await.expect("h1");
    let h2 = bgu("b").background().await.expect("h2");
    assert_eq!(h1, h2, "{}: background duplicate", srv.name());
}

async fn a_unique_id_is_generated_when_none_is_given(srv: Server) {
    let client = srv.client();
    let gen = || client.submit_background("gen", "same payload");
    let h1 = gen().await.expect("h1");
    let h2 = gen().await.expect("h2");
    assert_ne!(h1, h2, "{}: generated ids never coalesce", srv.name());
    let mut w = srv.worker(&["gen"]).await;
    let (j1, j2) = (w.grab().await, w.grab().await);
    for j in [&j1, &j2] {
        assert_eq!(j.unique.len(), 32, "{}: {:?}", srv.name(), j.unique);
        assert!(j.unique.iter().all(u8::is_ascii_hexdigit));
    }
    assert_ne!(j1.unique, j2.unique);
}

async fn events_start_with_created(srv: Server) {
    let client = srv.client();
    let mut task = client.job("ev", "x").start().await.expect("start");
    let handle = task.handle().clone();
    assert!(!handle.is_empty());
    let first = task.next_event().await.expect("event").expect("ok");
    assert_eq!(first, TaskEvent::Created { handle });
}

async fn server_errors_become_typed_errors(srv: Server) {
    let client = srv.client();
    let long_unique = "u".repeat(65);
    let job = client.job("f", "x").unique(&long_unique);
    let err = job
        .background()
        .await
        .expect_err("a 65-byte unique is refused");
    expect_match!(srv, err, Error::ArgumentTooLarge(_));
    // The connection stays in step: the next request gets its own answer.
    assert_eq!(
        client.echo("still here").await.expect("echo"),
        b("still here")
    );
}

//! Several servers: choice by unique id, failover when one is down, reconnecting after a
//! restart, and the error when none can be reached.

mod client_support;

use std::time::Duration;

use client_support::ClientSide;
use client_support::{b, both_pairs, pinned_to_first, two_server_client, unique_on, within};
use gearbox_client::{Client, Error};
use gearbox_testkit::gearmand::free_port;
use gearbox_testkit::TestServer;

#[tokio::test]
async fn jobs_go_to_the_server_their_unique_hashes_to() {
    both_pairs(|a, other| async move {
        let client = two_server_client(&a, &other);
        let mut wa = a.worker(&["route"]).await;
        let mut wb = other.worker(&["route"]).await;
        for (index, w) in [(0, &mut wa), (1, &mut wb)] {
            let unique = unique_on(&client, index);
            let job = client.job("route", "x").unique(&unique);
            job.background().await.expect("handle");
            let got = w.grab().await.unique;
            assert_eq!(got, unique.as_bytes(), "{}: server {index}", a.name());
        }
        assert!(wa.try_grab().await.is_none());
        assert!(wb.try_grab().await.is_none());
    })
    .await;
}

#[tokio::test]
async fn a_job_fails_over_when_its_server_is_down() {
    both_pairs(|a, other| async move {
        let name = a.name();
        let (client, unique) = pinned_to_first(&a, &other);
        let mut wb = other.worker(&["fo"]).await;
        a.stop().await;
        let c = client.clone();
        let u = unique.clone();
        let call = tokio::spawn(async move { c.job("fo", "x").unique(&u).run().await });
        let job = wb.grab().await;
        assert_eq!(job.unique, unique.as_bytes(), "{name}");
        wb.complete(&job.handle, "from the other server").await;
        let out = within("run", call).await.expect("join").expect("result");
        assert_eq!(out, b("from the other server"), "{name}");
        // The server in back-off is skipped: the next job goes straight to the other one.
        let h = client.job("fo", "y").unique(&unique).background().await;
        assert_eq!(wb.grab().await.handle, h.expect("handle"), "{name}");
    })
    .await;
}

#[tokio::test]
async fn the_client_reconnects_after_a_restart() {
    let first = TestServer::start().await;
    let addr = first.addr;
    let client = Client::builder()
        .servers(&addr.to_string())
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .build()
        .expect("client");
    assert_eq!(client.echo("one").await.expect("echo"), b("one"));
    first.stop(gearbox_server::ShutdownMode::Immediate).await;

    // The connection is gone: the first call sees it lost (or, if the close was already
    // noticed, cannot reconnect).
    let err = client.echo("two").await.expect_err("server down");
    assert!(
        matches!(err, Error::Disconnected { .. } | Error::Unreachable { .. }),
        "{err:?}"
    );

    let second = TestServer::start_on(addr, gearbox_server::Config::default()).await;
    // Waits out the back-off (well within connect_timeout), then reconnects.
    assert_eq!(
        within("echo", client.echo("three")).await.expect("echo"),
        b("three")
    );
    let handle = client
        .submit_background("after", "restart")
        .await
        .expect("submit");
    let mut w = client_support::RawWorker::new(second.addr, &["after"]).await;
    assert_eq!(w.grab().await.handle, handle);
}

#[tokio::test]
async fn no_reachable_server_is_a_clear_error() {
    let port = free_port();
    let list = format!("127.0.0.1:{port}");
    let client = Client::builder()
        .servers(&list)
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(40))
        .build()
        .expect("client");
    let err = client.submit("f", "x").await.expect_err("nothing listens");
    let msg = err.to_string();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(
        msg.contains(&format!("no server reachable at {list}")),
        "{msg}"
    );
    assert!(msg.contains("is gearboxd (or gearmand) running"), "{msg}");

    // Again, now in back-off: still the same error, naming the back-off.
    let err = client
        .submit_background("f", "x")
        .await
        .expect_err("still nothing");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    for call in [
        client.echo("x").await.map(drop),
        client.unique_status("u").await.map(drop),
    ] {
        assert!(matches!(call, Err(Error::Unreachable { .. })), "{call:?}");
    }
    let status = client.job_status("H:x:1").await;
    assert!(
        matches!(status, Err(Error::Unreachable { .. })),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_long_back_off_fails_fast() {
    let port = free_port();
    let client = Client::builder()
        .servers(&format!("127.0.0.1:{port}"))
        .connect_timeout(Duration::from_millis(500))
        .reconnect_backoff(Duration::from_secs(60), Duration::from_secs(60))
        .build()
        .expect("client");
    assert!(client.echo("x").await.is_err());
    // The next try is a minute away, longer than connect_timeout: no waiting.
    let started = tokio::time::Instant::now();
    let err = client.echo("x").await.expect_err("in back-off");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.to_string().contains("back-off"), "{err}");
}

#[tokio::test]
async fn no_servers_configured_is_its_own_error() {
    let err = Client::builder()
        .servers(" , ")
        .build()
        .expect_err("empty list");
    assert!(matches!(err, Error::NoServers), "{err:?}");
    let err = Client::new("host:notaport").expect_err("bad port");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
}

//! Shared helpers for the integration tests: request builders, a few packet-level steps that
//! almost every test takes, and parsers for the admin listings (semantics only, so the tests do
//! not depend on the exact text layout beyond gearmand's tab-separated columns).
#![allow(dead_code)] // Each test binary uses a different subset.

use bytes::Bytes;
use gearbox_proto::{Priority, Request, Response};
use gearbox_server::Config;
pub use gearbox_testkit::build::{b, submit};
use gearbox_testkit::{RawConn, TestServer};

/// The handle the test server gives the `n`-th job.
pub fn h(n: u64) -> Bytes {
    Bytes::from(format!("H:test:{n}"))
}

/// Default test configuration: handles `H:test:N`.
pub fn config() -> Config {
    Config {
        job_handle_prefix: Some("H:test".into()),
        ..Config::default()
    }
}

/// SUBMIT_JOB (foreground, normal).
pub fn fg(function: &str, unique: &str, data: &str) -> Request {
    submit(function, unique, data, Priority::Normal, false)
}

/// SUBMIT_JOB_BG (background, normal).
pub fn bg(function: &str, unique: &str, data: &str) -> Request {
    submit(function, unique, data, Priority::Normal, true)
}

/// Sends a submit and returns the handle from its JOB_CREATED.
pub async fn submit_ok(client: &mut RawConn, req: &Request) -> Bytes {
    client.send(req).await;
    match client.recv().await {
        Response::JobCreated { handle } => handle,
        other => panic!("expected JOB_CREATED, got {other:?}"),
    }
}

/// Sends a request and expects an ERROR with `code`.
pub async fn expect_error(conn: &mut RawConn, req: &Request, code: &str) {
    conn.send(req).await;
    match conn.recv().await {
        Response::Error { code: c, .. } => assert_eq!(c, b(code), "error code"),
        other => panic!("expected ERROR {code}, got {other:?}"),
    }
}

/// A worker connection that registered `functions` (CAN_DO each; the echo proves they were
/// processed and answered nothing).
pub async fn worker(server: &TestServer, functions: &[&str]) -> RawConn {
    let mut w = server.connect().await;
    for f in functions {
        w.send(&Request::CanDo { function: b(f) }).await;
    }
    w.assert_quiet().await;
    w
}

/// A worker that registered `functions` and sent PRE_SLEEP (proven processed and unanswered).
pub async fn sleeping_worker(server: &TestServer, functions: &[&str]) -> RawConn {
    let mut w = worker(server, functions).await;
    w.send(&Request::PreSleep).await;
    w.assert_quiet().await;
    w
}

/// GRAB_JOB_UNIQ and return (handle, function, unique, data); panics on anything else.
pub async fn grab_uniq(w: &mut RawConn) -> (Bytes, Bytes, Bytes, Bytes) {
    w.send(&Request::GrabJobUniq).await;
    match w.recv().await {
        Response::JobAssignUniq {
            handle,
            function,
            unique,
            data,
        } => (handle, function, unique, data),
        other => panic!("expected JOB_ASSIGN_UNIQ, got {other:?}"),
    }
}

/// GRAB_JOB and expect NO_JOB.
pub async fn grab_none(w: &mut RawConn) {
    w.send(&Request::GrabJob).await;
    assert_eq!(w.recv().await, Response::NoJob);
}

/// WORK_COMPLETE from a worker.
pub fn complete(handle: &Bytes, data: &str) -> Request {
    Request::WorkComplete {
        handle: handle.clone(),
        data: b(data),
    }
}

/// Every packet that arrives before the reply to an echo probe: proves exactly what was
/// queued for this connection so far.
pub async fn drain(conn: &mut RawConn) -> Vec<Response> {
    let probe = b("drain-probe");
    conn.send(&Request::EchoReq {
        data: probe.clone(),
    })
    .await;
    let mut got = Vec::new();
    loop {
        match conn.recv().await {
            Response::EchoRes { data } if data == probe => return got,
            r => got.push(r),
        }
    }
}

/// One row of an admin listing, split on tabs, found by its first column.
pub fn row(listing: &str, key: &str) -> Option<Vec<String>> {
    listing
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect::<Vec<_>>())
        .find(|cols| cols.first().is_some_and(|c| c == key))
}

/// `status` columns (total, running, workers) of `function`, or `None` if it is not listed.
pub async fn status(admin: &mut RawConn, function: &str) -> Option<(u64, u64, u64)> {
    let list = admin.admin_list("status").await;
    assert!(
        list.ends_with(".\n"),
        "status listing ends with a dot line: {list:?}"
    );
    row(&list, function).map(|c| {
        assert_eq!(c.len(), 4, "status row {c:?}");
        (
            c[1].parse().unwrap(),
            c[2].parse().unwrap(),
            c[3].parse().unwrap(),
        )
    })
}

/// `show jobs` columns (retries, ignored, queued) of `handle`, or `None` if it is not listed.
pub async fn show_job(admin: &mut RawConn, handle: &Bytes) -> Option<(u64, u64, u64)> {
    let list = admin.admin_list("show jobs").await;
    let key = String::from_utf8_lossy(handle).into_owned();
    row(&list, &key).map(|c| {
        assert_eq!(c.len(), 4, "show jobs row {c:?}");
        (
            c[1].parse().unwrap(),
            c[2].parse().unwrap(),
            c[3].parse().unwrap(),
        )
    })
}

/// Number of connections listed by `workers` (the asking connection included).
pub async fn connection_count(admin: &mut RawConn) -> usize {
    let list = admin.admin_list("workers").await;
    list.lines().filter(|l| *l != ".").count()
}

/// Re-asks `workers` until the server lists exactly `n` connections. Disconnects are only
/// observable through the server's state, so this polls it (each round trip is a real
/// request, not a timed sleep) and fails after a bounded number of attempts.
pub async fn wait_connections(admin: &mut RawConn, n: usize) {
    for _ in 0..5000 {
        if connection_count(admin).await == n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("server never showed {n} connections");
}

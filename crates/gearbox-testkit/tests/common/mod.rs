//! Shared helpers for the integration tests: request builders, a few packet-level steps that
//! almost every test takes, and parsers for the admin listings (semantics only, so the tests do
//! not depend on the exact text layout beyond gearmand's tab-separated columns).
#![allow(dead_code)] // Each test binary uses a different subset.

use bytes::Bytes;
use gearbox_proto::{Request, Response};
use gearbox_server::Config;
use gearbox_testkit::build::can_do;
#[allow(unused_imports)] // Each test binary uses a different subset.
pub use gearbox_testkit::build::{b, bg, fg, status_res, submit, Work};
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

/// A fresh test server (handles `H:test:N`) and `N` connections to it, opened in order:
/// `let (server, [mut admin, mut c]) = start().await`.
pub async fn start<const N: usize>() -> (TestServer, [RawConn; N]) {
    let server = TestServer::start().await;
    let conns = server.connections().await;
    (server, conns)
}

/// A test server with the default test configuration changed by `tweak`.
pub async fn server_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = config();
    tweak(&mut config);
    TestServer::start_with(config).await
}

/// Sends a submit and returns the handle from its JOB_CREATED.
pub async fn submit_ok(client: &mut RawConn, req: &Request) -> Bytes {
    client.submit(req).await
}

/// Submits `req` from both clients and asserts they were given one job (coalesced on its
/// unique id); returns its handle.
pub async fn submit_coalesced(c1: &mut RawConn, c2: &mut RawConn, req: &Request) -> Bytes {
    let handle = c1.submit(req).await;
    assert_eq!(c2.submit(req).await, handle, "coalesced");
    handle
}

/// Sends a request and expects an ERROR with `code`.
pub async fn expect_error(conn: &mut RawConn, req: &Request, code: &str) {
    conn.expect_error(req, code).await;
}

/// A worker connection that registered `functions` (CAN_DO each; the echo proves they were
/// processed and answered nothing).
pub async fn worker(server: &TestServer, functions: &[&str]) -> RawConn {
    let mut w = server.connect().await;
    for f in functions {
        w.send(&can_do(f)).await;
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
    Work::Complete(data).request(handle)
}

/// Every packet that arrives before the reply to an echo probe: proves exactly what was
/// queued for this connection so far.
pub async fn drain(conn: &mut RawConn) -> Vec<Response> {
    conn.drain().await
}

/// Sends an admin command and expects `OK`.
pub async fn admin_ok(conn: &mut RawConn, line: &str) {
    assert_eq!(conn.admin_line(line).await, "OK\r\n", "{line:?}");
}

/// Sends an admin command and expects it refused with an `ERR` line.
pub async fn admin_err(conn: &mut RawConn, line: &str) {
    let reply = conn.admin_line(line).await;
    assert!(reply.starts_with("ERR"), "{line:?} refused: {reply:?}");
}

/// The admin line cancelling the job `handle`.
pub fn cancel_job(handle: &Bytes) -> String {
    format!("cancel job {}", String::from_utf8_lossy(handle))
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
    three_numbers(&list, function)
}

/// `show jobs` columns (retries, ignored, queued) of `handle`, or `None` if it is not listed.
pub async fn show_job(admin: &mut RawConn, handle: &Bytes) -> Option<(u64, u64, u64)> {
    let list = admin.admin_list("show jobs").await;
    three_numbers(&list, &String::from_utf8_lossy(handle))
}

/// The three numeric columns after `key` in its row of `listing`.
fn three_numbers(listing: &str, key: &str) -> Option<(u64, u64, u64)> {
    row(listing, key).map(|c| {
        assert_eq!(c.len(), 4, "row of {key}: {c:?}");
        let n = |i: usize| c[i].parse().unwrap();
        (n(1), n(2), n(3))
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

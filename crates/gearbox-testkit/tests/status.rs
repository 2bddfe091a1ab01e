//! WORK_STATUS storage and the GET_STATUS / GET_STATUS_UNIQUE queries.

mod common;

use bytes::Bytes;
use common::*;
use gearbox_proto::Response;
use gearbox_testkit::build::{get_status, get_status_unique, status_res_unique, Progress};
use gearbox_testkit::RawConn;

/// GET_STATUS of `handle` and its STATUS_RES.
async fn assert_status(c: &mut RawConn, handle: &Bytes, progress: Progress<'_>) {
    let expected = status_res(handle, progress);
    assert_eq!(c.ask(&get_status(handle)).await, expected);
}

/// GET_STATUS_UNIQUE of `unique` and its STATUS_RES_UNIQUE.
async fn assert_unique_status(c: &mut RawConn, unique: &str, progress: Progress<'_>, clients: u64) {
    let expected = status_res_unique(unique, progress, clients);
    assert_eq!(c.ask(&get_status_unique(unique)).await, expected);
}

#[tokio::test]
async fn get_status_follows_the_job_through_its_life() {
    let (server, [mut c]) = start().await;
    let handle = submit_ok(&mut c, &bg("f", "", "x")).await;
    assert_status(&mut c, &handle, (true, false, "0", "0")).await;
    let mut w = worker(&server, &["f"]).await;
    grab_uniq(&mut w).await;
    assert_status(&mut c, &handle, (true, true, "0", "0")).await;
    for (n, d) in [("7", "12"), ("11", "12")] {
        w.send(&Work::Status(n, d).request(&handle)).await;
        w.assert_quiet().await;
        assert_status(&mut c, &handle, (true, true, n, d)).await;
    }
    w.send(&complete(&handle, "")).await;
    w.assert_quiet().await;
    assert_status(&mut c, &handle, (false, false, "0", "0")).await;
}

#[tokio::test]
async fn get_status_of_an_unknown_handle_is_all_zero() {
    let (_server, [mut c]) = start().await;
    let handle = b("H:test:999");
    assert_status(&mut c, &handle, (false, false, "0", "0")).await;
    let empty = b("");
    assert_status(&mut c, &empty, (false, false, "0", "0")).await;
}

#[tokio::test]
async fn status_is_reset_when_a_job_goes_back_to_the_queue() {
    let (server, [mut c]) = start().await;
    let handle = submit_ok(&mut c, &bg("f", "", "x")).await;
    let mut admin = server.connect().await;
    let mut w = worker(&server, &["f"]).await;
    grab_uniq(&mut w).await;
    w.send(&Work::Status("3", "4").request(&handle)).await;
    w.assert_quiet().await;
    drop(w);
    wait_connections(&mut admin, 2).await;
    // gearmand zeroes the progress of a re-queued job: the next worker starts over.
    assert_status(&mut c, &handle, (true, false, "0", "0")).await;
}

#[tokio::test]
async fn get_status_unique_reports_progress_and_client_count() {
    let (server, [mut c1, mut c2]) = start().await;
    let handle = submit_coalesced(&mut c1, &mut c2, &fg("f", "the-unique", "x")).await;
    assert_unique_status(&mut c1, "the-unique", (true, false, "0", "0"), 2).await;
    let mut w = worker(&server, &["f"]).await;
    grab_uniq(&mut w).await;
    w.send(&Work::Status("1", "3").request(&handle)).await;
    assert!(matches!(c2.recv().await, Response::WorkStatus { .. }));
    assert_unique_status(&mut c2, "the-unique", (true, true, "1", "3"), 2).await;
    assert_unique_status(&mut c2, "nope", (false, false, "0", "0"), 0).await;
}

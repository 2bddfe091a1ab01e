//! WORK_STATUS storage and the GET_STATUS / GET_STATUS_UNIQUE queries.

mod common;

use bytes::Bytes;
use common::*;
use gearbox_proto::{Request, Response};
use gearbox_testkit::{RawConn, TestServer};

async fn get_status(c: &mut RawConn, handle: &Bytes) -> Response {
    c.send(&Request::GetStatus {
        handle: handle.clone(),
    })
    .await;
    c.recv().await
}

fn status_res(handle: &Bytes, known: bool, running: bool, n: &str, d: &str) -> Response {
    Response::StatusRes {
        handle: handle.clone(),
        known,
        running,
        numerator: b(n),
        denominator: b(d),
    }
}

#[tokio::test]
async fn get_status_follows_the_job_through_its_life() {
    let server = TestServer::start_with(config()).await;
    let mut c = server.connect().await;
    let handle = submit_ok(&mut c, &bg("f", "", "x")).await;
    assert_eq!(
        get_status(&mut c, &handle).await,
        status_res(&handle, true, false, "0", "0")
    );
    let mut w = worker(&server, &["f"]).await;
    grab_uniq(&mut w).await;
    assert_eq!(
        get_status(&mut c, &handle).await,
        status_res(&handle, true, true, "0", "0")
    );
    w.send(&Request::WorkStatus {
        handle: handle.clone(),
        numerator: b("7"),
        denominator: b("12"),
    })
    .await;
    w.assert_quiet().await;
    assert_eq!(
        get_status(&mut c, &handle).await,
        status_res(&handle, true, true, "7", "12")
    );
    w.send(&Request::WorkStatus {
        handle: handle.clone(),
        numerator: b("11"),
        denominator: b("12"),
    })
    .await;
    w.assert_quiet().await;
    assert_eq!(
        get_status(&mut c, &handle).await,
        status_res(&handle, true, true, "11", "12")
    );
    w.send(&complete(&handle, "")).await;
    w.assert_quiet().await;
    assert_eq!(
        get_status(&mut c, &handle).await,
        status_res(&handle, false, false, "0", "0")
    );
}

#[tokio::test]
async fn get_status_of_an_unknown_handle_is_all_zero() {
    let server = TestServer::start_with(config()).await;
    let mut c = server.connect().await;
    let handle = b("H:test:999");
    assert_eq!(
        get_status(&mut c, &handle).await,
        status_res(&handle, false, false, "0", "0")
    );
    let empty = b("");
    assert_eq!(
        get_status(&mut c, &empty).await,
        status_res(&empty, false, false, "0", "0")
    );
}

#[tokio::test]
async fn status_is_reset_when_a_job_goes_back_to_the_queue() {
    let server = TestServer::start_with(config()).await;
    let mut c = server.connect().await;
    let handle = submit_ok(&mut c, &bg("f", "", "x")).await;
    let mut admin = server.connect().await;
    let mut w = worker(&server, &["f"]).await;
    grab_uniq(&mut w).await;
    w.send(&Request::WorkStatus {
        handle: handle.clone(),
        numerator: b("3"),
        denominator: b("4"),
    })
    .await;
    w.assert_quiet().await;
    drop(w);
    wait_connections(&mut admin, 2).await;
    // gearmand zeroes the progress of a re-queued job: the next worker starts over.
    assert_eq!(
        get_status(&mut c, &handle).await,
        status_res(&handle, true, false, "0", "0")
    );
}

#[tokio::test]
async fn get_status_unique_reports_progress_and_client_count() {
    let server = TestServer::start_with(config()).await;
    let mut c1 = server.connect().await;
    let mut c2 = server.connect().await;
    let handle = submit_ok(&mut c1, &fg("f", "the-unique", "x")).await;
    assert_eq!(
        submit_ok(&mut c2, &fg("f", "the-unique", "x")).await,
        handle
    );
    let ask = |u: &str| Request::GetStatusUnique { unique: b(u) };
    c1.send(&ask("the-unique")).await;
    assert_eq!(
        c1.recv().await,
        Response::StatusResUnique {
            unique: b("the-unique"),
            known: true,
            running: false,
            numerator: b("0"),
            denominator: b("0"),
            client_count: 2,
        }
    );
    let mut w = worker(&server, &["f"]).await;
    grab_uniq(&mut w).await;
    w.send(&Request::WorkStatus {
        handle: handle.clone(),
        numerator: b("1"),
        denominator: b("3"),
    })
    .await;
    assert!(matches!(c2.recv().await, Response::WorkStatus { .. }));
    c2.send(&ask("the-unique")).await;
    assert_eq!(
        c2.recv().await,
        Response::StatusResUnique {
            unique: b("the-unique"),
            known: true,
            running: true,
            numerator: b("1"),
            denominator: b("3"),
            client_count: 2,
        }
    );
    c2.send(&ask("nope")).await;
    assert_eq!(
        c2.recv().await,
        Response::StatusResUnique {
            unique: b("nope"),
            known: false,
            running: false,
            numerator: b("0"),
            denominator: b("0"),
            client_count: 0,
        }
    );
}

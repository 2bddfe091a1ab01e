//! Admin text commands, checked for their effect on the server rather than their exact text
//! (the text formats are pinned against real gearmand elsewhere).

mod common;

use common::*;
use gearbox_proto::{Priority, Request};
use gearbox_testkit::TestServer;

#[tokio::test]
async fn cancel_job_fails_it_for_its_clients_whatever_its_state() {
    let (server, [mut admin, mut c]) = start().await;
    let queued = submit_ok(&mut c, &fg("f", "u", "q")).await;
    let running = submit_ok(&mut c, &fg("g", "", "r")).await;
    let mut w = worker(&server, &["g"]).await;
    assert_eq!(grab_uniq(&mut w).await.0, running);

    admin_ok(&mut admin, &cancel_job(&queued)).await;
    assert_eq!(c.recv().await, Work::Fail.response(&queued));
    admin_ok(&mut admin, &cancel_job(&running)).await;
    assert_eq!(c.recv().await, Work::Fail.response(&running));
    c.assert_quiet().await;

    assert_eq!(status(&mut admin, "f").await, Some((0, 0, 0)));
    assert_eq!(status(&mut admin, "g").await, Some((0, 0, 1)));
    assert_eq!(admin.admin_list("show jobs").await, ".\n");
    // The cancelled running job is gone: its worker's result is refused.
    expect_error(&mut w, &complete(&running, "late"), "JOB_NOT_FOUND").await;
    // Its unique is free again.
    assert_ne!(submit_ok(&mut c, &fg("f", "u", "q")).await, queued);
    // Cancelling twice, or an unknown handle, is an error.
    admin_err(&mut admin, &cancel_job(&queued)).await;
    admin_err(&mut admin, "cancel job H:nowhere:1").await;
}

#[tokio::test]
async fn cancel_background_job_removes_it_silently() {
    let (server, [mut c]) = start().await;
    let handle = submit_ok(&mut c, &bg("f", "", "x")).await;
    admin_ok(&mut c, &cancel_job(&handle)).await;
    c.assert_quiet().await;
    let mut w = worker(&server, &["f"]).await;
    grab_none(&mut w).await;
}

#[tokio::test]
async fn create_and_drop_function() {
    let (server, [mut admin]) = start().await;
    assert_eq!(status(&mut admin, "newfn").await, None);
    admin_ok(&mut admin, "create function newfn").await;
    assert_eq!(status(&mut admin, "newfn").await, Some((0, 0, 0)));
    // A bare `\n` ending must not eat the last character (gearmand's bug).
    admin_ok(&mut admin, "create function other\n").await;
    assert_eq!(status(&mut admin, "other").await, Some((0, 0, 0)));

    // Refused while a worker can do it or a job is held.
    let mut w = worker(&server, &["newfn"]).await;
    admin_err(&mut admin, "drop function newfn").await;
    let function = b("newfn");
    w.send(&Request::CantDo { function }).await;
    w.assert_quiet().await;
    let mut c = server.connect().await;
    let handle = submit_ok(&mut c, &bg("newfn", "", "x")).await;
    admin_err(&mut admin, "drop function newfn").await;
    admin_ok(&mut admin, &cancel_job(&handle)).await;

    admin_ok(&mut admin, "drop function newfn").await;
    assert_eq!(status(&mut admin, "newfn").await, None);
    admin_err(&mut admin, "drop function newfn").await; // already gone
    admin_err(&mut admin, "drop function never-seen").await;
}

#[tokio::test]
async fn show_jobs_lists_every_held_job_with_retries() {
    let (server, [mut admin, mut c]) = start().await;
    let h1 = submit_ok(&mut c, &bg("f", "", "1")).await;
    let h2 = submit_ok(&mut c, &fg("f", "", "2")).await;
    let mut w = worker(&server, &["f"]).await;
    assert_eq!(grab_uniq(&mut w).await.0, h1);
    let list = admin.admin_list("show jobs").await;
    assert_eq!(list.lines().count(), 3, "two jobs and the dot: {list:?}");
    assert_eq!(
        show_job(&mut admin, &h1).await.map(|j| (j.0, j.1)),
        Some((0, 0))
    );
    assert_eq!(
        show_job(&mut admin, &h2).await.map(|j| (j.0, j.1)),
        Some((0, 0))
    );
    drop(w);
    wait_connections(&mut admin, 2).await;
    assert_eq!(
        show_job(&mut admin, &h1).await.map(|j| j.0),
        Some(1),
        "retry counted"
    );
}

#[tokio::test]
async fn show_unique_jobs_lists_uniques_of_held_jobs() {
    let (server, [mut admin, mut c]) = start().await;
    submit_ok(&mut c, &bg("f", "alpha", "1")).await;
    submit_ok(&mut c, &bg("g", "beta", "2")).await;
    submit_ok(&mut c, &bg("f", "", "no unique")).await;
    let done = submit_ok(&mut c, &bg("h", "gamma", "3")).await;
    let mut w = worker(&server, &["h"]).await;
    grab_uniq(&mut w).await;
    w.send(&complete(&done, "")).await;
    w.assert_quiet().await;
    let list = admin.admin_list("show unique jobs").await;
    // Jobs without a unique may show as empty lines (gearmand); only the uniques matter here.
    let mut uniques: Vec<&str> = list
        .lines()
        .filter(|l| *l != "." && !l.is_empty())
        .collect();
    uniques.sort_unstable();
    assert_eq!(uniques, ["alpha", "beta"], "{list:?}");
}

#[tokio::test]
async fn status_and_prioritystatus_count_jobs_and_workers() {
    let (server, [mut admin, mut c]) = start().await;
    for (p, n) in [
        (Priority::High, 1),
        (Priority::Normal, 2),
        (Priority::Low, 3),
    ] {
        for i in 0..n {
            submit_ok(&mut c, &submit("f", "", &format!("{i}"), p, true)).await;
        }
    }
    let _idle = worker(&server, &["f", "g"]).await;
    let mut busy = worker(&server, &["f"]).await;
    grab_uniq(&mut busy).await; // the HIGH job
    assert_eq!(status(&mut admin, "f").await, Some((6, 1, 2)));
    assert_eq!(status(&mut admin, "g").await, Some((0, 0, 1)));
    let list = admin.admin_list("prioritystatus").await;
    assert_eq!(
        row(&list, "f").unwrap()[1..],
        ["0", "2", "3", "2"],
        "queued only: {list:?}"
    );
    assert_eq!(row(&list, "g").unwrap()[1..], ["0", "0", "0", "1"]);
}

#[tokio::test]
async fn workers_lists_every_connection_with_its_functions() {
    let (server, [mut admin]) = start().await;
    let _w = worker(&server, &["alpha", "beta"]).await;
    let mut c = server.connect().await;
    c.send(&Request::SetClientId { id: b("a-client") }).await;
    c.assert_quiet().await;
    let list = admin.admin_list("workers").await;
    let lines: Vec<&str> = list.lines().filter(|l| *l != ".").collect();
    assert_eq!(lines.len(), 3, "three connections: {list:?}");
    let functions = |l: &str| {
        let mut f: Vec<String> = l
            .split_once(" :")
            .unwrap()
            .1
            .split_whitespace()
            .map(String::from)
            .collect();
        f.sort();
        f
    };
    assert!(
        lines.iter().any(|l| functions(l) == ["alpha", "beta"]),
        "{list:?}"
    );
    assert_eq!(
        lines.iter().filter(|l| functions(l).is_empty()).count(),
        2,
        "{list:?}"
    );
    assert!(lines.iter().any(|l| l.contains(" a-client :")), "{list:?}");
    for l in &lines {
        assert!(
            l.split(' ').nth(1) == Some("127.0.0.1"),
            "peer ip shown: {l:?}"
        );
    }
}

#[tokio::test]
async fn shutdown_from_loopback_stops_the_server() {
    let (server, [mut c]) = start().await;
    let mut w = worker(&server, &["f"]).await;
    admin_ok(&mut c, "shutdown").await;
    server.wait_stopped().await;
    assert_eq!(w.recv_or_close().await, None, "connections are closed");
}

#[tokio::test]
async fn shutdown_graceful_waits_for_queued_and_running_jobs() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let mut c = server.connect().await;
    let queued = submit_ok(&mut c, &fg("f", "", "queued")).await;
    let mut w = worker(&server, &["f"]).await;
    let running = submit_ok(&mut c, &fg("g", "", "running")).await;
    let mut wg = worker(&server, &["g"]).await;
    assert_eq!(grab_uniq(&mut wg).await.0, running);

    admin_ok(&mut c, "shutdown graceful").await;
    // Draining: new jobs are refused...
    expect_error(&mut c, &fg("f", "", "new"), "SHUTDOWN").await;
    // ...but the held work is still served and its results still delivered.
    assert_eq!(grab_uniq(&mut w).await.0, queued);
    w.send(&complete(&queued, "q-done")).await;
    assert_eq!(c.recv().await, Work::Complete("q-done").response(&queued));
    wg.send(&complete(&running, "r-done")).await;
    assert_eq!(c.recv().await, Work::Complete("r-done").response(&running));
    server.wait_stopped().await;
    assert_eq!(c.recv_or_close().await, None, "closed once idle");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn an_immediate_stop_ends_the_drain_an_admin_began() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    let handle = submit_ok(&mut c, &fg("f", "", "x")).await;
    let mut w = worker(&server, &["f"]).await;
    assert_eq!(grab_uniq(&mut w).await.0, handle);
    admin_ok(&mut c, "shutdown graceful").await;
    // The worker never answers, so the drain would never end; the caller's immediate stop
    // (gearboxd's SIGTERM) ends it.
    server.stop(gearbox_server::ShutdownMode::Immediate).await;
    assert_eq!(c.recv_or_close().await, None, "closed");
}

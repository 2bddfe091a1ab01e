//! Admin text commands, checked for their effect on the server rather than their exact text
//! (the text formats are pinned against real gearmand elsewhere).

mod common;

use common::*;
use gearbox_proto::{Priority, Request, Response};
use gearbox_testkit::TestServer;

fn text(handle: &bytes::Bytes) -> String {
    String::from_utf8_lossy(handle).into_owned()
}

#[tokio::test]
async fn cancel_job_fails_it_for_its_clients_whatever_its_state() {
    let server = TestServer::start_with(config()).await;
    let mut admin = server.connect().await;
    let mut c = server.connect().await;
    let queued = submit_ok(&mut c, &fg("f", "u", "q")).await;
    let running = submit_ok(&mut c, &fg("g", "", "r")).await;
    let mut w = worker(&server, &["g"]).await;
    assert_eq!(grab_uniq(&mut w).await.0, running);

    assert_eq!(
        admin
            .admin_line(&format!("cancel job {}", text(&queued)))
            .await,
        "OK\r\n"
    );
    assert_eq!(
        c.recv().await,
        Response::WorkFail {
            handle: queued.clone()
        }
    );
    assert_eq!(
        admin
            .admin_line(&format!("cancel job {}", text(&running)))
            .await,
        "OK\r\n"
    );
    assert_eq!(
        c.recv().await,
        Response::WorkFail {
            handle: running.clone()
        }
    );
    c.assert_quiet().await;

    assert_eq!(status(&mut admin, "f").await, Some((0, 0, 0)));
    assert_eq!(status(&mut admin, "g").await, Some((0, 0, 1)));
    assert_eq!(admin.admin_list("show jobs").await, ".\n");
    // The cancelled running job is gone: its worker's result is refused.
    expect_error(&mut w, &complete(&running, "late"), "JOB_NOT_FOUND").await;
    // Its unique is free again.
    assert_ne!(submit_ok(&mut c, &fg("f", "u", "q")).await, queued);
    // Cancelling twice, or an unknown handle, is an error.
    assert!(admin
        .admin_line(&format!("cancel job {}", text(&queued)))
        .await
        .starts_with("ERR"));
    assert!(admin
        .admin_line("cancel job H:nowhere:1")
        .await
        .starts_with("ERR"));
}

#[tokio::test]
async fn cancel_background_job_removes_it_silently() {
    let server = TestServer::start_with(config()).await;
    let mut c = server.connect().await;
    let handle = submit_ok(&mut c, &bg("f", "", "x")).await;
    assert_eq!(
        c.admin_line(&format!("cancel job {}", text(&handle))).await,
        "OK\r\n"
    );
    c.assert_quiet().await;
    let mut w = worker(&server, &["f"]).await;
    grab_none(&mut w).await;
}

#[tokio::test]
async fn create_and_drop_function() {
    let server = TestServer::start_with(config()).await;
    let mut admin = server.connect().await;
    assert_eq!(status(&mut admin, "newfn").await, None);
    assert_eq!(admin.admin_line("create function newfn").await, "OK\r\n");
    assert_eq!(status(&mut admin, "newfn").await, Some((0, 0, 0)));
    // A bare `\n` ending must not eat the last character (gearmand's bug).
    assert_eq!(admin.admin_line("create function other\n").await, "OK\r\n");
    assert_eq!(status(&mut admin, "other").await, Some((0, 0, 0)));

    // Refused while a worker can do it or a job is held.
    let mut w = worker(&server, &["newfn"]).await;
    assert!(admin
        .admin_line("drop function newfn")
        .await
        .starts_with("ERR"));
    w.send(&Request::CantDo {
        function: b("newfn"),
    })
    .await;
    w.assert_quiet().await;
    let mut c = server.connect().await;
    let handle = submit_ok(&mut c, &bg("newfn", "", "x")).await;
    assert!(admin
        .admin_line("drop function newfn")
        .await
        .starts_with("ERR"));
    assert_eq!(
        admin
            .admin_line(&format!("cancel job {}", text(&handle)))
            .await,
        "OK\r\n"
    );

    assert_eq!(admin.admin_line("drop function newfn").await, "OK\r\n");
    assert_eq!(status(&mut admin, "newfn").await, None);
    assert!(
        admin
            .admin_line("drop function newfn")
            .await
            .starts_with("ERR"),
        "already gone"
    );
    assert!(admin
        .admin_line("drop function never-seen")
        .await
        .starts_with("ERR"));
}

#[tokio::test]
async fn show_jobs_lists_every_held_job_with_retries() {
    let server = TestServer::start_with(config()).await;
    let mut admin = server.connect().await;
    let mut c = server.connect().await;
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
    let server = TestServer::start_with(config()).await;
    let mut admin = server.connect().await;
    let mut c = server.connect().await;
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
    let server = TestServer::start_with(config()).await;
    let mut admin = server.connect().await;
    let mut c = server.connect().await;
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
    let server = TestServer::start_with(config()).await;
    let mut admin = server.connect().await;
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
    let server = TestServer::start_with(config()).await;
    let mut c = server.connect().await;
    let mut w = worker(&server, &["f"]).await;
    assert_eq!(c.admin_line("shutdown").await, "OK\r\n");
    server.wait_stopped().await;
    assert_eq!(w.recv_or_close().await, None, "connections are closed");
}

#[tokio::test]
async fn shutdown_graceful_waits_for_queued_and_running_jobs() {
    let server = TestServer::start_with(config()).await;
    let addr = server.addr;
    let mut c = server.connect().await;
    let queued = submit_ok(&mut c, &fg("f", "", "queued")).await;
    let mut w = worker(&server, &["f"]).await;
    let running = submit_ok(&mut c, &fg("g", "", "running")).await;
    let mut wg = worker(&server, &["g"]).await;
    assert_eq!(grab_uniq(&mut wg).await.0, running);

    assert_eq!(c.admin_line("shutdown graceful").await, "OK\r\n");
    // Draining: new jobs are refused...
    expect_error(&mut c, &fg("f", "", "new"), "SHUTDOWN").await;
    // ...but the held work is still served and its results still delivered.
    assert_eq!(grab_uniq(&mut w).await.0, queued);
    w.send(&complete(&queued, "q-done")).await;
    assert_eq!(
        c.recv().await,
        Response::WorkComplete {
            handle: queued,
            data: b("q-done")
        }
    );
    wg.send(&complete(&running, "r-done")).await;
    assert_eq!(
        c.recv().await,
        Response::WorkComplete {
            handle: running,
            data: b("r-done")
        }
    );
    server.wait_stopped().await;
    assert_eq!(c.recv_or_close().await, None, "closed once idle");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

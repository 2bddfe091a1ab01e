//! Many jobs on one client (pipelined on one connection) and task sets (scatter/gather),
//! against gearbox and the real gearmand.

mod client_support;

use std::time::Duration;

use client_support::{b, within, ClientSide, RawWorker, Server};
use gearbox_client::{Error, TaskSet};
use gearbox_testkit::on_both_servers;
use tokio::task::JoinHandle;

/// Runs a raw worker for `function` that answers `n` jobs with their payload uppercased; the
/// task ends with the worker, still connected.
fn uppercase_worker(srv: &Server, function: &'static str, n: usize) -> JoinHandle<RawWorker> {
    let addr = srv.addr();
    tokio::spawn(async move {
        let mut w = RawWorker::new(addr, &[function]).await;
        for _ in 0..n {
            let job = w.grab().await;
            let out = String::from_utf8_lossy(&job.data).to_uppercase();
            w.complete(&job.handle, &out).await;
        }
        w
    })
}

on_both_servers! {
    a_hundred_concurrent_submits_share_one_connection, each_submit_gets_its_own_job_created,
    a_task_set_gathers_results_in_order, run_all_keeps_each_result,
    a_task_set_times_out_as_a_whole
}

async fn a_hundred_concurrent_submits_share_one_connection(srv: Server) {
    let client = srv.client();
    let worker = uppercase_worker(&srv, "up", 100);
    let calls: Vec<_> = (0..100)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move { c.submit("up", format!("job-{i}")).await })
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        let out = within("submit", call).await.expect("join").expect("result");
        assert_eq!(out, b(&format!("JOB-{i}")), "{}", srv.name());
    }
    let _worker = within("worker", worker).await.expect("worker");

    // One connection for all of them: besides the worker (still connected, so the listing
    // does not depend on when the server notices a close), the admin listing shows this
    // client once.
    let listing = srv.connect().await.admin_list("workers").await;
    let conns: Vec<&str> = listing.lines().filter(|l| *l != ".").collect();
    let without_functions = conns.iter().filter(|l| l.ends_with(" :")).count();
    let name = srv.name();
    assert_eq!(conns.len(), 3, "{name}: client, worker, admin: {listing}");
    assert_eq!(without_functions, 2, "{name}: client and admin: {listing}");
}

async fn each_submit_gets_its_own_job_created(srv: Server) {
    let client = srv.client();
    let starts: Vec<_> = (0..50)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move {
                let handle = c.job("bgc", format!("{i}")).background().await;
                (i, handle)
            })
        })
        .collect();
    let mut handles = std::collections::HashMap::new();
    for s in starts {
        let (i, h) = within("submit", s).await.expect("join");
        handles.insert(h.expect("handle"), i);
    }
    assert_eq!(handles.len(), 50, "{}: distinct handles", srv.name());
    let mut w = srv.worker(&["bgc"]).await;
    for _ in 0..50 {
        let job = w.grab().await;
        let expected = handles.get(&job.handle).expect("a handle we were given");
        assert_eq!(job.data, b(&expected.to_string()), "{}", srv.name());
    }
}

async fn a_task_set_gathers_results_in_order(srv: Server) {
    let client = srv.client();
    let words = ["alpha", "beta", "gamma", "delta", "epsilon"];
    let mut set = client.task_set();
    for w in words {
        set.add(client.job("upset", w));
    }
    assert_eq!(set.len(), 5);
    let worker = uppercase_worker(&srv, "upset", words.len());
    let out = within("set", set.timeout(Duration::from_secs(10)).run())
        .await
        .expect("all ok");
    let expected: Vec<_> = words.iter().map(|w| b(&w.to_uppercase())).collect();
    assert_eq!(out, expected, "{}", srv.name());
    within("worker", worker).await.expect("worker");
}

async fn run_all_keeps_each_result(srv: Server) {
    let client = srv.client();
    let set = TaskSet::new()
        .with(client.job("mixed", "ok"))
        .with(client.job("mixed", "fail"))
        .with(client.job("mixed", "ok2"));
    let mut w = srv.worker(&["mixed"]).await;
    let run = tokio::spawn(set.run_all());
    for _ in 0..3 {
        let job = w.grab().await;
        if job.data == b("fail") {
            w.fail(&job.handle).await;
        } else {
            let data = String::from_utf8_lossy(&job.data).into_owned();
            w.complete(&job.handle, &data).await;
        }
    }
    let results = within("set", run).await.expect("join");
    expect_match!(srv, &results[0], Ok(ok) if ok == "ok");
    expect_match!(srv, &results[1], Err(Error::JobFailed { .. }));
    expect_match!(srv, &results[2], Ok(ok) if ok == "ok2");
}

async fn a_task_set_times_out_as_a_whole(srv: Server) {
    let client = srv.client();
    let limit = Duration::from_millis(200);
    let set = TaskSet::new()
        .with(client.job("none", "1"))
        .with(client.job("none", "2"))
        .timeout(limit);
    let err = within("set", set.run()).await.expect_err("no worker");
    expect_match!(srv, err, Error::Timeout(d) if d == limit);

    // run_all: the finished job keeps its result, the others time out.
    let mut w = srv.worker(&["some"]).await;
    let set = TaskSet::new()
        .with(client.job("some", "done"))
        .with(client.job("none", "stuck"))
        .timeout(Duration::from_secs(1));
    let run = tokio::spawn(set.run_all());
    let job = w.grab().await;
    w.complete(&job.handle, "finished").await;
    let results = within("set", run).await.expect("join");
    expect_match!(srv, &results[0], Ok(done) if done == "finished");
    expect_match!(srv, &results[1], Err(Error::Timeout(_)));
}

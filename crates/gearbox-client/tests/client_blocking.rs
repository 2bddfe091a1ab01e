//! The blocking facade, from plain threads, against gearbox and the real gearmand. The
//! servers and raw workers run on a runtime of their own, as they would in another process.

mod client_support;

use std::time::Duration;

use client_support::{b, RawWorker, Server};
use gearbox_client::blocking::Client;
use gearbox_client::Error;
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// gearbox, then gearmand when installed.
fn servers(rt: &Runtime) -> Vec<Server> {
    let mut all = vec![rt.block_on(Server::gearbox())];
    all.extend(rt.block_on(Server::gearmand()));
    all
}

/// A raw worker on `rt` answering `n` jobs of `function` with the payload reversed (or
/// WORK_FAIL for the payload `fail`).
fn reverse_worker(
    rt: &Runtime,
    srv: &Server,
    function: &'static str,
    n: usize,
) -> tokio::task::JoinHandle<()> {
    let addr = srv.addr();
    rt.spawn(async move {
        let mut w = RawWorker::new(addr, &[function]).await;
        for _ in 0..n {
            let job = w.grab().await;
            if job.data == b("fail") {
                w.fail(&job.handle).await;
            } else {
                let out: String = String::from_utf8_lossy(&job.data).chars().rev().collect();
                w.complete(&job.handle, &out).await;
            }
        }
    })
}

#[test]
fn the_blocking_client_runs_jobs() {
    let rt = runtime();
    for srv in servers(&rt) {
        let name = srv.name();
        let client = Client::new(&srv.list()).expect("client");
        assert_eq!(client.echo("ping").expect("echo"), b("ping"), "{name}");

        let worker = reverse_worker(&rt, &srv, "rev", 3);
        assert_eq!(
            client.submit("rev", "abc").expect("submit"),
            b("cba"),
            "{name}"
        );
        let out = client
            .job("rev", "xyz")
            .high()
            .unique("blocking-1")
            .retries(1)
            .timeout(Duration::from_secs(10))
            .run()
            .expect("run");
        assert_eq!(out, b("zyx"), "{name}");
        let err = client.submit("rev", "fail").expect_err("fails");
        assert!(
            matches!(err, Error::JobFailed { attempts: 1 }),
            "{name}: {err:?}"
        );
        rt.block_on(worker).expect("worker");

        let err = client
            .job("nobody", "x")
            .timeout(Duration::from_millis(100))
            .run()
            .expect_err("no worker");
        assert!(matches!(err, Error::Timeout(_)), "{name}: {err:?}");
    }
}

#[test]
fn the_blocking_client_submits_in_the_background_and_asks_for_status() {
    let rt = runtime();
    for srv in servers(&rt) {
        let name = srv.name();
        let client = gearbox_client::Client::builder()
            .servers(&srv.list())
            .client_id("script")
            .build_blocking()
            .expect("client");
        let handle = client.submit_background("bgb", "x").expect("handle");
        let st = client.job_status(&handle).expect("status");
        assert!(st.known && !st.running, "{name}: {st:?}");
        client
            .job("bgb", "y")
            .unique("blocking-u")
            .low()
            .background()
            .expect("handle");
        let us = client.unique_status("blocking-u").expect("status");
        assert!(us.known, "{name}: {us:?}");
        let later = client.job("bgb", "z").at(u64::MAX / 2).background();
        assert!(later.is_ok(), "{name}: {later:?}");
        assert_eq!(client.servers().len(), 1);
    }
}

#[test]
fn the_blocking_client_is_shared_by_threads() {
    let rt = runtime();
    let srv = rt.block_on(Server::gearbox());
    let client = Client::new(&srv.list()).expect("client");
    let worker = reverse_worker(&rt, &srv, "rev", 8);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let c = client.clone();
            std::thread::spawn(move || c.submit("rev", format!("{i}ab")).expect("submit"))
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        assert_eq!(t.join().expect("thread"), b(&format!("ba{i}")));
    }
    rt.block_on(worker).expect("worker");
    // Dropping the last clone inside a runtime is fine (its runtime shuts down in the
    // background).
    rt.block_on(async move { drop(client) });
}

#[test]
fn the_blocking_client_reports_an_unreachable_server() {
    let port = gearbox_testkit::gearmand::free_port();
    let client = Client::new(&format!("127.0.0.1:{port}")).expect("client");
    let err = client.submit("f", "x").expect_err("nothing listens");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("no server reachable"), "{err}");
}

#[test]
fn the_blocking_client_abandons_a_job_when_asked() {
    let rt = runtime();
    for srv in servers(&rt) {
        let name = srv.name();
        let client = Client::new(&srv.list()).expect("client");

        // Nobody serves `held`: the wait goes on until `keep_going` says no (on its third
        // call: the check before the submit, then two polls).
        let mut asked = 0;
        let started = std::time::Instant::now();
        let err = client
            .job("held", "x")
            .run_while(Duration::from_millis(20), || {
                asked += 1;
                asked < 3
            })
            .expect_err("abandoned");
        assert!(matches!(err, Error::Cancelled), "{name}: {err:?}");
        assert_eq!(asked, 3, "{name}");
        assert!(started.elapsed() < Duration::from_secs(5), "{name}");

        // Already cancelled before the submit: nothing is sent.
        let err = client
            .job("held", "y")
            .run_while(Duration::from_millis(20), || false)
            .expect_err("abandoned");
        assert!(matches!(err, Error::Cancelled), "{name}: {err:?}");

        // The same client (and connection) runs the next job; a job that ends is returned
        // as by `run`, failures included.
        let worker = reverse_worker(&rt, &srv, "rev", 2);
        let out = client
            .job("rev", "abc")
            .run_while(Duration::from_millis(20), || true)
            .expect("run");
        assert_eq!(out, b("cba"), "{name}");
        let err = client
            .job("rev", "fail")
            .run_while(Duration::from_millis(20), || true)
            .expect_err("fails");
        assert!(matches!(err, Error::JobFailed { .. }), "{name}: {err:?}");
        rt.block_on(worker).expect("worker");
    }
}

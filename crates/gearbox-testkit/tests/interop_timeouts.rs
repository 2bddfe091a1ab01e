//! CAN_DO_TIMEOUT as real worker libraries send it: a bare number that Perl's
//! `Gearman::Worker->register_function($name, 2, ...)`, PHP's `GearmanWorker::addFunction(...,
//! 2)` and Python gear's `registerFunction(name, timeout=2)` mean as seconds, which gearbox
//! reads by default. With each: a 0.5 s job under a 2 s timeout completes (a millisecond
//! reading would fail it at once), and a 4 s job gets WORK_FAIL after about 2 s (the default
//! `--timeout-action fail`), the worker serving on after its late result. Scripts are in
//! `tests/scripts/*_timeout.*`.
//!
//! Without an interpreter and its Gearman library each test skips with a printed reason (and
//! fails under `CI=true`).

mod support_ext;

use std::path::Path;

use support_ext::scripts::{
    assert_no_jobs, perl, php, python_gear, run_client, script, worker_then_client,
};

/// Runs `script worker` and `script client` with `program`, then checks nothing is left.
async fn worker_and_client(program: &Path, script_name: &str) {
    let s = script(script_name);
    let server = worker_then_client(program, &[&s, "worker"], &[&s, "client"]).await;
    assert_no_jobs(&server).await;
}

#[tokio::test]
async fn perl_worker_timeout_is_seconds() {
    if let Some(perl) = perl("Perl for the Gearman::Worker timeout test").await {
        worker_and_client(&perl, "perl_timeout.pl").await;
    }
}

#[tokio::test]
async fn php_worker_timeout_is_seconds() {
    if let Some(php) = php("PHP for the GearmanWorker timeout test").await {
        worker_and_client(&php, "php_timeout.php").await;
    }
}

#[tokio::test]
async fn python_gear_worker_timeout_is_seconds() {
    if let Some(python) = python_gear("Python for the gear timeout test").await {
        let server = gearbox_testkit::TestServer::start().await;
        run_client(&server, &python, &[&script("gear_timeout.py")]).await;
    }
}

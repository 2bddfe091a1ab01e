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

use support_ext::scripts::{assert_no_jobs, interpreter, run_client, script, worker_then_client};

#[tokio::test]
async fn perl_worker_timeout_is_seconds() {
    let probe = ["-MGearman::Client", "-MGearman::Worker", "-e", "1"];
    let lacks = "Gearman::Worker (Debian libgearman-client-perl)";
    let why = "Perl for the Gearman::Worker timeout test";
    let Some(perl) = interpreter("perl", why, &probe, lacks).await else {
        return;
    };
    let s = script("perl_timeout.pl");
    let server = worker_then_client(&perl, &[&s, "worker"], &[&s, "client"]).await;
    assert_no_jobs(&server).await;
}

#[tokio::test]
async fn php_worker_timeout_is_seconds() {
    let probe = ["-r", "exit(extension_loaded('gearman') ? 0 : 1);"];
    let lacks = "the gearman extension (Debian php-gearman)";
    let why = "PHP for the GearmanWorker timeout test";
    let Some(php) = interpreter("php", why, &probe, lacks).await else {
        return;
    };
    let s = script("php_timeout.php");
    let server = worker_then_client(&php, &[&s, "worker"], &[&s, "client"]).await;
    assert_no_jobs(&server).await;
}

#[tokio::test]
async fn python_gear_worker_timeout_is_seconds() {
    let probe = ["-c", "import gear"];
    let lacks = "gear (pip install gear)";
    let why = "Python for the gear timeout test";
    let Some(python) = interpreter("python3", why, &probe, lacks).await else {
        return;
    };
    let server = gearbox_testkit::TestServer::start().await;
    run_client(&server, &python, &[&script("gear_timeout.py")]).await;
}

//! Python's `gear` library (OpenStack's Gearman client and worker) against gearbox: a worker
//! registering functions, concurrent foreground jobs with WORK_STATUS and WORK_DATA seen by the
//! client, WORK_FAIL, WORK_EXCEPTION with and without the exceptions option, a background job,
//! and gear's own admin requests. The script is `tests/scripts/gear_interop.py`.
//!
//! Without `python3` and `gear` installed the test skips with a printed reason (and fails
//! under `CI=true`).

mod support_ext;

use gearbox_testkit::TestServer;
use support_ext::scripts::{assert_no_jobs, python_gear, run_client, script};

#[tokio::test]
async fn gear_client_and_worker() {
    let Some(python) = python_gear("Python for the `gear` interop test").await else {
        return;
    };
    let server = TestServer::start().await;
    run_client(&server, &python, &[&script("gear_interop.py")]).await;
    // The script's connections are gone and left nothing behind.
    assert_no_jobs(&server).await;
}

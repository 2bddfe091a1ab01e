//! PHP's pecl `gearman` extension (libgearman underneath, Debian `php-gearman`) against
//! gearbox: a PHP worker and a PHP client — doNormal/doHigh/doLow, a task whose callbacks see
//! WORK_STATUS, WORK_DATA, WORK_WARNING and WORK_COMPLETE in order, scatter/gather tasks with
//! one WORK_FAIL, `addTask` twice with the same function and unique id (both complete
//! callbacks fire: one WORK_COMPLETE per submission), a background job, jobStatus, and ping
//! (ECHO). The script is
//! `tests/scripts/php_interop.php`; the same script passes against Debian's gearmand.
//!
//! Without php and the extension installed the test skips with a printed reason (and fails
//! under `CI=true`).

mod support_ext;

use support_ext::scripts::{client_and_worker, php, script};

#[tokio::test]
async fn php_client_and_worker() {
    let Some(php) = php("PHP for the pecl gearman interop test").await else {
        return;
    };
    let s = script("php_interop.php");
    let server = client_and_worker(&php, &[&s, "worker"], &[&s, "client"]).await;
    let status = server.connect().await.admin("status").await;
    assert!(
        status.contains("php_stream\t0\t0\t0\n"),
        "the worker's functions are gone with it: {status:?}"
    );
}

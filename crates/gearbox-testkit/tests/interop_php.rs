//! PHP's pecl `gearman` extension (libgearman underneath, Debian `php-gearman`) against
//! gearbox: a PHP worker and a PHP client — doNormal/doHigh/doLow, a task whose callbacks see
//! WORK_STATUS, WORK_DATA, WORK_WARNING and WORK_COMPLETE in order, scatter/gather tasks with
//! one WORK_FAIL, a background job, jobStatus, and ping (ECHO). The script is
//! `tests/scripts/php_interop.php`; the same script passes against Debian's gearmand.
//!
//! Without php and the extension installed the test skips with a printed reason (and fails
//! under `CI=true`).

mod support_ext;

use gearbox_testkit::process::{self, Proc};
use gearbox_testkit::{external, TestServer};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/php_interop.php");

/// `php` if it has the gearman extension.
async fn php_with_gearman() -> Option<std::path::PathBuf> {
    let php = external::require("php", "PHP for the pecl gearman interop test")?;
    let probe = process::run(
        &php,
        &["-r", "exit(extension_loaded('gearman') ? 0 : 1);"],
        b"",
    )
    .await;
    if probe.status.success() {
        return Some(php);
    }
    let msg = "php lacks the gearman extension (Debian php-gearman, as .ci/install-deps installs)";
    assert!(!external::in_ci(), "CI=true but {msg}");
    eprintln!("SKIPPED: {msg}");
    None
}

#[tokio::test]
async fn php_client_and_worker() {
    let Some(php) = php_with_gearman().await else {
        return;
    };
    let server = TestServer::start().await;
    let mut worker = Proc::spawn(&php, &[SCRIPT, "worker", &server.port()]);
    let client = process::run(&php, &[SCRIPT, "client", &server.port()], b"").await;
    client.assert_success("php_interop.php client");
    assert!(
        client.stdout.ends_with("ALL OK\n"),
        "client output: {client:?}"
    );
    assert_eq!(
        worker.read_line().await.as_deref(),
        Some("bg:bgdata\n"),
        "the worker ran the background job"
    );
    let out = worker.finish().await;
    out.assert_success("php_interop.php worker");
    assert_eq!(out.stdout, "worker done\n");
    let mut a = server.connect().await;
    assert_eq!(support_ext::admin(&mut a, "show jobs").await, ".\n");
    assert!(
        support_ext::admin(&mut a, "status")
            .await
            .contains("php_stream\t0\t0\t0\n"),
        "the worker's functions are gone with it"
    );
}

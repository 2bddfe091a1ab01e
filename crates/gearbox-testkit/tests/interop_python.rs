//! Python's `gear` library (OpenStack's Gearman client and worker) against gearbox: a worker
//! registering functions, concurrent foreground jobs with WORK_STATUS and WORK_DATA seen by the
//! client, WORK_FAIL, WORK_EXCEPTION with and without the exceptions option, a background job,
//! and gear's own admin requests. The script is `tests/scripts/gear_interop.py`.
//!
//! Without `python3` and `gear` installed the test skips with a printed reason (and fails
//! under `CI=true`).

mod support_ext;

use gearbox_testkit::{external, process, TestServer};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/gear_interop.py");

/// `python3` if it can import `gear`.
async fn python_with_gear() -> Option<std::path::PathBuf> {
    let python = external::require("python3", "Python for the `gear` interop test")?;
    let probe = process::run(&python, &["-c", "import gear"], b"").await;
    if probe.status.success() {
        return Some(python);
    }
    let msg = format!(
        "python3 cannot import gear ({}); `pip install gear` as .ci/install-deps does",
        probe.stderr.trim()
    );
    assert!(!external::in_ci(), "CI=true but {msg}");
    eprintln!("SKIPPED: {msg}");
    None
}

#[tokio::test]
async fn gear_client_and_worker() {
    let Some(python) = python_with_gear().await else {
        return;
    };
    let server = TestServer::start().await;
    let out = process::run(&python, &[SCRIPT, &server.port()], b"").await;
    out.assert_success("gear_interop.py");
    assert!(out.stdout.ends_with("ALL OK\n"), "script output: {out:?}");
    // The script's connections are gone and left nothing behind.
    let mut a = server.connect().await;
    assert_eq!(support_ext::admin(&mut a, "show jobs").await, ".\n");
}

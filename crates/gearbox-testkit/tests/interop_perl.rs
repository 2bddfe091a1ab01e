//! Perl's Gearman::Client and Gearman::Worker (Debian `libgearman-client-perl`) against
//! gearbox: foreground jobs alone and as a task set with WORK_STATUS, a dying worker
//! (WORK_EXCEPTION to a client that asked for exceptions, then WORK_FAIL), a background job,
//! GET_STATUS and the admin `status` the client library parses. Scripts are in
//! `tests/scripts/perl_*.pl`.
//!
//! Without perl and the modules installed the test skips with a printed reason (and fails
//! under `CI=true`).

mod support_ext;

use gearbox_testkit::process::{self, Proc};
use gearbox_testkit::{external, TestServer};

const WORKER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/perl_worker.pl");
const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/perl_client.pl");

/// `perl` if it has Gearman::Client and Gearman::Worker.
async fn perl_with_gearman() -> Option<std::path::PathBuf> {
    let perl = external::require("perl", "Perl for the Gearman::Client interop test")?;
    let probe = process::run(
        &perl,
        &["-MGearman::Client", "-MGearman::Worker", "-e", "1"],
        b"",
    )
    .await;
    if probe.status.success() {
        return Some(perl);
    }
    let msg =
        "perl lacks Gearman::Client (Debian libgearman-client-perl, as .ci/install-deps installs)";
    assert!(!external::in_ci(), "CI=true but {msg}");
    eprintln!("SKIPPED: {msg}");
    None
}

#[tokio::test]
async fn perl_client_and_worker() {
    let Some(perl) = perl_with_gearman().await else {
        return;
    };
    let server = TestServer::start().await;
    let mut worker = Proc::spawn(&perl, &[WORKER, &server.port()]);
    let client = process::run(&perl, &[CLIENT, &server.port()], b"").await;
    client.assert_success("perl_client.pl");
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
    out.assert_success("perl_worker.pl");
    assert_eq!(out.stdout, "worker done\n");
    let mut a = server.connect().await;
    assert_eq!(support_ext::admin(&mut a, "show jobs").await, ".\n");
}

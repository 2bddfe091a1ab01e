//! Perl's Gearman::Client and Gearman::Worker (Debian `libgearman-client-perl`) against
//! gearbox: foreground jobs alone and as a task set with WORK_STATUS, a dying worker
//! (WORK_EXCEPTION to a client that asked for exceptions, then WORK_FAIL), a background job,
//! GET_STATUS and the admin `status` the client library parses. Scripts are in
//! `tests/scripts/perl_*.pl`.
//!
//! Without perl and the modules installed the test skips with a printed reason (and fails
//! under `CI=true`).

mod support_ext;

use support_ext::scripts::{client_and_worker, perl, script};

#[tokio::test]
async fn perl_client_and_worker() {
    let Some(perl) = perl("Perl for the Gearman::Client interop test").await else {
        return;
    };
    let worker = script("perl_worker.pl");
    let client = script("perl_client.pl");
    client_and_worker(&perl, &[&worker], &[&client]).await;
}

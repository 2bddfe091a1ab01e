//! Access control over mutual TLS, in process: rules chosen by the client certificate's common
//! name or subject alternative names grant submitting, registering and admin commands; what a
//! rule does not grant gets `ERROR PERMISSION_DENIED` (or an admin `ERR` line) and the
//! connection goes on working.

use std::sync::Arc;

use gearbox_proto::{Request, Response};
use gearbox_server::access::{AccessPolicy, AccessRule};
use gearbox_server::Config;
use gearbox_testkit::build::{b, bg, can_do, fg};
use gearbox_testkit::tls::TestPki;
use gearbox_testkit::{RawConn, TestServer};

fn rule(name: &str, cert: &[&str], submit: &[&str], register: &[&str], admin: &str) -> AccessRule {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    AccessRule {
        name: Some(name.into()),
        cert: strings(cert),
        submit: strings(submit),
        register: strings(register),
        admin: Some(admin.into()),
        ..AccessRule::default()
    }
}

/// A server requiring client certificates from the test CA, with three rules: the
/// `client.test` certificate submits to `report.*` and reads admin listings; certificates
/// naming a host under `workers.test` (common name or alternative name) register for
/// `report.*` and change the server; anything else (a catch-all) may do nothing.
async fn start(pki: &TestPki) -> TestServer {
    let policy = AccessPolicy::new(vec![
        rule("apps", &["client.test"], &["report.*"], &[], "read"),
        rule("workers", &["*.workers.test"], &[], &["report.*"], "write"),
        rule("others", &[], &[], &[], "none"),
    ])
    .expect("valid rules");
    let config = Config {
        job_handle_prefix: Some("H:acl".into()),
        access: policy,
        ..Config::default()
    };
    TestServer::start_tls(config, Arc::new(pki.server_tls(true))).await
}

async fn denied(conn: &mut RawConn, req: &Request, what: &str) {
    match conn.ask(req).await {
        Response::Error { code, text } => {
            assert_eq!(code, b("PERMISSION_DENIED"), "error code");
            let text = String::from_utf8_lossy(&text);
            assert!(text.contains(what), "`{text}` should name `{what}`");
        }
        other => panic!("expected ERROR PERMISSION_DENIED for {req:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn the_certificate_common_name_chooses_what_a_client_may_submit() {
    let pki = TestPki::new();
    let server = start(&pki).await;
    let mut app = server.connect_tls(pki.client_tls(Some(&pki.client))).await;
    // Granted: a job handle comes back.
    let handle = app.submit(&bg("report.daily", "", "x")).await;
    assert!(handle.starts_with(b"H:acl"), "{handle:?}");
    // Refused, and the connection carries on.
    denied(&mut app, &bg("billing.charge", "", "x"), "billing.charge").await;
    denied(&mut app, &fg("billing.charge", "", "x"), "billing.charge").await;
    assert!(app.echo_works().await);
    // The same client may not register as a worker.
    denied(&mut app, &can_do("report.daily"), "report.daily").await;
    // Admin: reading is granted, changing is not.
    let status = app.admin_list("status").await;
    assert!(status.contains("report.daily"), "{status}");
    let refused = app.admin_line("maxqueue report.daily 5").await;
    assert!(refused.starts_with("ERR PERMISSION_DENIED"), "{refused}");
    assert!(app.echo_works().await);
}

#[tokio::test]
async fn an_alternative_name_matches_a_rule_and_grants_registering() {
    let pki = TestPki::new();
    let server = start(&pki).await;
    // The common name matches no rule; the DNS alternative name does.
    let files = pki.client_cert("worker", "build-box", &["host7.workers.test"]);
    let mut worker = server.connect_tls(pki.client_tls(Some(&files))).await;
    worker.send(&can_do("report.daily")).await;
    denied(&mut worker, &can_do("billing.charge"), "billing.charge").await;
    // Registered for report.daily: a job submitted by the app reaches this worker.
    let mut app = server.connect_tls(pki.client_tls(Some(&pki.client))).await;
    let handle = app.submit(&bg("report.daily", "", "payload")).await;
    match worker.ask(&Request::GrabJob).await {
        Response::JobAssign {
            handle: h,
            function,
            data,
        } => {
            assert_eq!(h, handle);
            assert_eq!(function, b("report.daily"));
            assert_eq!(data, b("payload"));
        }
        other => panic!("expected JOB_ASSIGN, got {other:?}"),
    }
    // Submitting is not part of the workers' rule.
    denied(&mut worker, &bg("report.daily", "", "x"), "report.daily").await;
    // Admin write is.
    assert_eq!(
        worker
            .admin_line("maxqueue report.daily 5")
            .await
            .trim_end(),
        "OK"
    );
}

#[tokio::test]
async fn a_certificate_no_named_rule_matches_falls_to_the_catch_all() {
    let pki = TestPki::new();
    let server = start(&pki).await;
    let files = pki.client_cert("stranger", "stranger.test", &["stranger.test"]);
    let mut stranger = server.connect_tls(pki.client_tls(Some(&files))).await;
    denied(&mut stranger, &bg("report.daily", "", "x"), "report.daily").await;
    denied(&mut stranger, &can_do("report.daily"), "report.daily").await;
    let refused = stranger.admin_line("status").await;
    assert!(refused.starts_with("ERR PERMISSION_DENIED"), "{refused}");
    assert!(stranger.echo_works().await);
}

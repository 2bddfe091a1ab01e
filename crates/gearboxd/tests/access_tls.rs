//! `gearboxd` with `[[access]]` rules in its config file, a mutual-TLS port beside a plain one:
//! rules by client certificate name decide on the TLS port, rules by peer address on the plain
//! port, and what a connection is not granted is refused while the rest keeps working.

mod support;

use gearbox_proto::Response;
use gearbox_testkit::build::{b, bg, can_do};
use gearbox_testkit::tls::TestPki;
use gearbox_testkit::RawConn;
use support::{Gearboxd, TempDir};

/// `client.test` (by certificate) may submit `report.*` and read; loopback peers without a
/// certificate may register for `report.*` and change the server; nothing else is granted.
const RULES: &str = r#"
[[access]]
name = "apps"
cert = ["client.test"]
submit = ["report.*"]
admin = "read"

[[access]]
name = "local-workers"
peer = ["127.0.0.0/8"]
register = ["report.*"]
admin = "write"
"#;

async fn denied(conn: &mut RawConn, req: &gearbox_proto::Request) {
    match conn.ask(req).await {
        Response::Error { code, .. } => assert_eq!(code, b("PERMISSION_DENIED")),
        other => panic!("expected ERROR PERMISSION_DENIED, got {other:?}"),
    }
}

#[tokio::test]
async fn certificate_rules_on_the_tls_port_and_peer_rules_on_the_plain_port() {
    let pki = TestPki::new();
    let dir = TempDir::new();
    let config = dir.join("gearboxd.toml");
    std::fs::write(&config, RULES).unwrap();
    let s = &pki.server;
    let mut server = Gearboxd::start(&[
        "-p",
        "0",
        "-L",
        "127.0.0.1",
        "--config",
        config.to_str().unwrap(),
        "--verbose",
        "WARNING",
        "-q",
        "builtin",
        "--ssl",
        "--ssl-certificate",
        s.cert.to_str().unwrap(),
        "--ssl-key",
        s.key.to_str().unwrap(),
        "--ssl-ca-file",
        pki.ca.to_str().unwrap(),
        "--ssl-port",
        "0",
        "--ssl-listen",
        "127.0.0.1",
    ]);
    let line = server.wait_for_stderr(|l| l.starts_with(gearboxd::TLS_LISTENING_PREFIX));
    let tls_addr: std::net::SocketAddr = line[gearboxd::TLS_LISTENING_PREFIX.len()..]
        .parse()
        .unwrap();

    // The app, over mutual TLS as client.test: submits report.*, nothing else.
    let mut app = RawConn::connect_tls(tls_addr, pki.client_tls(Some(&pki.client))).await;
    let handle = app.submit(&bg("report.daily", "", "data")).await;
    denied(&mut app, &bg("billing.charge", "", "data")).await;
    denied(&mut app, &can_do("report.daily")).await;
    let refused = app.admin_line("maxqueue report.daily 3").await;
    assert!(refused.starts_with("ERR PERMISSION_DENIED"), "{refused}");
    assert!(app.admin_list("status").await.contains("report.daily"));

    // Another certificate of the same CA is not client.test: the first rule that matches it
    // is the loopback one, which grants no submitting.
    let other = pki.client_cert("other", "other.test", &["other.test"]);
    let mut stranger = RawConn::connect_tls(tls_addr, pki.client_tls(Some(&other))).await;
    denied(&mut stranger, &bg("report.daily", "", "data")).await;

    // A worker on the plain port, granted by its loopback address: registers and gets the job.
    let mut worker = RawConn::connect(server.addr).await;
    denied(&mut worker, &can_do("billing.charge")).await;
    worker.send(&can_do("report.daily")).await;
    match worker.ask(&gearbox_proto::Request::GrabJob).await {
        Response::JobAssign {
            handle: h, data, ..
        } => {
            assert_eq!(h, handle);
            assert_eq!(data, b("data"));
        }
        other => panic!("expected JOB_ASSIGN, got {other:?}"),
    }
    denied(&mut worker, &bg("report.daily", "", "data")).await;
    assert_eq!(
        worker
            .admin_line("maxqueue report.daily 3")
            .await
            .trim_end(),
        "OK"
    );

    // Every refusal is logged with the rule that decided it.
    let log = server.stop_with(libc::SIGTERM);
    let refusals: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(refusals.len(), 6, "one warning per refusal:\n{log}");
    assert!(refusals.iter().any(|l| l.contains("apps")), "{log}");
    assert!(
        refusals.iter().any(|l| l.contains("local-workers")),
        "{log}"
    );
}

//! `gearboxd --ssl`: TLS on the Gearman port with mutual TLS, `--ssl-port` beside a plain
//! port, certificate reload on SIGHUP, the start-up errors of bad TLS settings, and Python's
//! `gear` running a job over mutual TLS.

mod support;

use std::path::Path;
use std::sync::Arc;

use gearbox_proto::{Request, Response};
use gearbox_testkit::build::{b, bg, can_do, fg};
use gearbox_testkit::tls::{CertFiles, TestPki};
use gearbox_testkit::{external, process, RawConn};
use support::{start_fails, Gearboxd, TempDir};

const RELOADED: &str = "TLS certificate, key and CA reloaded";
const NOT_RELOADED: &str = "TLS files not reloaded";

fn tls_flags<'a>(cert: &'a Path, key: &'a Path, ca: &'a Path) -> Vec<&'a str> {
    vec![
        "--ssl",
        "--ssl-certificate",
        cert.to_str().unwrap(),
        "--ssl-key",
        key.to_str().unwrap(),
        "--ssl-ca-file",
        ca.to_str().unwrap(),
    ]
}

fn start(extra: &[&str], tls: &[&str]) -> Gearboxd {
    let mut args = vec!["-p", "0", "-L", "127.0.0.1"];
    args.extend_from_slice(tls);
    args.extend_from_slice(extra);
    Gearboxd::start(&args)
}

/// Whether the server refuses a TLS connection made with `client`: the handshake or (TLS
/// 1.3) the first request fails.
async fn refused(addr: std::net::SocketAddr, client: Arc<rustls::ClientConfig>) -> bool {
    match RawConn::try_connect_tls(addr, client).await {
        Err(_) => true,
        Ok(mut c) => !c.echo_works().await,
    }
}

/// A worker on `worker` runs one job that a client on `client` submits.
async fn job_round_trip(worker: &mut RawConn, client: &mut RawConn) {
    worker.send(&can_do("rev")).await;
    worker.assert_quiet().await;
    let handle = client.submit(&fg("rev", "", "abc")).await;
    assert!(matches!(
        worker.ask(&Request::GrabJob).await,
        Response::JobAssign { data, .. } if data == b("abc")
    ));
    worker
        .send(&Request::WorkComplete {
            handle: handle.clone(),
            data: b("cba"),
        })
        .await;
    assert_eq!(
        client.recv().await,
        Response::WorkComplete {
            handle,
            data: b("cba")
        }
    );
}

#[tokio::test]
async fn ssl_makes_the_gearman_port_mutual_tls() {
    let pki = TestPki::new();
    let s = &pki.server;
    let log = ["--log-filter", "error,gearbox_server::net::conn=debug"];
    let mut server = start(&log, &tls_flags(&s.cert, &s.key, &pki.ca));
    let named = pki.client_cert("worker", "worker.test", &["worker.test", "10.1.2.3"]);
    let mut worker = RawConn::connect_tls(server.addr, pki.client_tls(Some(&named))).await;
    let mut client = RawConn::connect_tls(server.addr, pki.client_tls(Some(&pki.client))).await;
    job_round_trip(&mut worker, &mut client).await;
    // The identity each certificate proves: its common name, then its alternative names.
    server.wait_for_stderr(|l| {
        l.contains("TLS handshake done") && l.contains(r#"identity=["worker.test", "10.1.2.3"]"#)
    });
    server.wait_for_stderr(|l| l.contains(r#"identity=["client.test"]"#));
    assert!(refused(server.addr, pki.client_tls(None)).await);
    assert!(refused(server.addr, pki.client_tls(Some(&pki.expired_client))).await);
    let mut plain = RawConn::connect(server.addr).await;
    assert!(!plain.echo_works().await, "plain Gearman on the TLS port");
    server.stop_with(libc::SIGTERM);
}

#[tokio::test]
async fn ssl_port_serves_tls_beside_the_plain_port() {
    let pki = TestPki::new();
    let s = &pki.server;
    let mut flags = tls_flags(&s.cert, &s.key, &pki.ca);
    flags.extend(["--ssl-port", "0", "--ssl-listen", "127.0.0.1"]);
    let mut server = start(&[], &flags);
    let line = server.wait_for_stderr(|l| l.starts_with(gearboxd::TLS_LISTENING_PREFIX));
    let tls_addr: std::net::SocketAddr = line[gearboxd::TLS_LISTENING_PREFIX.len()..]
        .parse()
        .unwrap();
    assert_ne!(tls_addr.port(), server.addr.port());
    // A worker still on the plain port serves a client that moved to TLS, and back.
    let mut plain = RawConn::connect(server.addr).await;
    let mut secure = RawConn::connect_tls(tls_addr, pki.client_tls(Some(&pki.client))).await;
    job_round_trip(&mut plain, &mut secure).await;
    let mut plain_client = RawConn::connect(server.addr).await;
    plain.send(&Request::CantDo { function: b("rev") }).await;
    job_round_trip(&mut secure, &mut plain_client).await;
    // Each port speaks its own protocol only.
    assert!(refused(server.addr, pki.client_tls(Some(&pki.client))).await);
    assert!(!RawConn::connect(tls_addr).await.echo_works().await);
    server.stop_with(libc::SIGTERM);
}

fn copy(from: &CertFiles, ca: &Path, dir: &TempDir) {
    std::fs::copy(&from.cert, dir.join("server.pem")).unwrap();
    std::fs::copy(&from.key, dir.join("server.key")).unwrap();
    std::fs::copy(ca, dir.join("ca.pem")).unwrap();
}

#[tokio::test]
async fn sighup_reloads_the_certificates_without_dropping_connections() {
    let (first, next) = (TestPki::new(), TestPki::new());
    let dir = TempDir::new();
    copy(&first.server, &first.ca, &dir);
    let (cert, key, ca) = (
        dir.join("server.pem"),
        dir.join("server.key"),
        dir.join("ca.pem"),
    );
    let server = start(&["--verbose", "INFO"], &tls_flags(&cert, &key, &ca));
    let mut old = RawConn::connect_tls(server.addr, first.client_tls(Some(&first.client))).await;
    old.submit(&bg("f", "", "before")).await;
    copy(&next.server, &next.ca, &dir);
    server.signal(libc::SIGHUP);
    server.wait_for_stderr(|l| l.contains(RELOADED));
    // The old connection keeps its session; new ones see the new certificate and CA.
    old.submit(&bg("f", "", "after")).await;
    assert!(refused(server.addr, first.client_tls(Some(&first.client))).await);
    let fresh = next.client_tls(Some(&next.client));
    assert!(
        RawConn::connect_tls(server.addr, fresh.clone())
            .await
            .echo_works()
            .await
    );
    // A reload that fails keeps what is in use, and says so.
    std::fs::write(&key, "not a key").unwrap();
    server.signal(libc::SIGHUP);
    let line = server.wait_for_stderr(|l| l.contains(NOT_RELOADED));
    assert!(line.contains("server.key"), "{line}");
    assert!(!line.contains("not a key"), "{line}");
    assert!(
        RawConn::connect_tls(server.addr, fresh)
            .await
            .echo_works()
            .await
    );
    assert!(old.echo_works().await);
}

#[test]
fn bad_tls_settings_stop_the_start_naming_the_problem() {
    let pki = TestPki::new();
    let s = &pki.server;
    let missing = pki.dir().join("missing.pem");
    let err = start_fails(&tls_flags(&missing, &s.key, &pki.ca));
    assert!(err.contains("missing.pem"), "{err}");
    // The key file holds a certificate: no key in it.
    let err = start_fails(&tls_flags(&s.cert, &s.cert, &pki.ca));
    assert!(
        err.contains("server.pem") && err.contains("no private key"),
        "{err}"
    );
    let err = start_fails(&tls_flags(&s.cert, &s.key, &s.key));
    assert!(err.contains("server.key"), "{err}");
    let err = start_fails(&["--ssl", "--ssl-key", s.key.to_str().unwrap()]);
    assert!(err.contains("--ssl needs --ssl-certificate"), "{err}");
    let mut http = tls_flags(&s.cert, &s.key, &pki.ca);
    http.extend(["-r", "http", "--http-port", "0"]);
    let err = start_fails(&http);
    assert!(err.contains("--ssl-port"), "{err}");
    // --check-args reads the files too.
    let out = support::run_to_exit(
        &[
            "--check-args",
            "--ssl",
            "--ssl-certificate",
            s.cert.to_str().unwrap(),
            "--ssl-key",
            missing.to_str().unwrap(),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("missing.pem"), "{err}");
}

#[tokio::test]
async fn python_gear_runs_a_job_over_mutual_tls() {
    let Some(python) = external::require_probed(
        "python3",
        "Python's gear over TLS",
        &["-c", "import gear"],
        |out| {
            format!(
                "python3 lacks gear (`pip install gear`): {}",
                out.stderr.trim()
            )
        },
    )
    .await
    else {
        return;
    };
    let pki = TestPki::new();
    let s = &pki.server;
    let mut server = start(&[], &tls_flags(&s.cert, &s.key, &pki.ca));
    let script = format!("{}/tests/scripts/gear_tls.py", env!("CARGO_MANIFEST_DIR"));
    let port = server.addr.port().to_string();
    let args = [
        script.as_str(),
        &port,
        pki.ca.to_str().unwrap(),
        pki.client.cert.to_str().unwrap(),
        pki.client.key.to_str().unwrap(),
    ];
    let out = process::run(&python, &args, b"").await;
    out.assert_success("gear_tls.py");
    assert!(out.stdout.ends_with("ALL OK\n"), "{out:?}");
    server.stop_with(libc::SIGTERM);
}

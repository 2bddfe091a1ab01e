//! TLS on the Gearman port, in process: handshakes with and without client certificates, the
//! certificates refused, both protocol versions, the handshake timeout, close_notify, reloads,
//! and jobs over TLS driven by raw packets.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gearbox_proto::{Request, Response};
use gearbox_server::tls::{server_config, ServerTls};
use gearbox_server::{Config, ShutdownMode};
use gearbox_testkit::build::{b, bg, can_do, fg, raw_packet};
use gearbox_testkit::tls::{client_config, TestPki};
use gearbox_testkit::{RawConn, TestServer, READ_TIMEOUT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config() -> Config {
    Config {
        job_handle_prefix: Some("H:test".into()),
        ..Config::default()
    }
}

async fn start(pki: &TestPki, mutual: bool) -> TestServer {
    TestServer::start_tls(config(), Arc::new(pki.server_tls(mutual))).await
}

/// The value of a counter in the admin `metrics` listing.
async fn metric(conn: &mut RawConn, name: &str) -> u64 {
    let text = conn.admin_list("metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Whether a connection with `client` is refused: the handshake fails, or (TLS 1.3, where
/// the client finishes before the server has checked its certificate) the first request does.
async fn refused(server: &TestServer, client: Arc<rustls::ClientConfig>) -> bool {
    match RawConn::try_connect_tls(server.addr, client).await {
        Err(_) => true,
        Ok(mut conn) => !conn.echo_works().await,
    }
}

#[tokio::test]
async fn a_job_round_trips_over_tls_without_client_certificates() {
    let pki = TestPki::new();
    let server = start(&pki, false).await;
    let tls = pki.client_tls(None);
    let mut worker = server.connect_tls(tls.clone()).await;
    let mut client = server.connect_tls(tls).await;
    // Raw bytes first: CAN_DO "rev" as the worker sends it.
    worker.send_raw(&raw_packet(b"\0REQ", 1, b"rev")).await;
    worker.send(&Request::PreSleep).await;
    worker.assert_quiet().await;
    let handle = client.submit(&fg("rev", "", "abc")).await;
    assert_eq!(handle, b("H:test:1"));
    assert_eq!(worker.recv().await, Response::Noop);
    assert_eq!(
        worker.ask(&Request::GrabJob).await,
        Response::JobAssign {
            handle: handle.clone(),
            function: b("rev"),
            data: b("abc")
        }
    );
    // A result past the size the server forwards by reference, to cross the TLS writer in
    // several segments.
    let big = Bytes::from(vec![b'x'; 300 * 1024]);
    worker
        .send(&Request::WorkComplete {
            handle: handle.clone(),
            data: big.clone(),
        })
        .await;
    assert_eq!(
        client.recv().await,
        Response::WorkComplete { handle, data: big }
    );
    // Background jobs and the admin protocol work the same way.
    let bg_handle = client.submit(&bg("rev", "u1", "later")).await;
    assert_eq!(bg_handle, b("H:test:2"));
    assert_eq!(client.admin_list("status").await, "rev\t1\t0\t1\n.\n");
    server.stop(ShutdownMode::Immediate).await;
}

#[tokio::test]
async fn with_a_ca_only_certificates_it_issued_are_accepted() {
    let pki = TestPki::new();
    let server = start(&pki, true).await;
    let mut good = server.connect_tls(pki.client_tls(Some(&pki.client))).await;
    assert!(good.echo_works().await);
    assert_eq!(
        metric(&mut good, "gearbox_tls_handshake_failures_total").await,
        0
    );
    assert!(
        refused(&server, pki.client_tls(None)).await,
        "no client certificate"
    );
    let other = client_config(
        &pki.ca,
        Some(&pki.other_client),
        gearbox_testkit::tls::ALL_VERSIONS,
    );
    assert!(refused(&server, other).await, "another CA's certificate");
    assert!(
        refused(&server, pki.client_tls(Some(&pki.expired_client))).await,
        "an expired certificate"
    );
    // Each refusal was counted, and the accepted connection is unaffected.
    assert_eq!(
        metric(&mut good, "gearbox_tls_handshake_failures_total").await,
        3
    );
    good.send(&can_do("f")).await;
    good.assert_quiet().await;
    server.stop(ShutdownMode::Immediate).await;
}

#[tokio::test]
async fn tls_1_2_only_and_tls_1_3_only_clients_both_work() {
    let pki = TestPki::new();
    let server = start(&pki, true).await;
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let only = client_config(&pki.ca, Some(&pki.client), &[version]);
        let mut conn = server.connect_tls(only.clone()).await;
        assert!(conn.echo_works().await, "{version:?}");
        let handle = conn.submit(&bg("v", "", "x")).await;
        assert!(handle.starts_with(b"H:test:"), "{version:?}");
        // The same version refuses a certificate from another CA.
        let other = client_config(&pki.ca, Some(&pki.other_client), &[version]);
        assert!(refused(&server, other).await, "{version:?}");
    }
    server.stop(ShutdownMode::Immediate).await;
}

#[tokio::test]
async fn a_peer_that_never_completes_the_handshake_is_dropped() {
    let pki = TestPki::new();
    let tls = pki
        .server_tls(false)
        .with_handshake_timeout(Duration::from_millis(200));
    let server = TestServer::start_tls(config(), Arc::new(tls)).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut got = Vec::new();
    let n = tokio::time::timeout(READ_TIMEOUT, silent.read_to_end(&mut got))
        .await
        .expect("the server closes a silent peer within the handshake timeout");
    assert!(
        n.is_err() || got.is_empty(),
        "nothing sent to a silent peer"
    );
    // A plain Gearman client on the TLS port fails the handshake at once.
    let mut plain = RawConn::connect(server.addr).await;
    assert!(!plain.echo_works().await);
    let mut conn = server.connect_tls(pki.client_tls(None)).await;
    assert_eq!(
        metric(&mut conn, "gearbox_tls_handshake_failures_total").await,
        2
    );
    server.stop(ShutdownMode::Immediate).await;
}

#[tokio::test]
async fn closing_sends_close_notify() {
    let pki = TestPki::new();
    let server = start(&pki, false).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(pki.client_tls(None))
        .connect(name, tcp)
        .await
        .unwrap();
    // A malformed packet: the server answers ERROR and closes.
    tls.write_all(b"\0REQ\0\0\0\x01\xff\xff\xff\xff")
        .await
        .unwrap();
    let mut got = Vec::new();
    let r = tokio::time::timeout(READ_TIMEOUT, tls.read_to_end(&mut got))
        .await
        .expect("closed in time");
    // Without close_notify, rustls reports an unexpected end of file instead.
    assert!(r.is_ok(), "clean TLS close expected: {r:?}");
    assert!(got.starts_with(b"\0RES"), "the ERROR packet first: {got:?}");
    server.stop(ShutdownMode::Immediate).await;
}

#[tokio::test]
async fn a_new_configuration_serves_new_handshakes_while_old_connections_continue() {
    let pki = TestPki::new();
    let next = TestPki::new();
    let tls = Arc::new(pki.server_tls(true));
    let server = TestServer::start_tls(config(), tls.clone()).await;
    let mut old = server.connect_tls(pki.client_tls(Some(&pki.client))).await;
    assert!(old.echo_works().await);
    tls.replace(server_config(&next.server_files(true)).unwrap());
    // The established connection keeps going on its session.
    assert!(old.echo_works().await);
    old.submit(&bg("f", "", "still here")).await;
    // New handshakes see the new certificate and CA only.
    assert!(refused(&server, pki.client_tls(Some(&pki.client))).await);
    let mut new = server
        .connect_tls(next.client_tls(Some(&next.client)))
        .await;
    assert!(new.echo_works().await);
    // A reload from files that went bad keeps the configuration in use.
    let broken = ServerTls::from_files(next.server_files(true)).unwrap();
    std::fs::write(&next.server.key, "not a key").unwrap();
    let before = broken.current();
    let e = broken.reload().unwrap_err().to_string();
    assert!(e.contains("server.key"), "{e}");
    assert!(Arc::ptr_eq(&before, &broken.current()));
    server.stop(ShutdownMode::Immediate).await;
}

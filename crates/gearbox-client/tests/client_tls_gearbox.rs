//! The TLS client scenarios of `tls_support` against gearbox's own TLS listener (in process,
//! `TestServer::start_tls`), with and without required client certificates: the same
//! scenarios `client_tls.rs` runs against the testkit's TLS proxy.

mod tls_support;

use gearbox_server::Config;
use gearbox_testkit::tls::TestPki;
use gearbox_testkit::TestServer;
use std::sync::Arc;
use tls_support::*;

async fn server(pki: &TestPki, mutual: bool) -> TestServer {
    TestServer::start_tls(Config::default(), Arc::new(pki.server_tls(mutual))).await
}

fn endpoint<'a>(server: &TestServer, pki: &'a TestPki, mutual: bool) -> TlsEndpoint<'a> {
    TlsEndpoint {
        addr: server.addr,
        pki,
        requires_client_cert: mutual,
    }
}

#[tokio::test]
async fn jobs_admin_and_raw_over_gearbox_tls() {
    for mutual in [false, true] {
        let pki = TestPki::new();
        let srv = server(&pki, mutual).await;
        let ep = endpoint(&srv, &pki, mutual);
        foreground_round_trip(&ep).await;
        background_round_trip(&ep).await;
        admin_over_tls(&ep).await;
        raw_over_tls(&ep).await;
        sequential_connections_share_a_config(&ep).await;
    }
}

#[tokio::test]
async fn gearbox_tls_refuses_what_it_should() {
    let pki = TestPki::new();
    let srv = server(&pki, true).await;
    let ep = endpoint(&srv, &pki, true);
    wrong_ca_is_refused(&ep).await;
    server_name_is_checked(&ep).await;
    bad_client_certs_are_refused(&ep).await;
}

#[tokio::test]
async fn python_gear_and_a_gearbox_worker_over_gearbox_mtls() {
    let pki = TestPki::new();
    let srv = server(&pki, true).await;
    python_gear_client(&endpoint(&srv, &pki, true)).await;
}

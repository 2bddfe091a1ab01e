//! The TLS client scenarios of `tls_support` against gearbox's own TLS server (the in-process
//! server with a TLS listener, as `gearboxd --ssl` runs it): the client, worker, admin and raw
//! APIs with and without client certificates, and every refusal.

mod tls_support;

use std::sync::Arc;

use gearbox_server::Config;
use gearbox_testkit::tls::TestPki;
use gearbox_testkit::TestServer;
use tls_support::*;

/// A gearbox server speaking TLS on its port, and the certificates.
struct Setup {
    server: TestServer,
    pki: TestPki,
    mtls: bool,
}

impl Setup {
    async fn new(mtls: bool) -> Setup {
        let pki = TestPki::new();
        let tls = Arc::new(pki.server_tls(mtls));
        let server = TestServer::start_tls(Config::default(), tls).await;
        Setup { server, pki, mtls }
    }

    fn ep(&self) -> TlsEndpoint<'_> {
        TlsEndpoint {
            addr: self.server.addr,
            pki: &self.pki,
            requires_client_cert: self.mtls,
        }
    }
}

#[tokio::test]
async fn jobs_round_trip_without_client_certificates() {
    let s = Setup::new(false).await;
    foreground_round_trip(&s.ep()).await;
    background_round_trip(&s.ep()).await;
}

#[tokio::test]
async fn jobs_round_trip_over_mutual_tls() {
    let s = Setup::new(true).await;
    foreground_round_trip(&s.ep()).await;
    background_round_trip(&s.ep()).await;
}

#[tokio::test]
async fn admin_and_raw_connections() {
    let s = Setup::new(true).await;
    admin_over_tls(&s.ep()).await;
    raw_over_tls(&s.ep()).await;
    sequential_connections_share_a_config(&s.ep()).await;
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_refused() {
    for mtls in [false, true] {
        let s = Setup::new(mtls).await;
        wrong_ca_is_refused(&s.ep()).await;
    }
}

#[tokio::test]
async fn the_server_name_is_checked() {
    let s = Setup::new(false).await;
    server_name_is_checked(&s.ep()).await;
}

#[tokio::test]
async fn client_certificates_the_server_refuses_are_tls_errors() {
    let s = Setup::new(true).await;
    bad_client_certs_are_refused(&s.ep()).await;
}

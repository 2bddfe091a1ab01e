//! The client, worker, admin and raw APIs over TLS, against the testkit's TLS proxy in front
//! of an in-process gearbox server: without and with client certificates (mTLS), TLS 1.2 and
//! 1.3, wrong CA, server names, bad files, refused client certificates, reconnecting.

mod tls_support;

use gearbox_client::{Error, TlsConfig};
use gearbox_testkit::process::Proc;
use gearbox_testkit::tls::TestPki;
use gearbox_testkit::tls_proxy::{Handshake, TlsProxy, TlsProxyOptions};
use gearbox_testkit::{external, Poller, TestServer};
use tls_support::*;

/// A plain server, a TLS proxy in front of it, and the certificates.
struct Setup {
    _server: TestServer,
    proxy: TlsProxy,
    pki: TestPki,
    mtls: bool,
}

impl Setup {
    async fn new(mtls: bool, tls13: Option<bool>) -> Setup {
        let pki = TestPki::new();
        let server = TestServer::start().await;
        let mut opts = TlsProxyOptions::new(&pki.server);
        if mtls {
            opts = opts.require_client_cert(&pki.ca);
        }
        if let Some(v) = tls13 {
            opts = opts.only(v);
        }
        let proxy = TlsProxy::start(server.addr, opts).await;
        Setup {
            _server: server,
            proxy,
            pki,
            mtls,
        }
    }

    fn ep(&self) -> TlsEndpoint<'_> {
        TlsEndpoint {
            addr: self.proxy.addr,
            pki: &self.pki,
            requires_client_cert: self.mtls,
        }
    }
}

#[tokio::test]
async fn foreground_job_over_tls_without_client_cert() {
    let s = Setup::new(false, None).await;
    foreground_round_trip(&s.ep()).await;
}

#[tokio::test]
async fn foreground_job_over_mtls() {
    let s = Setup::new(true, None).await;
    foreground_round_trip(&s.ep()).await;
    // Every handshake (client and worker) presented the client certificate.
    let handshakes = s.proxy.handshakes();
    assert!(!handshakes.is_empty());
    for h in handshakes {
        assert!(
            matches!(
                h,
                Handshake::Accepted {
                    client_cert: Some(_),
                    ..
                }
            ),
            "{h:?}"
        );
    }
}

#[tokio::test]
async fn jobs_over_tls_1_2_and_1_3() {
    for (tls13, name) in [(false, "TLSv1_2"), (true, "TLSv1_3")] {
        let s = Setup::new(true, Some(tls13)).await;
        foreground_round_trip(&s.ep()).await;
        background_round_trip(&s.ep()).await;
        for h in s.proxy.handshakes() {
            match h {
                Handshake::Accepted { version, .. } => assert_eq!(version, name),
                other => panic!("{other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn python_gear_over_mtls_with_a_gearbox_tls_worker() {
    let s = Setup::new(true, None).await;
    python_gear_client(&s.ep()).await;
}

#[tokio::test]
async fn background_job_over_tls() {
    let s = Setup::new(false, None).await;
    background_round_trip(&s.ep()).await;
}

#[tokio::test]
async fn admin_and_raw_connections_over_tls() {
    let s = Setup::new(true, None).await;
    admin_over_tls(&s.ep()).await;
    raw_over_tls(&s.ep()).await;
    sequential_connections_share_a_config(&s.ep()).await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let s = Setup::new(false, None).await;
    wrong_ca_is_refused(&s.ep()).await;
    let s = Setup::new(true, None).await;
    wrong_ca_is_refused(&s.ep()).await;
}

#[tokio::test]
async fn the_server_name_is_checked() {
    let s = Setup::new(false, None).await;
    server_name_is_checked(&s.ep()).await;
}

#[tokio::test]
async fn a_certificate_without_the_address_needs_the_name_override() {
    let pki = TestPki::new();
    let server = TestServer::start().await;
    // A certificate for a DNS name only: reaching it by 127.0.0.1 cannot match.
    let named = pki.server_cert("named", "gear.test", &["gear.test"]);
    let proxy = TlsProxy::start(server.addr, TlsProxyOptions::new(&named)).await;
    let ep = TlsEndpoint {
        addr: proxy.addr,
        pki: &pki,
        requires_client_cert: false,
    };
    let plain = TlsConfig::builder().ca_file(&pki.ca).build().unwrap();
    let refused = within("echo", ep.client_with(plain).echo("x")).await;
    match refused {
        Err(e @ Error::Tls { .. }) => assert!(e.to_string().contains("127.0.0.1"), "{e}"),
        other => panic!("{other:?}"),
    }
    let named = TlsConfig::builder()
        .ca_file(&pki.ca)
        .server_name("gear.test")
        .build()
        .unwrap();
    let echoed = within("echo", ep.client_with(named).echo("y")).await;
    assert_eq!(echoed.expect("accepted with the override"), "y");
}

#[tokio::test]
async fn missing_or_wrong_files_fail_at_build_time() {
    missing_files_are_setup_errors(&TestPki::new()).await;
}

#[tokio::test]
async fn refused_client_certificates_are_tls_errors() {
    let s = Setup::new(true, None).await;
    bad_client_certs_are_refused(&s.ep()).await;
    // Over TLS 1.2 the refusal comes inside the handshake instead of after it.
    let s = Setup::new(true, Some(false)).await;
    bad_client_certs_are_refused(&s.ep()).await;
}

#[tokio::test]
async fn a_plain_server_is_not_mistaken_for_tls() {
    let server = TestServer::start().await;
    let pki = TestPki::new();
    let ep = TlsEndpoint {
        addr: server.addr,
        pki: &pki,
        requires_client_cert: false,
    };
    let result = within("echo", ep.client().echo("x")).await;
    match result {
        Err(e @ Error::Tls { .. }) => assert!(e.to_string().contains("port"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_client_reconnects_over_tls_after_a_cut() {
    let s = Setup::new(true, None).await;
    reconnects_over_tls(&s.ep(), || s.proxy.cut_connections()).await;
    let accepted = s
        .proxy
        .handshakes()
        .into_iter()
        .filter(|h| matches!(h, Handshake::Accepted { .. }))
        .count();
    assert!(accepted >= 2, "expected a second handshake, got {accepted}");
}

#[tokio::test]
async fn the_worker_reconnects_over_tls_after_a_cut() {
    let s = Setup::new(true, None).await;
    worker_reconnects_over_tls(&s.ep(), || s.proxy.cut_connections()).await;
}

#[tokio::test]
async fn a_tls_failure_fails_over_to_the_next_server() {
    let s = Setup::new(true, None).await;
    // A server whose certificate comes from a CA this client does not trust.
    let stranger = TestPki::new();
    let upstream = TestServer::start().await;
    let bad = TlsProxy::start(upstream.addr, TlsProxyOptions::new(&stranger.server)).await;
    let client = gearbox_client::Client::builder()
        .servers(&format!("{},{}", bad.addr, s.proxy.addr))
        .tls(s.ep().tls())
        .build()
        .unwrap();
    // Every request starts at the first server: each one skips it for the second.
    for i in 0..3 {
        let echoed = within("echo", client.echo(format!("{i}"))).await;
        assert_eq!(echoed.expect("failed over"), format!("{i}"));
    }
    assert!(bad
        .handshakes()
        .iter()
        .all(|h| matches!(h, Handshake::Refused(_))));
    // With only the untrusted server, the error is the TLS one, not "unreachable".
    let only_bad = gearbox_client::Client::builder()
        .servers(&bad.addr.to_string())
        .tls(s.ep().tls())
        .build()
        .unwrap();
    let result = within("echo", only_bad.echo("x")).await;
    assert!(matches!(result, Err(Error::Tls { .. })), "{result:?}");
}

/// rustls against OpenSSL: socat's OpenSSL listener, requiring client certificates, in front
/// of the plain server. Every scenario opens several connections one after another, which
/// once failed (OpenSSL refuses resumed sessions without a session id context).
#[tokio::test]
async fn an_openssl_server_requiring_client_certificates() {
    let Some(socat) = external::require("socat", "an OpenSSL TLS listener, for interop") else {
        return;
    };
    let pki = TestPki::new();
    let server = TestServer::start().await;
    let port = gearbox_testkit::gearmand::free_port();
    let path = |p: &std::path::Path| p.to_str().expect("UTF-8 path").to_string();
    let listen = format!(
        "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,nodelay,cert={},key={},cafile={},verify=1",
        path(&pki.server.cert),
        path(&pki.server.key),
        path(&pki.ca),
    );
    let _socat = Proc::spawn(socat, &[listen, format!("TCP:{},nodelay", server.addr)]);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut poll = Poller::new("socat to listen");
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        poll.again().await;
    }
    let ep = TlsEndpoint {
        addr,
        pki: &pki,
        requires_client_cert: true,
    };
    foreground_round_trip(&ep).await;
    background_round_trip(&ep).await;
    admin_over_tls(&ep).await;
    raw_over_tls(&ep).await;
    sequential_connections_share_a_config(&ep).await;
    wrong_ca_is_refused(&ep).await;
}

#[test]
fn the_blocking_client_works_over_tls() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = rt.block_on(Setup::new(true, None));
    let ep = s.ep();
    let client = gearbox_client::Client::builder()
        .servers(&ep.list())
        .tls(ep.tls())
        .build_blocking()
        .expect("blocking client");
    assert_eq!(client.echo("blocking").expect("echo"), "blocking");
    let mut admin = gearbox_client::blocking::Admin::connect_with(
        ep.list().parse().unwrap(),
        gearbox_client::admin::DEFAULT_TIMEOUT,
        Some(&ep.tls()),
    )
    .expect("blocking admin");
    assert!(!admin.version().expect("version").is_empty());
}

//! A TLS terminator on a free 127.0.0.1 port in front of a plain server: TLS clients can be
//! tested against any plain Gearman server (the in-process [`TestServer`](crate::TestServer),
//! or a real gearmand) before, or besides, gearboxd's own TLS listener.
//!
//! Each accepted connection runs the TLS handshake (TLS 1.2 and 1.3, or one of them, with
//! rustls and ring); with [`TlsProxyOptions::client_ca`] a client certificate signed by that
//! CA is required. The decrypted bytes go to the upstream server and back unchanged. What
//! each handshake ended with is recorded ([`TlsProxy::handshakes`]), so a test can tell a
//! refused handshake from one that never happened.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::tls::CertFiles;

/// The outcome of one handshake at the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// Done; with the client certificate's DER bytes when one was sent.
    Accepted {
        /// The client certificate, if any.
        client_cert: Option<Vec<u8>>,
        /// `TLSv1_2` or `TLSv1_3`.
        version: String,
    },
    /// Failed, with rustls's reason.
    Refused(String),
}

/// What the proxy presents and requires.
#[derive(Debug, Clone)]
pub struct TlsProxyOptions {
    /// The server certificate and key.
    pub server: CertFiles,
    /// Require a client certificate signed by this CA (mTLS).
    pub client_ca: Option<PathBuf>,
    /// Offer only TLS 1.2 (`Some(false)`), only TLS 1.3 (`Some(true)`), or both (`None`).
    pub tls13_only: Option<bool>,
}

impl TlsProxyOptions {
    /// Presents `server`, requires no client certificate, TLS 1.2 and 1.3.
    pub fn new(server: &CertFiles) -> TlsProxyOptions {
        TlsProxyOptions {
            server: server.clone(),
            client_ca: None,
            tls13_only: None,
        }
    }

    /// Requires a client certificate signed by `ca`.
    pub fn require_client_cert(mut self, ca: &Path) -> TlsProxyOptions {
        self.client_ca = Some(ca.to_path_buf());
        self
    }

    /// Offers only TLS 1.2 (`false`) or only TLS 1.3 (`true`).
    pub fn only(mut self, tls13: bool) -> TlsProxyOptions {
        self.tls13_only = Some(tls13);
        self
    }
}

/// A running proxy; stopped (with every connection it carries) on drop.
pub struct TlsProxy {
    /// Where it accepts TLS connections.
    pub addr: SocketAddr,
    handshakes: Arc<Mutex<Vec<Handshake>>>,
    cut: tokio::sync::watch::Sender<u64>,
    task: JoinHandle<()>,
}

fn server_config(opts: &TlsProxyOptions) -> ServerConfig {
    #[allow(deprecated)] // ring is the workspace's provider; see gearbox-client's tls module
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match opts.tls13_only {
        None => &[&rustls::version::TLS13, &rustls::version::TLS12],
        Some(true) => &[&rustls::version::TLS13],
        Some(false) => &[&rustls::version::TLS12],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("TLS versions");
    let builder = match &opts.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).expect("read the client CA") {
                roots
                    .add(cert.expect("a CA certificate"))
                    .expect("add the CA");
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        }
    };
    let chain = CertificateDer::pem_file_iter(&opts.server.cert)
        .expect("read the server certificate")
        .collect::<Result<Vec<_>, _>>()
        .expect("server certificate PEM");
    let key = PrivateKeyDer::from_pem_file(&opts.server.key).expect("read the server key");
    builder
        .with_single_cert(chain, key)
        .expect("server certificate and key")
}

impl TlsProxy {
    /// Listens on `127.0.0.1:0` and forwards every TLS connection, decrypted, to `upstream`.
    pub async fn start(upstream: SocketAddr, opts: TlsProxyOptions) -> TlsProxy {
        let acceptor = TlsAcceptor::from(Arc::new(server_config(&opts)));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the TLS proxy");
        let addr = listener.local_addr().expect("TLS proxy address");
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let seen = handshakes.clone();
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, seen) = (acceptor.clone(), seen.clone());
                let mut cuts = cuts.clone();
                cuts.mark_unchanged();
                conns.spawn(async move {
                    let mut tls = match acceptor.accept(tcp).await {
                        Ok(tls) => tls,
                        Err(e) => {
                            seen.lock().unwrap().push(Handshake::Refused(e.to_string()));
                            return;
                        }
                    };
                    let (_, session) = tls.get_ref();
                    seen.lock().unwrap().push(Handshake::Accepted {
                        client_cert: session
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(|c| c.to_vec()),
                        version: format!("{:?}", session.protocol_version().expect("version")),
                    });
                    let Ok(mut plain) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut tls, &mut plain) => {}
                        _ = cuts.changed() => {}
                    }
                });
                // Reap finished connections so the set does not grow without bound.
                while conns.try_join_next().is_some() {}
            }
        });
        TlsProxy {
            addr,
            handshakes,
            cut,
            task,
        }
    }

    /// Closes every connection carried so far (new ones are still accepted).
    pub fn cut_connections(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// Every handshake so far, in the order they ended.
    pub fn handshakes(&self) -> Vec<Handshake> {
        self.handshakes.lock().unwrap().clone()
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

//! TLS for every connection the crate opens: [`TlsConfig`] and its builder.
//!
//! The server's certificate is verified against the CA certificates given (there is no
//! fallback to the system's roots: a Gearman server's certificate normally comes from a
//! private CA, and a trust store that accepts any public certificate would make a
//! server-name check the only protection). A client certificate is sent when one is given
//! (servers that verify client certificates require one). TLS 1.2 and 1.3, with rustls and
//! its `ring` provider.
//!
//! The name checked against the server's certificate is the host part of each server
//! address (an IP address is checked against the certificate's IP address entries), unless
//! [`TlsConfigBuilder::server_name`] overrides it.
//!
//! ```no_run
//! # fn f() -> gearbox_client::Result<()> {
//! use gearbox_client::tls::TlsConfig;
//! let tls = TlsConfig::builder()
//!     .ca_file("/etc/gearbox/ca.pem")
//!     .client_cert_files("/etc/gearbox/client.pem", "/etc/gearbox/client.key")
//!     .build()?;
//! let client = gearbox_client::Client::builder()
//!     .servers("gear1.example:4730")
//!     .tls(tls)
//!     .build()?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::{Error, Result};

/// Where a PEM document comes from.
#[derive(Clone)]
enum Pem {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl Pem {
    fn describe(&self, what: &str) -> String {
        match self {
            Pem::File(p) => format!("{what} file {}", p.display()),
            Pem::Bytes(_) => format!("{what} PEM given in memory"),
        }
    }

    fn read(&self, what: &str) -> Result<Vec<u8>> {
        match self {
            Pem::Bytes(b) => Ok(b.clone()),
            Pem::File(p) => std::fs::read(p).map_err(|e| Error::TlsSetup {
                what: self.describe(what),
                reason: format!("cannot read it ({e}); check the path and its permissions"),
            }),
        }
    }
}

// Key material is never printed: only where it comes from.
impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(p) => write!(f, "File({})", p.display()),
            Pem::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
        }
    }
}

/// Collects the TLS settings; [`build`](Self::build) reads the files and checks them.
///
/// | setting | default |
/// |---|---|
/// | [`ca_file`](Self::ca_file) / [`ca_pem`](Self::ca_pem) | none: required |
/// | [`client_cert_files`](Self::client_cert_files) / [`client_cert_pem`](Self::client_cert_pem) | none: no client certificate |
/// | [`server_name`](Self::server_name) | the host part of each server address |
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct TlsConfigBuilder {
    cas: Vec<Pem>,
    client: Option<(Pem, Pem)>,
    server_name: Option<String>,
}

impl TlsConfigBuilder {
    /// Trusts the CA certificates in a PEM file (one or more certificates). May be called
    /// more than once.
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Self {
        self.cas.push(Pem::File(path.as_ref().to_path_buf()));
        self
    }

    /// Trusts the CA certificates in PEM text. May be called more than once.
    pub fn ca_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.cas.push(Pem::Bytes(pem.as_ref().to_vec()));
        self
    }

    /// Sends the client certificate (chain) in `cert` and proves it with the private key in
    /// `key` (PEM files; PKCS#8, PKCS#1 or SEC1 keys).
    pub fn client_cert_files(mut self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        self.client = Some((
            Pem::File(cert.as_ref().to_path_buf()),
            Pem::File(key.as_ref().to_path_buf()),
        ));
        self
    }

    /// Like [`client_cert_files`](Self::client_cert_files), from PEM text.
    pub fn client_cert_pem(mut self, cert: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Self {
        self.client = Some((
            Pem::Bytes(cert.as_ref().to_vec()),
            Pem::Bytes(key.as_ref().to_vec()),
        ));
        self
    }

    /// Checks every server's certificate against `name` instead of the host it is reached
    /// by (for servers reached by an address their certificate does not list).
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Reads and checks the certificates and key.
    ///
    /// Fails with [`Error::TlsSetup`] when no CA was given, a file cannot be read or holds
    /// no usable certificate or key, the key does not match the certificate, or the server
    /// name is not a valid DNS name or IP address.
    pub fn build(self) -> Result<TlsConfig> {
        // ring is the workspace's provider (no aws-lc build); rustls 0.23.48 deprecates it
        // only for lacking post-quantum key exchange.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        if self.cas.is_empty() {
            return Err(setup(
                "CA certificate",
                "none given; TLS needs the CA that signed the server's certificate \
                 (ca_file, or --ssl-ca-file / GEARBOX_SSL_CA_FILE); the system's roots are not used",
            ));
        }
        let mut roots = RootCertStore::empty();
        for ca in &self.cas {
            for cert in certificates(ca, "CA certificate")? {
                roots.add(cert).map_err(|e| {
                    setup(
                        &ca.describe("CA certificate"),
                        &format!("not a usable CA certificate: {e}"),
                    )
                })?;
            }
        }
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| setup("CA certificate", &e.to_string()))?;
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| setup("TLS versions", &e.to_string()))?
            .with_webpki_verifier(verifier);
        let config = match &self.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = certificates(cert, "client certificate")?;
                let key_der = private_key(key)?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    setup(
                        &key.describe("client key"),
                        &format!(
                            "does not fit {} ({e}); give the key that belongs to the certificate",
                            cert.describe("the client certificate")
                        ),
                    )
                })?
            }
        };
        let mut config = config;
        // No session resumption: Gearman connections live long, so it saves little, and
        // OpenSSL servers that verify client certificates without a session id context
        // (socat, and possibly gearmand) fail every resumed handshake with an internal error.
        config.resumption = rustls::client::Resumption::disabled();
        let server_name = match self.server_name {
            None => None,
            Some(n) => Some(ServerName::try_from(n.clone()).map_err(|_| {
                setup(
                    "server name",
                    &format!("{n:?} is neither a DNS name nor an IP address"),
                )
            })?),
        };
        Ok(TlsConfig {
            config: Arc::new(config),
            server_name,
            client_cert: self.client.is_some(),
        })
    }
}

fn setup(what: &str, reason: &str) -> Error {
    Error::TlsSetup {
        what: what.to_string(),
        reason: reason.to_string(),
    }
}

fn certificates(pem: &Pem, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let text = pem.read(what)?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| setup(&pem.describe(what), &format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(setup(
            &pem.describe(what),
            "holds no certificate (expected a \"-----BEGIN CERTIFICATE-----\" block)",
        ));
    }
    Ok(certs)
}

fn private_key(pem: &Pem) -> Result<PrivateKeyDer<'static>> {
    let text = pem.read("client key")?;
    // The parser's own message may quote the file; say only what kind of problem it is.
    PrivateKeyDer::from_pem_slice(&text).map_err(|_| {
        setup(
            &pem.describe("client key"),
            "holds no usable private key (expected a PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" \
             or \"EC PRIVATE KEY\" block, unencrypted)",
        )
    })
}

/// Checked TLS settings, cheap to clone; made by [`TlsConfig::builder`].
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
    client_cert: bool,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_name", &self.server_name)
            .field("client_cert", &self.client_cert)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// A builder with nothing set (a CA must be given before [`TlsConfigBuilder::build`]).
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder::default()
    }

    /// The rustls configuration (for connections opened by other code).
    pub fn rustls_config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }

    /// Whether a client certificate is sent.
    pub fn has_client_cert(&self) -> bool {
        self.client_cert
    }

    /// A copy that checks `name` when no server name was set: for connecting to an address
    /// that `name` resolved to, so the certificate is still checked against the name.
    ///
    /// ```no_run
    /// # fn f(tls: gearbox_client::TlsConfig) -> gearbox_client::Result<()> {
    /// let for_gear1 = tls.or_server_name("gear1.example")?;
    /// # Ok(()) }
    /// ```
    pub fn or_server_name(&self, name: &str) -> Result<TlsConfig> {
        let mut copy = self.clone();
        if copy.server_name.is_none() {
            copy.server_name = Some(self.server_name_for(name)?);
        }
        Ok(copy)
    }

    /// The name checked against the certificate of the server at `host`: the override, or
    /// `host` itself.
    pub fn server_name_for(&self, host: &str) -> Result<ServerName<'static>> {
        if let Some(n) = &self.server_name {
            return Ok(n.clone());
        }
        ServerName::try_from(host.to_string()).map_err(|_| {
            setup(
                "server name",
                &format!(
                    "host {host:?} is neither a DNS name nor an IP address; \
                     set server_name (--ssl-server-name) to the name in the server's certificate"
                ),
            )
        })
    }
}

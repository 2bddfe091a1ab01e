//! TLS on the Gearman port: the listener type [`run`](crate::run) takes, the reloadable
//! server configuration behind a TLS listener, loading it from PEM files, and the names a
//! verified client certificate proves.
//!
//! - [`Listener`]: a TCP listener, plain or TLS (`From<TcpListener>` gives a plain one).
//! - [`ServerTls`]: what a TLS listener hands each new connection: the current rustls
//!   [`ServerConfig`] (swapped whole by [`ServerTls::reload`], so a new handshake uses the new
//!   certificate while established connections keep theirs) and the handshake timeout.
//! - [`TlsFiles`] and [`server_config`]: certificate chain, key and optional CA from PEM
//!   files. With a CA, every client must present a certificate that CA issued (mutual TLS);
//!   without one, clients are not asked for a certificate. TLS 1.2 and 1.3, ring provider.
//! - [`identity`]: a client certificate's subject common name and alternative names, which
//!   fill [`ConnInfo::identity`](crate::core::ConnInfo::identity).
//!
//! The handshake itself runs in each connection's task (see `net::conn`), never in the
//! accept loop, so a peer that stalls it delays nobody else.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

/// Default time a new connection has to complete its TLS handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a TLS configuration could not be built; each names the file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        /// Which file this is (certificate, key, CA file).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable PEM section of the kind needed.
    #[error("{} holds no {what} (expected a PEM file with a `BEGIN {pem}` section)", path.display())]
    Empty {
        /// What was looked for.
        what: &'static str,
        /// The PEM label expected.
        pem: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// A file is not valid PEM.
    #[error("{} is not a valid PEM {what} file: {message}", path.display())]
    Pem {
        /// What was looked for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        message: String,
    },
    /// rustls refused the certificates or key (a key that does not match the certificate, an
    /// unsupported key type, a CA certificate it cannot parse).
    #[error("TLS setup with {} failed: {source}", path.display())]
    Rustls {
        /// The file most likely at fault.
        path: PathBuf,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
    /// The client verifier could not be built from the CA file.
    #[error("cannot verify client certificates with the CA file {}: {message}", path.display())]
    Verifier {
        /// The CA file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Where a TLS listener's certificate, key and (for mutual TLS) CA come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain (PEM), leaf first.
    pub certificate: PathBuf,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM) that client certificates must chain to; `None` = clients are not
    /// asked for a certificate.
    pub ca: Option<PathBuf>,
}

/// The ring provider, named explicitly so that no process-wide default is needed. (rustls
/// 0.23.48 deprecates it for lacking post-quantum key exchange; the workspace builds ring
/// only, to avoid aws-lc's C/cmake build.)
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            pem: "CERTIFICATE",
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::Empty {
            what: "private key",
            pem: "PRIVATE KEY",
            path: path.to_owned(),
        },
        // The message names the problem, never the key's bytes.
        e => TlsError::Pem {
            what: "key",
            path: path.to_owned(),
            message: e.to_string(),
        },
    })
}

/// Builds a server configuration from `files`: TLS 1.2 and 1.3 with the ring provider; with a
/// CA file, client certificates are required and verified against it.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certificates("certificate", &files.certificate)?;
    let key = private_key(&files.key)?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|source| TlsError::Rustls {
            path: files.certificate.clone(),
            source,
        })?;
    let builder = match &files.ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates("CA file", ca)? {
                roots.add(cert).map_err(|source| TlsError::Rustls {
                    path: ca.clone(),
                    source,
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Verifier {
                    path: ca.clone(),
                    message: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::Rustls {
            path: files.key.clone(),
            source,
        })?;
    Ok(Arc::new(config))
}

/// The TLS side of one or more listeners: the configuration new handshakes use, replaceable
/// while the server runs.
#[derive(Debug)]
pub struct ServerTls {
    // A std RwLock: read once per accepted connection, written by a reload; never held
    // across an await.
    current: RwLock<Arc<ServerConfig>>,
    files: Option<TlsFiles>,
    handshake_timeout: Duration,
}

impl ServerTls {
    /// TLS with a configuration built elsewhere ([`reload`](Self::reload) then has no files
    /// to re-read) and the default handshake timeout.
    pub fn new(config: Arc<ServerConfig>) -> ServerTls {
        ServerTls {
            current: RwLock::new(config),
            files: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// TLS from PEM files (see [`server_config`]), which [`reload`](Self::reload) re-reads.
    pub fn from_files(files: TlsFiles) -> Result<ServerTls, TlsError> {
        let config = server_config(&files)?;
        Ok(ServerTls {
            files: Some(files),
            ..ServerTls::new(config)
        })
    }

    /// Sets how long a new connection has to complete its handshake before it is dropped
    /// (default [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> ServerTls {
        self.handshake_timeout = timeout;
        self
    }

    /// How long a new connection has to complete its handshake.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The configuration the next handshake uses.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Uses `config` for every handshake from now on; established connections keep theirs.
    pub fn replace(&self, config: Arc<ServerConfig>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    /// Re-reads the files given to [`from_files`](Self::from_files) and uses them for new
    /// handshakes. On an error the previous configuration stays in use. Without files
    /// (built with [`new`](Self::new)), does nothing.
    pub fn reload(&self) -> Result<(), TlsError> {
        if let Some(files) = &self.files {
            self.replace(server_config(files)?);
        }
        Ok(())
    }

    /// The files this configuration is read from, if any.
    pub fn files(&self) -> Option<&TlsFiles> {
        self.files.as_ref()
    }
}

/// A listening socket: plain TCP, or TLS when `tls` is set.
#[derive(Debug)]
pub struct Listener {
    /// The socket.
    pub tcp: TcpListener,
    /// TLS for every connection accepted here; `None` = plain TCP.
    pub tls: Option<Arc<ServerTls>>,
}

impl Listener {
    /// A TLS listener on `tcp`.
    pub fn tls(tcp: TcpListener, tls: Arc<ServerTls>) -> Listener {
        Listener {
            tcp,
            tls: Some(tls),
        }
    }
}

impl From<TcpListener> for Listener {
    fn from(tcp: TcpListener) -> Listener {
        Listener { tcp, tls: None }
    }
}

/// The names a client certificate proves: the subject's common name(s) first, then its
/// subject alternative names (DNS names, IP addresses, e-mail addresses), each once, in
/// certificate order. Empty if the certificate cannot be parsed (it was verified by rustls,
/// so that does not happen in practice).
pub fn identity(cert: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::{FromDer, X509Certificate};
    let Ok((_, cert)) = X509Certificate::from_der(cert.as_ref()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = Vec::new();
    let mut add = |name: String| {
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    };
    for cn in cert.subject().iter_common_name() {
        if let Ok(s) = cn.as_str() {
            add(s.to_owned());
        }
    }
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(s) | GeneralName::RFC822Name(s) => add((*s).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes)
                            .ok()
                            .map(std::net::IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        add(ip.to_canonical().to_string());
                    }
                }
                _ => {}
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    fn cert(cn: Option<&str>, sans: Vec<SanType>) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params
            .distinguished_name
            .push(DnType::OrganizationName, "not a name");
        params.subject_alt_names = sans;
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn identity_is_the_common_name_then_dns_ip_and_email_names_once_each() {
        let der = cert(
            Some("worker.test"),
            vec![
                SanType::DnsName("worker.test".try_into().unwrap()),
                SanType::DnsName("alt.example".try_into().unwrap()),
                SanType::IpAddress("10.1.2.3".parse().unwrap()),
                SanType::IpAddress("::ffff:10.9.9.9".parse().unwrap()),
                SanType::IpAddress("fd00::1".parse().unwrap()),
                SanType::Rfc822Name("ops@example.org".try_into().unwrap()),
                SanType::URI("https://example.org/x".try_into().unwrap()),
            ],
        );
        assert_eq!(
            identity(&der),
            [
                "worker.test",
                "alt.example",
                "10.1.2.3",
                "10.9.9.9",
                "fd00::1",
                "ops@example.org"
            ]
        );
    }

    #[test]
    fn identity_without_a_common_name_is_the_alternative_names() {
        let der = cert(None, vec![SanType::DnsName("only.san".try_into().unwrap())]);
        assert_eq!(identity(&der), ["only.san"]);
        assert!(identity(&CertificateDer::from(vec![1, 2, 3])).is_empty());
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("gearbox-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let c = params.self_signed(&key).unwrap();
        let (cert_path, key_path) = (dir.join("c.pem"), dir.join("k.pem"));
        std::fs::write(&cert_path, c.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let files = |certificate: &Path, key: &Path, ca: Option<&Path>| TlsFiles {
            certificate: certificate.to_owned(),
            key: key.to_owned(),
            ca: ca.map(Path::to_owned),
        };
        assert!(server_config(&files(&cert_path, &key_path, None)).is_ok());
        assert!(server_config(&files(&cert_path, &key_path, Some(&cert_path))).is_ok());
        let missing = dir.join("missing.pem");
        let e = server_config(&files(&missing, &key_path, None)).unwrap_err();
        assert!(e.to_string().contains("missing.pem"), "{e}");
        // A certificate where the key should be: no key in it.
        let e = server_config(&files(&cert_path, &cert_path, None)).unwrap_err();
        assert!(matches!(e, TlsError::Empty { .. }), "{e}");
        assert!(e.to_string().contains("c.pem"), "{e}");
        // A key where the CA should be.
        let e = server_config(&files(&cert_path, &key_path, Some(&key_path))).unwrap_err();
        assert!(e.to_string().contains("k.pem"), "{e}");
        // Another key than the certificate's.
        let other = dir.join("other.key");
        std::fs::write(&other, KeyPair::generate().unwrap().serialize_pem()).unwrap();
        let e = server_config(&files(&cert_path, &other, None)).unwrap_err();
        assert!(e.to_string().contains("other.key"), "{e}");
        // A reload that fails keeps the configuration in use.
        let tls = ServerTls::from_files(files(&cert_path, &key_path, None)).unwrap();
        let before = tls.current();
        std::fs::write(&key_path, "garbage").unwrap();
        assert!(tls.reload().is_err());
        assert!(Arc::ptr_eq(&before, &tls.current()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! TLS to a database server, shared by the stores that make their own rustls configuration
//! (PostgreSQL) or only need the PEM files read with clear errors (Redis, MySQL/MariaDB).
//! Behind the `tls` feature; rustls with the ring provider, TLS 1.2 and 1.3.
//!
//! How much of the server's certificate is checked is a [`Verify`] level, named after
//! libpq's `sslmode` values:
//!
//! - [`Verify::Encrypt`]: the connection is encrypted and the handshake's signatures are
//!   checked, but any certificate is accepted. Protects against listeners on the network, not
//!   against someone who can pose as the server.
//! - [`Verify::Chain`]: the certificate must be signed by the CA ([`TlsFiles::ca`]) and
//!   valid now; any name is accepted.
//! - [`Verify::Full`]: as `Chain`, and the certificate must name the host connected to.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};

/// How much of the server's certificate is checked (see the [module documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Encrypted, but any certificate is accepted.
    Encrypt,
    /// Signed by the CA; any name.
    Chain,
    /// Signed by the CA and naming the host.
    Full,
}

/// MySQL's `--ssl-mode` (as its command-line client takes it), for the MySQL/MariaDB store.
/// With the `serde` feature it is a string in configuration files, read by the same
/// [`FromStr`](std::str::FromStr) as command lines (any case, `-` or `_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MysqlSslMode {
    /// Plain TCP (the default: MySQL's PREFERRED would fall back to it silently).
    #[default]
    Disabled,
    /// TLS, any certificate ([`Verify::Encrypt`]).
    Required,
    /// TLS, a certificate signed by the CA ([`Verify::Chain`]).
    VerifyCa,
    /// TLS, a certificate signed by the CA that names the host ([`Verify::Full`]).
    VerifyIdentity,
}

impl MysqlSslMode {
    /// Its name as MySQL writes it: `DISABLED`, `REQUIRED`, `VERIFY_CA`, `VERIFY_IDENTITY`.
    pub fn as_str(self) -> &'static str {
        match self {
            MysqlSslMode::Disabled => "DISABLED",
            MysqlSslMode::Required => "REQUIRED",
            MysqlSslMode::VerifyCa => "VERIFY_CA",
            MysqlSslMode::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }

    /// How much of the server's certificate it checks; `None` without TLS.
    pub fn verify(self) -> Option<Verify> {
        match self {
            MysqlSslMode::Disabled => None,
            MysqlSslMode::Required => Some(Verify::Encrypt),
            MysqlSslMode::VerifyCa => Some(Verify::Chain),
            MysqlSslMode::VerifyIdentity => Some(Verify::Full),
        }
    }
}

impl fmt::Display for MysqlSslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for MysqlSslMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let all = [
            MysqlSslMode::Disabled,
            MysqlSslMode::Required,
            MysqlSslMode::VerifyCa,
            MysqlSslMode::VerifyIdentity,
        ];
        let name = s.trim().replace('-', "_");
        all.into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(&name))
            .ok_or_else(|| {
                format!(
                    "unknown ssl mode `{s}`: use DISABLED, REQUIRED, VERIFY_CA or \
                     VERIFY_IDENTITY (PREFERRED is not offered: it falls back to plain TCP)"
                )
            })
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for MysqlSslMode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for MysqlSslMode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// The PEM files of a TLS client: the CA that signs the server's certificate, and the
/// client's own certificate and key for servers that require one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificates (PEM) that the server's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// The client certificate (PEM, may hold its chain).
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM, unencrypted).
    pub key: Option<PathBuf>,
}

/// A file that cannot be used for TLS.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file cannot be read.
    #[error(
        "cannot read the {what} {path}: {source}; check the path and that gearboxd may read it"
    )]
    Read {
        /// Which file it is meant to be (`CA file`, `client certificate`, `client key`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The file holds no usable PEM block of the expected kind.
    #[error("the {what} {path} holds no PEM {expected}: {reason}")]
    Pem {
        /// Which file it is meant to be.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What was looked for (`certificate`, `private key`).
        expected: &'static str,
        /// What the PEM reader said.
        reason: String,
    },
    /// A client certificate without its key, or a key without its certificate.
    #[error("a client certificate needs both the certificate and its key file; {0} is missing")]
    Incomplete(&'static str),
    /// Checking the server's certificate needs the CA that signed it.
    #[error("checking the server's certificate needs a CA file (the CA that signed it)")]
    NoCa,
    /// rustls refused the certificates or key.
    #[error("TLS set-up: {0}")]
    Rustls(String),
}

/// Reads a PEM file whole (for drivers that take PEM bytes), with an error naming `what`.
pub fn read_pem(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| TlsError::Read {
        what,
        path: path.to_owned(),
        source: Arc::new(e),
    })?;
    // Parsed once here, so a wrong file is reported at start-up by name.
    let text = String::from_utf8_lossy(&bytes);
    let expected = if what.contains("key") {
        "private key"
    } else {
        "certificate"
    };
    let ok = if expected == "private key" {
        PrivateKeyDer::from_pem_slice(&bytes)
            .map(|_| ())
            .map_err(|e| e.to_string())
    } else {
        certs_from(&bytes).map(|_| ())
    };
    ok.map_err(|reason| TlsError::Pem {
        what,
        path: path.to_owned(),
        expected,
        reason: if text.trim().is_empty() {
            "the file is empty".into()
        } else {
            reason
        },
    })?;
    Ok(bytes)
}

fn certs_from(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no `BEGIN CERTIFICATE` block".into());
    }
    Ok(certs)
}

fn certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_pem(path, what)?;
    certs_from(&bytes).map_err(|reason| TlsError::Pem {
        what,
        path: path.to_owned(),
        expected: "certificate",
        reason,
    })
}

/// The ring provider every TLS connection of gearbox uses.
// ring is the project's choice (no aws-lc build); rustls 0.23.48 deprecates its constructor
// only because ring has no post-quantum key exchange.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls client configuration (TLS 1.2 and 1.3, ring) that checks the server's
/// certificate as `verify` says against `files.ca`, and presents `files.cert` and
/// `files.key` when both are given.
pub fn client_config(files: &TlsFiles, verify: Verify) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match (verify, &files.ca) {
        (Verify::Encrypt, _) => Arc::new(AnyCertificate(provider.clone())),
        (_, None) => return Err(TlsError::NoCa),
        (level, Some(ca)) => {
            let mut roots = RootCertStore::empty();
            for cert in certs(ca, "CA file")? {
                roots.add(cert).map_err(|e| TlsError::Pem {
                    what: "CA file",
                    path: ca.clone(),
                    expected: "certificate",
                    reason: e.to_string(),
                })?;
            }
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| TlsError::Rustls(e.to_string()))?;
            if level == Verify::Full {
                webpki
            } else {
                Arc::new(AnyName(webpki))
            }
        }
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&files.cert, &files.key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => return Err(TlsError::Incomplete("the key")),
        (None, Some(_)) => return Err(TlsError::Incomplete("the certificate")),
        (Some(cert), Some(key)) => {
            let chain = certs(cert, "client certificate")?;
            let bytes = read_pem(key, "client key")?;
            let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
                what: "client key",
                path: key.clone(),
                expected: "private key",
                reason: e.to_string(),
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::Rustls(e.to_string()))?
        }
    };
    Ok(config)
}

/// [`Verify::Encrypt`]: accepts any certificate, checks the handshake's signatures.
struct AnyCertificate(Arc<CryptoProvider>);

impl fmt::Debug for AnyCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AnyCertificate")
    }
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// [`Verify::Chain`]: the CA's checks, except that the certificate may name another host.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The name is checked last, after the chain, the validity period and revocation.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_ssl_modes_read_as_mysql_writes_them() {
        for m in ["DISABLED", "required", "verify-ca", "Verify_Identity"] {
            let mode: MysqlSslMode = m.parse().unwrap();
            assert_eq!(
                mode.as_str().replace('_', "-"),
                m.to_uppercase().replace('_', "-")
            );
        }
        let e = "PREFERRED".parse::<MysqlSslMode>().unwrap_err();
        assert!(e.contains("falls back to plain"), "{e}");
        assert_eq!(MysqlSslMode::VerifyCa.verify(), Some(Verify::Chain));
        assert_eq!(MysqlSslMode::default().verify(), None);
    }

    #[test]
    fn missing_and_empty_files_are_named() {
        let dir = std::env::temp_dir().join(format!("gearbox-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let e = read_pem(&empty, "CA file").unwrap_err().to_string();
        assert!(e.contains("empty.pem") && e.contains("empty"), "{e}");
        let e = read_pem(&dir.join("nope.pem"), "CA file")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot read the CA file") && e.contains("nope.pem"),
            "{e}"
        );
        let files = TlsFiles {
            ca: None,
            cert: None,
            key: None,
        };
        assert!(matches!(
            client_config(&files, Verify::Full),
            Err(TlsError::NoCa)
        ));
        assert!(client_config(&files, Verify::Encrypt).is_ok());
        let half = TlsFiles {
            cert: Some(empty),
            ..files
        };
        assert!(matches!(
            client_config(&half, Verify::Encrypt),
            Err(TlsError::Incomplete(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

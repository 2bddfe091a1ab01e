//! Test certificates, generated per test with rcgen and written as PEM files into a temporary
//! directory: a CA, a server certificate for `localhost` and `127.0.0.1`, client certificates
//! with chosen names, one from a second CA and one that has expired.
//!
//! Every key is ECDSA P-256, which every TLS stack in the interop tests (rustls, OpenSSL under
//! Python's `ssl` and libgearman) accepts, over TLS 1.2 and 1.3.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gearbox_server::tls::{ServerTls, TlsFiles};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// A certificate and its private key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub key: PathBuf,
}

/// A throwaway public-key infrastructure in a temporary directory, removed on drop.
pub struct TestPki {
    dir: tempfile::TempDir,
    ca_cert: Certificate,
    ca_key: KeyPair,
    /// The CA certificate (PEM) that signs the server and client certificates.
    pub ca: PathBuf,
    /// The server's certificate, valid for `localhost` and `127.0.0.1`.
    pub server: CertFiles,
    /// A client certificate with common name `client.test` (and that DNS name as SAN).
    pub client: CertFiles,
    /// A second, unrelated CA's certificate (PEM).
    pub other_ca: PathBuf,
    /// A client certificate (common name `client.test`) signed by the other CA.
    pub other_client: CertFiles,
    /// A client certificate (common name `expired.test`) signed by the CA that expired in
    /// 2020.
    pub expired_client: CertFiles,
}

fn ca(name: &str) -> (Certificate, KeyPair) {
    let key = KeyPair::generate().expect("generate a CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).expect("self-sign the CA");
    (cert, key)
}

fn write(path: &Path, pem: &str) {
    std::fs::write(path, pem).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

impl TestPki {
    /// Generates the CA, the other CA and every certificate listed on [`TestPki`].
    pub fn new() -> TestPki {
        let dir = tempfile::tempdir().expect("temporary directory for certificates");
        let (ca_cert, ca_key) = ca("gearbox test CA");
        let (other_cert, other_key) = ca("another test CA");
        let ca = dir.path().join("ca.pem");
        write(&ca, &ca_cert.pem());
        let other_ca = dir.path().join("other-ca.pem");
        write(&other_ca, &other_cert.pem());
        let mut pki = TestPki {
            ca,
            other_ca,
            server: CertFiles {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            client: CertFiles {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            other_client: CertFiles {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            expired_client: CertFiles {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            dir,
            ca_cert,
            ca_key,
        };
        pki.server = pki.issue(
            "server",
            "localhost",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
            None,
        );
        pki.client = pki.client_cert("client", "client.test", &["client.test"]);
        pki.other_client = pki.issue_by(
            "other-client",
            "client.test",
            &["client.test"],
            ExtendedKeyUsagePurpose::ClientAuth,
            None,
            (&other_cert, &other_key),
        );
        pki.expired_client = pki.issue(
            "expired-client",
            "expired.test",
            &["expired.test"],
            ExtendedKeyUsagePurpose::ClientAuth,
            Some((2019, 2020)),
        );
        pki
    }

    /// The directory holding every file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Issues a client certificate from the CA with common name `cn` and the given subject
    /// alternative names (DNS names, or IP addresses when they parse as one), written as
    /// `<file>.pem` and `<file>.key`.
    pub fn client_cert(&self, file: &str, cn: &str, sans: &[&str]) -> CertFiles {
        self.issue(file, cn, sans, ExtendedKeyUsagePurpose::ClientAuth, None)
    }

    /// Issues a server certificate from the CA for the given names (DNS names or IP
    /// addresses), written as `<file>.pem` and `<file>.key`.
    pub fn server_cert(&self, file: &str, cn: &str, sans: &[&str]) -> CertFiles {
        self.issue(file, cn, sans, ExtendedKeyUsagePurpose::ServerAuth, None)
    }

    fn issue(
        &self,
        file: &str,
        cn: &str,
        sans: &[&str],
        usage: ExtendedKeyUsagePurpose,
        years: Option<(i32, i32)>,
    ) -> CertFiles {
        self.issue_by(file, cn, sans, usage, years, (&self.ca_cert, &self.ca_key))
    }

    fn issue_by(
        &self,
        file: &str,
        cn: &str,
        sans: &[&str],
        usage: ExtendedKeyUsagePurpose,
        years: Option<(i32, i32)>,
        (issuer, issuer_key): (&Certificate, &KeyPair),
    ) -> CertFiles {
        let key = KeyPair::generate().expect("generate a key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("parameters");
        params.distinguished_name.push(DnType::CommonName, cn);
        for san in sans {
            let san = match san.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*san).try_into().expect("a DNS name")),
            };
            params.subject_alt_names.push(san);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        if let Some((from, to)) = years {
            params.not_before = rcgen::date_time_ymd(from, 1, 1);
            params.not_after = rcgen::date_time_ymd(to, 1, 1);
        }
        let cert = params
            .signed_by(&key, issuer, issuer_key)
            .expect("sign the certificate");
        let files = CertFiles {
            cert: self.dir.path().join(format!("{file}.pem")),
            key: self.dir.path().join(format!("{file}.key")),
        };
        write(&files.cert, &cert.pem());
        write(&files.key, &key.serialize_pem());
        files
    }
}

/// TLS 1.2 and 1.3, as a client offers them by default.
pub const ALL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A client configuration that trusts `ca`, presents `client` (if any) and offers `versions`
/// (ring provider).
pub fn client_config(
    ca: &Path,
    client: Option<&CertFiles>,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read the CA file") {
        roots
            .add(cert.expect("a CA certificate"))
            .expect("add the CA");
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(files) => {
            let chain = CertificateDer::pem_file_iter(&files.cert)
                .expect("read the client certificate")
                .collect::<Result<Vec<_>, _>>()
                .expect("a client certificate");
            let key = PrivateKeyDer::from_pem_file(&files.key).expect("the client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client certificate and key")
        }
    };
    Arc::new(config)
}

impl TestPki {
    /// The server's TLS from this PKI's server certificate; `mutual` = client certificates
    /// issued by the CA are required.
    pub fn server_tls(&self, mutual: bool) -> ServerTls {
        ServerTls::from_files(self.server_files(mutual)).expect("server TLS from the test PKI")
    }

    /// The server certificate's files, with the CA when `mutual`.
    pub fn server_files(&self, mutual: bool) -> TlsFiles {
        TlsFiles {
            certificate: self.server.cert.clone(),
            key: self.server.key.clone(),
            ca: mutual.then(|| self.ca.clone()),
        }
    }

    /// A client configuration trusting this PKI's CA, presenting `client` if given, TLS 1.2
    /// and 1.3.
    pub fn client_tls(&self, client: Option<&CertFiles>) -> Arc<ClientConfig> {
        client_config(&self.ca, client, ALL_VERSIONS)
    }
}

impl Default for TestPki {
    fn default() -> Self {
        TestPki::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_file_as_pem() {
        let pki = TestPki::new();
        let extra = pki.client_cert("worker", "worker.test", &["worker.test", "10.1.2.3"]);
        for path in [
            &pki.ca,
            &pki.other_ca,
            &pki.server.cert,
            &pki.client.cert,
            &pki.other_client.cert,
            &pki.expired_client.cert,
            &extra.cert,
        ] {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.starts_with("-----BEGIN CERTIFICATE-----"), "{path:?}");
        }
        for path in [&pki.server.key, &pki.client.key, &extra.key] {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"), "{path:?}");
        }
        assert_ne!(
            std::fs::read(&pki.ca).unwrap(),
            std::fs::read(&pki.other_ca).unwrap()
        );
        assert!(pki.dir().exists());
    }
}

//! TLS on the Gearman port: [`TlsSection`], the flags and config-file keys (gearmand's names
//! `--ssl`, `--ssl-ca-file`, `--ssl-certificate`, `--ssl-key`, and gearboxd's `--ssl-port`,
//! `--ssl-listen`, `--ssl-handshake-timeout-ms`), flattened into [`crate::options::Options`];
//! and [`TlsSettings`], the checked result.
//!
//! - `--ssl` alone makes the Gearman port(s) speak TLS, as gearmand does.
//! - With `--ssl-port`, the Gearman port stays plain and TLS listens on that port as well
//!   (on the `--ssl-listen` addresses, or else the `--listen` ones): both side by side during
//!   a migration.
//! - With `--ssl-ca-file`, every client must present a certificate that CA issued.
//! - The certificate and key have no default (gearmand's are build-time paths): `--ssl`
//!   without them is a start-up error saying so.
//! - Without `--ssl`, the other flags have no effect and only warn (as in gearmand).
//! - SIGHUP re-reads the three files; new handshakes use them, established connections keep
//!   going (see [`crate::signals`]).

use std::path::PathBuf;
use std::time::Duration;

use gearbox_server::tls::{ServerTls, TlsFiles, DEFAULT_HANDSHAKE_TIMEOUT};
use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// The `--help` heading of the TLS settings.
const TLS: &str = "TLS (docs/security.md)";

/// The TLS settings as a layer gives them (`None`, `false` or empty = not given).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsSection {
    /// Speak TLS on the Gearman port(s), or only on --ssl-port if given.
    #[arg(long, help_heading = TLS)]
    pub ssl: bool,

    /// CA certificates (PEM): with it, every client must present a certificate this CA
    /// issued (mutual TLS); without it, clients are not asked for one.
    #[arg(long, value_name = "FILE", help_heading = TLS)]
    pub ssl_ca_file: Option<PathBuf>,

    /// The server's certificate chain (PEM), required with --ssl.
    #[arg(long, value_name = "FILE", help_heading = TLS)]
    pub ssl_certificate: Option<PathBuf>,

    /// The certificate's private key (PEM), required with --ssl.
    #[arg(long, value_name = "FILE", help_heading = TLS)]
    pub ssl_key: Option<PathBuf>,

    /// A separate TLS port (0 = a free port): the Gearman port stays plain, for migrations.
    #[arg(long, value_name = "PORT", help_heading = TLS)]
    pub ssl_port: Option<u16>,

    /// Address the --ssl-port listener binds: an IP, `IP:PORT`, `[IPv6]:PORT` or a host
    /// name; repeatable (default: the --listen addresses).
    #[arg(long = "ssl-listen", value_name = "ADDR", help_heading = TLS)]
    pub ssl_listen: Vec<String>,

    /// A connection that has not completed its TLS handshake within MS milliseconds is
    /// dropped (default: 10000).
    #[arg(long, value_name = "MS", help_heading = TLS)]
    pub ssl_handshake_timeout_ms: Option<u64>,
}

/// Where TLS listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsPorts {
    /// The Gearman port(s) speak TLS (`--ssl` alone).
    Main,
    /// A listener of its own (`--ssl-port`); the Gearman port(s) stay plain.
    Separate {
        /// Port for the addresses that name none.
        port: u16,
        /// `--ssl-listen`, or else the `--listen` values (empty = every interface).
        listen: Vec<String>,
    },
}

/// TLS as configured, checked, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Certificate, key and (for mutual TLS) CA.
    pub files: TlsFiles,
    /// Where TLS listens.
    pub ports: TlsPorts,
    /// How long a handshake may take.
    pub handshake_timeout: Duration,
}

impl TlsSection {
    /// The checked settings if `--ssl` is on (`None` otherwise, with a warning for each TLS
    /// setting given, which then has no effect). `listen` is the Gearman `--listen` list.
    pub fn resolve(
        &self,
        listen: &[String],
        warnings: &mut Vec<String>,
    ) -> Result<Option<TlsSettings>, CliError> {
        if !self.ssl {
            let given = [
                (self.ssl_ca_file.is_some(), "--ssl-ca-file"),
                (self.ssl_certificate.is_some(), "--ssl-certificate"),
                (self.ssl_key.is_some(), "--ssl-key"),
                (self.ssl_port.is_some(), "--ssl-port"),
                (!self.ssl_listen.is_empty(), "--ssl-listen"),
                (
                    self.ssl_handshake_timeout_ms.is_some(),
                    "--ssl-handshake-timeout-ms",
                ),
            ];
            for (_, flag) in given.iter().filter(|(g, _)| *g) {
                warnings.push(format!(
                    "{flag} has no effect without --ssl (as in gearmand)"
                ));
            }
            return Ok(None);
        }
        let required = |value: &Option<PathBuf>, flag: &str, what: &str| {
            value.clone().ok_or_else(|| {
                CliError::Invalid(format!(
                    "--ssl needs {flag} FILE ({what}, PEM); gearboxd has no default path for it"
                ))
            })
        };
        let files = TlsFiles {
            certificate: required(
                &self.ssl_certificate,
                "--ssl-certificate",
                "the server's certificate",
            )?,
            key: required(&self.ssl_key, "--ssl-key", "the certificate's private key")?,
            ca: self.ssl_ca_file.clone(),
        };
        let timeout_ms = self
            .ssl_handshake_timeout_ms
            .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT.as_millis() as u64);
        if timeout_ms == 0 {
            return Err(CliError::Invalid(
                "--ssl-handshake-timeout-ms must be at least 1".into(),
            ));
        }
        let ports = match self.ssl_port {
            Some(port) => TlsPorts::Separate {
                port,
                listen: if self.ssl_listen.is_empty() {
                    listen.to_vec()
                } else {
                    self.ssl_listen.clone()
                },
            },
            None if !self.ssl_listen.is_empty() => {
                return Err(CliError::Invalid(
                    "--ssl-listen needs --ssl-port (without it, --ssl makes the --listen \
                     addresses speak TLS)"
                        .into(),
                ))
            }
            None => TlsPorts::Main,
        };
        Ok(Some(TlsSettings {
            files,
            ports,
            handshake_timeout: Duration::from_millis(timeout_ms),
        }))
    }
}

impl TlsSettings {
    /// Reads the certificate, key and CA: a missing, unreadable or invalid file is an error
    /// naming it.
    pub fn load(&self) -> Result<ServerTls, CliError> {
        let tls = ServerTls::from_files(self.files.clone()).map_err(CliError::Tls)?;
        Ok(tls.with_handshake_timeout(self.handshake_timeout))
    }

    /// Makes the file paths absolute against `cwd`, before `--daemon` changes to `/` (the
    /// files are re-read at SIGHUP).
    pub fn absolutize(&mut self, cwd: &std::path::Path) {
        let f = &mut self.files;
        for path in [Some(&mut f.certificate), Some(&mut f.key), f.ca.as_mut()]
            .into_iter()
            .flatten()
        {
            *path = cwd.join(&*path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Args;
    use clap::Parser;

    fn resolve(argv: &[&str]) -> (Result<Option<TlsSettings>, CliError>, Vec<String>) {
        let args =
            Args::try_parse_from(std::iter::once("gearboxd").chain(argv.iter().copied())).unwrap();
        let mut warnings = Vec::new();
        let r = args
            .options
            .tls
            .resolve(&args.options.daemon.listen, &mut warnings);
        (r, warnings)
    }

    #[test]
    fn ssl_alone_makes_the_main_ports_tls_and_needs_certificate_and_key() {
        let (r, _) = resolve(&["--ssl", "--ssl-certificate", "c.pem", "--ssl-key", "k.pem"]);
        let s = r.unwrap().unwrap();
        assert_eq!(s.ports, TlsPorts::Main);
        assert_eq!(s.files.ca, None);
        assert_eq!(s.handshake_timeout, Duration::from_secs(10));
        let e = resolve(&["--ssl", "--ssl-key", "k.pem"]).0.unwrap_err();
        assert!(e.to_string().contains("--ssl-certificate"), "{e}");
        let e = resolve(&["--ssl", "--ssl-certificate", "c.pem"])
            .0
            .unwrap_err();
        assert!(e.to_string().contains("--ssl-key"), "{e}");
    }

    #[test]
    fn ssl_port_keeps_the_main_port_plain_and_listens_where_told() {
        let base = ["--ssl", "--ssl-certificate", "c", "--ssl-key", "k"];
        let with = |extra: &[&str]| {
            let argv: Vec<&str> = base.iter().chain(extra).copied().collect();
            resolve(&argv).0
        };
        let s = with(&["--ssl-port", "4731", "-L", "10.0.0.1"])
            .unwrap()
            .unwrap();
        assert_eq!(
            s.ports,
            TlsPorts::Separate {
                port: 4731,
                listen: vec!["10.0.0.1".into()]
            }
        );
        let s = with(&[
            "--ssl-port",
            "0",
            "--ssl-listen",
            "127.0.0.1",
            "--ssl-ca-file",
            "ca",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            s.ports,
            TlsPorts::Separate {
                port: 0,
                listen: vec!["127.0.0.1".into()]
            }
        );
        assert_eq!(s.files.ca, Some(PathBuf::from("ca")));
        assert!(with(&["--ssl-listen", "127.0.0.1"]).is_err());
        assert!(with(&["--ssl-handshake-timeout-ms", "0"]).is_err());
    }

    #[test]
    fn without_ssl_the_other_settings_only_warn() {
        let (r, w) = resolve(&["--ssl-certificate", "c.pem", "--ssl-port", "1"]);
        assert_eq!(r.unwrap(), None);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("--ssl-certificate has no effect without --ssl"),
            "{w:?}"
        );
        assert!(resolve(&[]).1.is_empty());
    }
}

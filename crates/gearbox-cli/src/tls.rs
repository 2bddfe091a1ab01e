//! [`TlsArgs`]: the TLS flags of every personality, with their environment variables, made
//! into the client library's [`TlsConfig`].
//!
//! `gearbox` takes them as flags (`--ssl --ssl-ca-file F --ssl-certificate F --ssl-key F
//! --ssl-server-name N`) or from `GEARBOX_SSL*`; any of the file or name options turns TLS
//! on by itself. The drop-ins take libgearman's `-S` (`gearadmin` also `--ssl`) and read the
//! rest from the same environment variables. When a `GEARBOX_*` path is not set,
//! libgearman's own variables are read as fallbacks: `GEARMAND_CA_CERTIFICATE`,
//! `GEARMAN_CLIENT_PEM`, `GEARMAN_CLIENT_KEY` (they only supply paths: like in libgearman,
//! they do not turn TLS on).

use std::path::PathBuf;

use anyhow::Context;
use clap::builder::BoolishValueParser;
use clap::{Args, Parser};
use gearbox_client::TlsConfig;

/// libgearman's variable for the CA file, read when `GEARBOX_SSL_CA_FILE` is unset.
pub const LIBGEARMAN_CA_ENV: &str = "GEARMAND_CA_CERTIFICATE";
/// libgearman's variable for the client certificate, read when `GEARBOX_SSL_CERTIFICATE`
/// is unset.
pub const LIBGEARMAN_CERT_ENV: &str = "GEARMAN_CLIENT_PEM";
/// libgearman's variable for the client key, read when `GEARBOX_SSL_KEY` is unset.
pub const LIBGEARMAN_KEY_ENV: &str = "GEARMAN_CLIENT_KEY";

/// TLS to the servers.
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// Connect to the servers over TLS (implied by the other --ssl-* options); the variable
    /// takes 1/0, true/false, yes/no, on/off.
    #[arg(long, env = "GEARBOX_SSL", global = true, value_parser = BoolishValueParser::new())]
    pub ssl: bool,
    /// CA certificate(s) (PEM) that signed the servers' certificates; required for TLS
    /// [fallback env: GEARMAND_CA_CERTIFICATE].
    #[arg(long, env = "GEARBOX_SSL_CA_FILE", value_name = "FILE", global = true)]
    pub ssl_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for servers that require one; needs --ssl-key
    /// [fallback env: GEARMAN_CLIENT_PEM].
    #[arg(
        long,
        env = "GEARBOX_SSL_CERTIFICATE",
        value_name = "FILE",
        global = true
    )]
    pub ssl_certificate: Option<PathBuf>,
    /// The client certificate's private key (PEM, unencrypted)
    /// [fallback env: GEARMAN_CLIENT_KEY].
    #[arg(long, env = "GEARBOX_SSL_KEY", value_name = "FILE", global = true)]
    pub ssl_key: Option<PathBuf>,
    /// Check the servers' certificates against NAME instead of the host connected to.
    #[arg(
        long,
        env = "GEARBOX_SSL_SERVER_NAME",
        value_name = "NAME",
        global = true
    )]
    pub ssl_server_name: Option<String>,
}

/// The TLS flags alone, to read the environment for the drop-ins.
#[derive(Debug, Parser)]
struct EnvOnly {
    #[command(flatten)]
    tls: TlsArgs,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl TlsArgs {
    /// The settings from the environment only (`GEARBOX_SSL*`), for the drop-ins, whose
    /// own `-S` is then added with [`TlsArgs::enable`].
    pub fn from_env() -> anyhow::Result<TlsArgs> {
        let parsed = EnvOnly::try_parse_from(["gearbox"])
            .context("reading the GEARBOX_SSL* environment variables")?;
        Ok(parsed.tls)
    }

    /// Turns TLS on (the drop-ins' `-S`).
    pub fn enable(mut self, on: bool) -> TlsArgs {
        self.ssl |= on;
        self
    }

    /// Whether TLS is on: `--ssl`, or any other `--ssl-*` option (flag or `GEARBOX_*`).
    pub fn enabled(&self) -> bool {
        self.ssl
            || self.ssl_ca_file.is_some()
            || self.ssl_certificate.is_some()
            || self.ssl_key.is_some()
            || self.ssl_server_name.is_some()
    }

    /// The client library's settings, or `None` for plain TCP. Files are read here, so a
    /// missing or unusable one fails before anything connects.
    pub fn config(&self) -> anyhow::Result<Option<TlsConfig>> {
        if !self.enabled() {
            return Ok(None);
        }
        let ca = self
            .ssl_ca_file
            .clone()
            .or_else(|| env_path(LIBGEARMAN_CA_ENV));
        let cert = self
            .ssl_certificate
            .clone()
            .or_else(|| env_path(LIBGEARMAN_CERT_ENV));
        let key = self
            .ssl_key
            .clone()
            .or_else(|| env_path(LIBGEARMAN_KEY_ENV));
        let mut b = TlsConfig::builder();
        match ca {
            Some(ca) => b = b.ca_file(ca),
            None => anyhow::bail!(
                "TLS needs the CA certificate that signed the servers' certificates: \
                 give --ssl-ca-file FILE (or set GEARBOX_SSL_CA_FILE or {LIBGEARMAN_CA_ENV})"
            ),
        }
        match (cert, key) {
            (Some(cert), Some(key)) => b = b.client_cert_files(cert, key),
            (None, None) => {}
            (Some(_), None) => anyhow::bail!(
                "a client certificate needs its key: give --ssl-key FILE \
                 (or set GEARBOX_SSL_KEY or {LIBGEARMAN_KEY_ENV})"
            ),
            (None, Some(_)) => anyhow::bail!(
                "a client key needs its certificate: give --ssl-certificate FILE \
                 (or set GEARBOX_SSL_CERTIFICATE or {LIBGEARMAN_CERT_ENV})"
            ),
        }
        if let Some(name) = &self.ssl_server_name {
            b = b.server_name(name.clone());
        }
        Ok(Some(b.build()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        tls: TlsArgs,
    }

    fn parse(args: &[&str]) -> TlsArgs {
        let mut argv = vec!["gearbox"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("parses").tls
    }

    #[test]
    fn any_ssl_option_turns_tls_on() {
        assert!(!parse(&[]).enabled());
        assert!(parse(&["--ssl"]).enabled());
        assert!(parse(&["--ssl-ca-file", "ca.pem"]).enabled());
        assert!(parse(&["--ssl-server-name", "gear.test"]).enabled());
        assert!(TlsArgs::default().enable(true).enabled());
        assert!(parse(&["--ssl", "--ssl-ca-file", "ca.pem"]).ssl);
        assert_eq!(parse(&[]).config().unwrap().map(|_| ()), None);
    }

    #[test]
    fn half_a_client_certificate_is_refused() {
        let e = parse(&[
            "--ssl-ca-file",
            "/nonexistent",
            "--ssl-certificate",
            "c.pem",
        ])
        .config()
        .unwrap_err();
        assert!(e.to_string().contains("--ssl-key"), "{e}");
        let e = parse(&["--ssl-ca-file", "/nonexistent", "--ssl-key", "k.pem"])
            .config()
            .unwrap_err();
        assert!(e.to_string().contains("--ssl-certificate"), "{e}");
    }
}

//! The HTTP listener's settings: [`HttpSection`], one field per setting that a flag (or the
//! environment) and a config-file key both give, flattened into [`crate::options::Options`];
//! and [`HttpSettings`], the checked result with its defaults applied.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::allow::AllowList;
use crate::error::CliError;

/// The `--help` heading of the HTTP settings.
const HTTP: &str = "HTTP (docs/http.md)";

/// gearmand's default `--http-port`.
pub const DEFAULT_HTTP_PORT: u16 = 8080;

/// Default `http_header_timeout_ms`: a client gets 30 s to send its request headers.
pub const DEFAULT_HEADER_TIMEOUT_MS: u64 = 30_000;

/// The HTTP listener's settings as a layer gives them (`None` or empty = not given).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpSection {
    /// Protocol module: gearmand's only one, `http`, turns the HTTP listener on.
    #[arg(short = 'r', long, value_name = "NAME", help_heading = HTTP)]
    pub protocol: Option<String>,

    /// HTTP port of `-r http` (default 8080; 0 = a free port), for the addresses that name
    /// none; without `-r http`, no effect (as in gearmand).
    #[arg(long, value_name = "PORT", help_heading = HTTP)]
    pub http_port: Option<u16>,

    /// Address the HTTP listener binds: an IP, `IP:PORT`, `[IPv6]:PORT` or a host name;
    /// repeatable (default: the --listen addresses, with --http-port).
    #[arg(long = "http-listen", value_name = "ADDR", help_heading = HTTP)]
    pub http_listen: Vec<String>,

    /// Peers that may change state through HTTP (cancel, maxqueue): a network `ADDR/PREFIX`
    /// or one address; repeatable; an IPv4-mapped IPv6 peer counts as IPv4 (default:
    /// 127.0.0.0/8 and ::1).
    #[arg(long = "http-allow", value_name = "CIDR", help_heading = HTTP)]
    pub http_allow: Vec<String>,

    /// A client that has not sent its whole request head within MS milliseconds is
    /// disconnected (default: 30000).
    #[arg(long, value_name = "MS", help_heading = HTTP)]
    pub http_header_timeout_ms: Option<u64>,
}

/// What the HTTP listener needs, checked, with the defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Port for the addresses that name none (`--http-port`; 0 = a free port).
    pub port: u16,
    /// Where to listen: `--http-listen`, or else the Gearman `--listen` values (empty = every
    /// interface).
    pub listen: Vec<String>,
    /// The peers that may change state.
    pub allow: AllowList,
    /// How long a client may take to send its request head.
    pub header_timeout: Duration,
    /// Largest request body accepted (`--max-body`, the Gearman packet limit).
    pub max_body: usize,
    /// The `[[access]]` rules of the Gearman port, applied to each request by its peer
    /// address (set from the server's settings).
    pub access: gearbox_server::access::AccessPolicy,
}

impl HttpSection {
    /// Whether `-r http`/`--protocol=http` asks for the HTTP listener; another module name is
    /// an error (gearmand has no other).
    pub fn enabled(&self) -> Result<bool, CliError> {
        match self.protocol.as_deref() {
            None => Ok(false),
            Some(p) if p.eq_ignore_ascii_case("http") => Ok(true),
            Some(p) => Err(CliError::Invalid(format!(
                "unknown protocol module `{p}` (gearmand's only one is `http`)"
            ))),
        }
    }

    /// The checked settings if the listener is on (`None` otherwise, with a warning for each
    /// HTTP setting given, as gearmand warns about `--http-port`). `listen` is the Gearman
    /// `--listen` list, `max_body` the Gearman packet limit.
    pub fn resolve(
        &self,
        listen: &[String],
        max_body: usize,
        warnings: &mut Vec<String>,
    ) -> Result<Option<HttpSettings>, CliError> {
        let allow = if self.http_allow.is_empty() {
            AllowList::loopback()
        } else {
            AllowList::parse(&self.http_allow)
                .map_err(|e| CliError::Invalid(format!("http_allow (--http-allow): {e}")))?
        };
        let timeout_ms = self
            .http_header_timeout_ms
            .unwrap_or(DEFAULT_HEADER_TIMEOUT_MS);
        if timeout_ms == 0 {
            return Err(CliError::Invalid(
                "http_header_timeout_ms must be at least 1 (milliseconds)".into(),
            ));
        }
        if !self.enabled()? {
            let given = [
                ("--http-port", self.http_port.is_some()),
                ("--http-listen", !self.http_listen.is_empty()),
                ("--http-allow", !self.http_allow.is_empty()),
                (
                    "--http-header-timeout-ms",
                    self.http_header_timeout_ms.is_some(),
                ),
            ];
            for (flag, _) in given.into_iter().filter(|(_, g)| *g) {
                warnings.push(format!(
                    "{flag} has no effect without -r http (as in gearmand)"
                ));
            }
            return Ok(None);
        }
        Ok(Some(HttpSettings {
            port: self.http_port.unwrap_or(DEFAULT_HTTP_PORT),
            listen: if self.http_listen.is_empty() {
                listen.to_vec()
            } else {
                self.http_listen.clone()
            },
            allow,
            header_timeout: Duration::from_millis(timeout_ms),
            max_body,
            access: Default::default(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::Args;
    use crate::settings::Settings;
    use crate::{config_file, Options};

    fn http(argv: &[&str], file: &str) -> Result<(Option<HttpSettings>, Vec<String>), CliError> {
        let args =
            Args::try_parse_from(std::iter::once("gearboxd").chain(argv.iter().copied())).unwrap();
        let file = config_file::parse(file).map_err(CliError::Invalid)?;
        let s = Settings::from_parts(args, file)?;
        Ok((s.http, s.warnings))
    }

    #[test]
    fn defaults_are_gearmands_port_on_the_gearman_addresses_and_loopback_peers() {
        let (h, w) = http(&["-r", "http", "-L", "127.0.0.1"], "").unwrap();
        let h = h.unwrap();
        assert_eq!(h.port, 8080);
        assert_eq!(h.listen, ["127.0.0.1"]);
        assert_eq!(h.allow, AllowList::loopback());
        assert_eq!(h.header_timeout, Duration::from_secs(30));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(http(&[], "").unwrap(), (None, vec![]));
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let file = "protocol = \"http\"\nhttp_port = 9000\nhttp_listen = [\"10.0.0.1\"]\n\
                    http_allow = [\"10.0.0.0/8\"]\nhttp_header_timeout_ms = 500\n";
        let h = http(&[], file).unwrap().0.unwrap();
        assert_eq!(h.port, 9000);
        assert_eq!(h.listen, ["10.0.0.1"]);
        assert_eq!(h.allow, AllowList::parse(&["10.0.0.0/8"]).unwrap());
        assert_eq!(h.header_timeout, Duration::from_millis(500));
        let argv = [
            "--http-port",
            "9001",
            "--http-listen",
            "127.0.0.2",
            "--http-listen",
            "[::1]:9002",
            "--http-allow",
            "192.0.2.0/24",
            "--http-allow",
            "::1",
            "--http-header-timeout-ms",
            "250",
        ];
        let h = http(&argv, file).unwrap().0.unwrap();
        assert_eq!(h.port, 9001);
        assert_eq!(h.listen, ["127.0.0.2", "[::1]:9002"]);
        assert_eq!(h.allow, AllowList::parse(&["192.0.2.0/24", "::1"]).unwrap());
        assert_eq!(h.header_timeout, Duration::from_millis(250));
    }

    #[test]
    fn bad_values_are_refused_naming_the_setting() {
        let e = http(&["-r", "http", "--http-allow", "10.0.0.0/40"], "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("http_allow") && e.contains("10.0.0.0/40"), "{e}");
        let e = http(&["-r", "http", "--http-header-timeout-ms", "0"], "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("http_header_timeout_ms"), "{e}");
        let e = http(&["--protocol=gopher"], "").unwrap_err().to_string();
        assert!(e.contains("gopher"), "{e}");
        let e = http(&[], "protocol = \"gopher\"").unwrap_err().to_string();
        assert!(e.contains("gopher"), "{e}");
    }

    #[test]
    fn http_settings_without_the_listener_warn() {
        let (h, w) = http(&["--http-port=8080", "--http-allow", "::1"], "").unwrap();
        assert_eq!(h, None);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w.iter().all(|w| w.contains("without -r http")), "{w:?}");
        assert!(Options::keys().contains(&"http_allow".to_owned()));
    }
}

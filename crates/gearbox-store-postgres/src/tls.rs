//! TLS to PostgreSQL: libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey` keys, taken
//! out of the conninfo (tokio-postgres knows only three of the five modes and none of the
//! files) and turned into a rustls connector.
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | |
//! | `prefer` (the default, as in libpq) | if the server offers it | not checked, or signed by `sslrootcert` if given |
//! | `require` | always | not checked, or signed by `sslrootcert` if given (as libpq) |
//! | `verify-ca` | always | signed by `sslrootcert` |
//! | `verify-full` | always | signed by `sslrootcert` and naming the host |

use std::path::PathBuf;
use std::sync::Arc;

use gearbox_store::tls::{self, TlsFiles, Verify};
use gearbox_store::StoreError;
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::Config;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it (libpq's default).
    #[default]
    Prefer,
    /// TLS always.
    Require,
    /// TLS, with a certificate signed by `sslrootcert`.
    VerifyCa,
    /// TLS, with a certificate signed by `sslrootcert` that names the host.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            // libpq's `allow` tries plain first; gearboxd does not downgrade silently.
            other => {
                return Err(format!(
                    "sslmode `{other}` is not supported: use disable, prefer, require, \
                     verify-ca or verify-full"
                ))
            }
        })
    }

    /// Its libpq name.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The TLS keys of a conninfo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgTls {
    /// `sslmode`.
    pub mode: SslMode,
    /// `sslrootcert`, `sslcert` and `sslkey`.
    pub files: TlsFiles,
}

impl PgTls {
    /// The connector for these settings, after setting tokio-postgres's own mode on `config`.
    pub(crate) fn connector(
        &self,
        config: &mut Config,
        location: &str,
    ) -> Result<MakeRustlsConnect, StoreError> {
        let (pg_mode, verify) = match (self.mode, self.files.ca.is_some()) {
            (SslMode::Disable, _) => (PgSslMode::Disable, Verify::Encrypt),
            (SslMode::Prefer, ca) => (PgSslMode::Prefer, chain_if(ca)),
            (SslMode::Require, ca) => (PgSslMode::Require, chain_if(ca)),
            (SslMode::VerifyCa, _) => (PgSslMode::Require, Verify::Chain),
            (SslMode::VerifyFull, _) => (PgSslMode::Require, Verify::Full),
        };
        config.ssl_mode(pg_mode);
        let client = tls::client_config(&self.files, verify).map_err(|e| StoreError::Backend {
            location: location.to_owned(),
            source: Arc::new(WithMode(self.mode, e)),
        })?;
        Ok(MakeRustlsConnect::new(client))
    }
}

/// A TLS set-up error, with the `sslmode` that asked for it.
#[derive(Debug, thiserror::Error)]
#[error("sslmode={mode}: {source}", mode = .0.as_str(), source = .1)]
struct WithMode(SslMode, #[source] tls::TlsError);

fn chain_if(ca: bool) -> Verify {
    if ca {
        Verify::Chain
    } else {
        Verify::Encrypt
    }
}

const KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// Takes the TLS keys out of `conninfo` (key/value pairs or a `postgres://` URL's query),
/// returning the rest, for tokio-postgres, and the keys.
pub fn split_conninfo(conninfo: &str) -> Result<(String, PgTls), String> {
    let mut tls = PgTls::default();
    let mut take = |key: &str, value: String| -> Result<(), String> {
        match key {
            "sslmode" => tls.mode = SslMode::parse(&value)?,
            "sslrootcert" => tls.files.ca = Some(PathBuf::from(value)),
            "sslcert" => tls.files.cert = Some(PathBuf::from(value)),
            "sslkey" => tls.files.key = Some(PathBuf::from(value)),
            _ => unreachable!("only KEYS are taken"),
        }
        Ok(())
    };
    let rest = if conninfo.contains("://") {
        let Some((base, query)) = conninfo.split_once('?') else {
            return Ok((conninfo.to_owned(), tls));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if KEYS.contains(&key) {
                let value = url::form_urlencoded::parse(format!("v={value}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                take(key, value)?;
            } else {
                kept.push(pair);
            }
        }
        if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        let mut kept = Vec::new();
        for (key, value, raw) in key_values(conninfo)? {
            if KEYS.contains(&key.as_str()) {
                take(&key, value)?;
            } else {
                kept.push(raw);
            }
        }
        kept.join(" ")
    };
    Ok((rest, tls))
}

/// The `key=value` pairs of a libpq conninfo: each key, its value (unquoted, unescaped) and
/// the pair's text as written.
fn key_values(conninfo: &str) -> Result<Vec<(String, String, &str)>, String> {
    let mut out = Vec::new();
    let mut rest = conninfo.trim_start();
    while !rest.is_empty() {
        let start = rest;
        let eq = rest.find('=').ok_or_else(|| {
            format!(
                "`{}` is not key=value",
                start.split_whitespace().next().unwrap_or("")
            )
        })?;
        let key = rest[..eq].trim().to_owned();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("`{}` is not key=value", &rest[..eq]));
        }
        rest = rest[eq + 1..].trim_start();
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = if rest.starts_with('\'') {
            chars.next();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    '\'' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            end.ok_or_else(|| format!("the value of `{key}` has no closing quote"))?
        } else {
            let mut end = rest.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    c if c.is_whitespace() => {
                        end = i;
                        break;
                    }
                    c => value.push(c),
                }
            }
            end
        };
        let consumed = start.len() - rest.len() + end;
        out.push((key, value, start[..consumed].trim_end()));
        rest = start[consumed..].trim_start();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_tls_keys_out_of_key_values() {
        let (rest, tls) = split_conninfo(
            "host=db.example port=5432 sslmode=verify-full sslrootcert='/etc/my ca.pem' \
             user=gearbox sslcert=/c.pem sslkey=/c.key password='a b\\'c'",
        )
        .unwrap();
        assert_eq!(
            rest,
            "host=db.example port=5432 user=gearbox password='a b\\'c'"
        );
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.files.ca, Some(PathBuf::from("/etc/my ca.pem")));
        assert_eq!(tls.files.cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(tls.files.key, Some(PathBuf::from("/c.key")));
        let config: Config = rest.parse().unwrap();
        assert_eq!(config.get_password(), Some(&b"a b'c"[..]));
    }

    #[test]
    fn takes_tls_keys_out_of_a_url() {
        let (rest, tls) = split_conninfo(
            "postgres://u:p%40ss@h:5/db?sslmode=verify-ca&application_name=x&sslrootcert=%2Fca%20x.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u:p%40ss@h:5/db?application_name=x");
        assert_eq!(tls.mode, SslMode::VerifyCa);
        assert_eq!(tls.files.ca, Some(PathBuf::from("/ca x.pem")));
        let (rest, tls) = split_conninfo("postgresql://h/db?sslmode=disable").unwrap();
        assert_eq!(
            (rest.as_str(), tls.mode),
            ("postgresql://h/db", SslMode::Disable)
        );
        let (rest, tls) = split_conninfo("postgres://h/db").unwrap();
        assert_eq!((rest.as_str(), tls), ("postgres://h/db", PgTls::default()));
    }

    #[test]
    fn modes_set_tokio_postgres_and_need_a_ca_to_verify() {
        let mode = |conninfo: &str| {
            let (rest, tls) = split_conninfo(conninfo).unwrap();
            let mut config: Config = rest.parse().unwrap();
            tls.connector(&mut config, "pg")
                .map(|_| config.get_ssl_mode())
                .map_err(|e| {
                    format!(
                        "{e} {}",
                        std::error::Error::source(&e).map_or(String::new(), |s| s.to_string())
                    )
                })
        };
        assert_eq!(mode("host=h"), Ok(PgSslMode::Prefer));
        assert_eq!(mode("host=h sslmode=disable"), Ok(PgSslMode::Disable));
        assert_eq!(mode("host=h sslmode=require"), Ok(PgSslMode::Require));
        let e = mode("host=h sslmode=verify-full").unwrap_err();
        assert!(
            e.contains("sslmode=verify-full") && e.contains("needs a CA file"),
            "{e}"
        );
        let e = mode("host=h sslmode=require sslcert=/c.pem").unwrap_err();
        assert!(e.contains("needs both the certificate and its key"), "{e}");
    }

    #[test]
    fn refuses_unknown_modes_and_bad_text() {
        let e = split_conninfo("host=h sslmode=allow").unwrap_err();
        assert!(e.contains("sslmode `allow`"), "{e}");
        assert!(split_conninfo("host=h password='open").is_err());
        assert!(split_conninfo("host").is_err());
    }
}

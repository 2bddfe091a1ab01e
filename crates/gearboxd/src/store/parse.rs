//! Parsing store URLs (`--store`) and hiding their passwords.

use std::path::PathBuf;

use super::kind::Kind;
use super::section::{MysqlServer, Password, RedisServer};
use super::{DEFAULT_MYSQL_PORT, DEFAULT_REDIS_PORT};
use crate::error::CliError;

/// Where a `redis://` URL points: the parts the `redis_*` keys can also give, and the two they
/// cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RedisUrl {
    /// Host, port (the default port if the URL has none) and password.
    pub server: RedisServer,
    pub username: Option<String>,
    pub db: i64,
}

/// What a `--store` URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Url {
    Builtin,
    Sqlite(PathBuf),
    /// The URL itself is the conninfo.
    Postgres(String),
    Redis(RedisUrl),
    /// A `mysql://` or `mariadb://` URL: host, port (the default port if the URL has none),
    /// user, password and database, percent-decoded.
    Mysql(MysqlServer),
    /// A `memcached://` URL: its server list, as `--libmemcached-servers` takes it.
    Memcached(String),
}

impl Url {
    pub(super) fn kind(&self) -> Kind {
        match self {
            Url::Builtin => Kind::Builtin,
            Url::Sqlite(_) => Kind::Sqlite,
            Url::Postgres(_) => Kind::Postgres,
            Url::Redis(_) => Kind::Redis,
            Url::Mysql(_) => Kind::Mysql,
            Url::Memcached(_) => Kind::Memcached,
        }
    }
}

pub(super) fn parse_url(url: &str) -> Result<Url, CliError> {
    let (scheme, rest) = url.split_once(':').unwrap_or((url, ""));
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "builtin" | "memory" if rest.is_empty() || rest == "//" => Ok(Url::Builtin),
        "sqlite" | "sqlite3" => {
            // `sqlite:///abs/file` and `sqlite://rel/file` as well as `sqlite:rel/file`.
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(CliError::Invalid(format!(
                    "store URL `{url}` names no file: use sqlite:///absolute/path.sqlite or \
                     sqlite:relative/path.sqlite"
                )));
            }
            if path.contains('?') {
                return Err(CliError::Invalid(format!(
                    "store URL `{url}`: parameters (`?...`) are not supported; set the \
                     durability with --durability"
                )));
            }
            Ok(Url::Sqlite(PathBuf::from(path)))
        }
        "postgres" | "postgresql" => {
            if !rest.starts_with("//") {
                return Err(CliError::Invalid(format!(
                    "store URL `{}`: use postgres://user[:password]@host[:port]/database",
                    redact_url(url)
                )));
            }
            Ok(Url::Postgres(url.to_owned()))
        }
        "redis" => parse_redis(url, rest).map(Url::Redis),
        "rediss" => Err(CliError::Invalid(format!(
            "store URL `{}`: TLS (rediss://) is not supported; use redis:// on a local or \
             trusted network",
            redact_url(url)
        ))),
        "mysql" | "mariadb" => parse_mysql(url, rest).map(Url::Mysql),
        "memcached" => {
            let servers = rest.strip_prefix("//").unwrap_or_default();
            let servers = servers.strip_suffix('/').unwrap_or(servers);
            if servers.is_empty() || servers.contains(['/', '?', '@']) {
                return Err(CliError::Invalid(format!(
                    "store URL `{url}`: use memcached://host[:port][,host[:port]...]"
                )));
            }
            Ok(Url::Memcached(servers.to_owned()))
        }
        _ => Err(CliError::Invalid(format!(
            "unknown store URL `{}`: use sqlite:///absolute/path.sqlite, \
             sqlite:relative/path.sqlite, postgres://user@host/database, \
             redis://[:password@]host:port[/db], mysql://user[:password]@host[:port]/database, \
             memcached://host[:port][,host[:port]...] or memory:",
            redact_url(url)
        ))),
    }
}

/// The parts of `//[userinfo@]host[:port][/path]`, as written (not decoded).
struct ServerUrl<'a> {
    userinfo: Option<&'a str>,
    host: &'a str,
    port: Option<u16>,
    path: &'a str,
}

/// Splits `rest` (what follows the scheme's `:`); `bad` makes the error for what is wrong.
fn parse_server_url<'a>(
    rest: &'a str,
    bad: &dyn Fn(&str) -> CliError,
) -> Result<ServerUrl<'a>, CliError> {
    let rest = rest.strip_prefix("//").ok_or_else(|| bad("no `//`"))?;
    if rest.contains('?') {
        return Err(bad("parameters (`?...`) are not supported"));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = match hostport.strip_prefix('[') {
        // [IPv6]:port
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
            (host, after.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| bad("the port is not a number"))
        })
        .transpose()?;
    Ok(ServerUrl {
        userinfo,
        host,
        port,
        path,
    })
}

/// `redis://[[user]:password@]host[:port][/db]`.
fn parse_redis(url: &str, rest: &str) -> Result<RedisUrl, CliError> {
    let bad = |why: &str| {
        CliError::Invalid(format!(
            "store URL `{}`: {why}; use redis://[:password@]host:port[/db]",
            redact_url(url)
        ))
    };
    let parts = parse_server_url(rest, &bad)?;
    let (username, password) = match parts.userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (
                Some(user.to_owned()).filter(|u| !u.is_empty()),
                Some(pass.to_owned()),
            ),
            None => (None, Some(u.to_owned())),
        },
    };
    let db = if parts.path.is_empty() {
        0
    } else {
        parts
            .path
            .parse::<i64>()
            .map_err(|_| bad("the database is not a number"))?
    };
    Ok(RedisUrl {
        server: RedisServer {
            redis_server: Some(parts.host.to_owned()),
            redis_port: Some(parts.port.unwrap_or(DEFAULT_REDIS_PORT)),
            redis_password: password.map(Password::from),
        },
        username,
        db,
    })
}

/// `mysql://[user[:password]@]host[:port][/database]` (also `mariadb://`), percent-encoded.
fn parse_mysql(url: &str, rest: &str) -> Result<MysqlServer, CliError> {
    let bad = |why: &str| {
        CliError::Invalid(format!(
            "store URL `{}`: {why}; use mysql://user[:password]@host[:port]/database \
             (percent-encode special characters)",
            redact_url(url)
        ))
    };
    let parts = parse_server_url(rest, &bad)?;
    let (user, password) = match parts.userinfo {
        None => ("", None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (user, Some(percent_decode(pass))),
            None => (u, None),
        },
    };
    let db = parts.path.split('/').next().unwrap_or("");
    Ok(MysqlServer {
        mysql_host: Some(percent_decode(parts.host)),
        mysql_port: Some(parts.port.unwrap_or(DEFAULT_MYSQL_PORT)),
        mysql_user: Some(percent_decode(user)).filter(|u| !u.is_empty()),
        mysql_password: password.map(Password::from),
        mysql_db: Some(percent_decode(db)).filter(|d| !d.is_empty()),
    })
}

/// `%XX` escapes decoded; invalid UTF-8 replaced.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` with the password of its user part (`user:password@`) replaced by `***`.
pub(super) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None if scheme.starts_with("redis") => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// A libpq conninfo (`key=value ...` or a URL) with its password hidden.
pub(super) fn redact_conninfo(conninfo: &str) -> String {
    if conninfo.contains("://") {
        return redact_url(conninfo);
    }
    conninfo
        .split_whitespace()
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

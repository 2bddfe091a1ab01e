//! Parsing store URLs (`--store`) and hiding their passwords.

use std::path::PathBuf;

use percent_encoding::percent_decode_str;

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
    /// `rediss://`: TLS.
    pub tls: bool,
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
        "redis" => parse_redis(url, rest, false).map(Url::Redis),
        "rediss" => parse_redis(url, rest, true).map(Url::Redis),
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
             redis[s]://[:password@]host:port[/db], mysql://user[:password]@host[:port]/database, \
             memcached://host[:port][,host[:port]...] or memory:",
            redact_url(url)
        ))),
    }
}

/// The parts of `scheme://[user[:password]@]host[:port][/path]`, read by the `url` crate;
/// user and password percent-decoded.
struct ServerUrl {
    user: Option<String>,
    password: Option<String>,
    host: String,
    port: Option<u16>,
    /// The path without its leading `/`, as written.
    path: String,
}

/// Reads `url` (whose part after the scheme's `:` is `rest`); `bad` makes the error for what
/// is wrong.
fn parse_server_url(
    url: &str,
    rest: &str,
    bad: &dyn Fn(&str) -> CliError,
) -> Result<ServerUrl, CliError> {
    if !rest.starts_with("//") {
        return Err(bad("no `//`"));
    }
    let parsed = url::Url::parse(url).map_err(|e| match e {
        url::ParseError::EmptyHost => bad("no host"),
        url::ParseError::InvalidPort => bad("the port is not a number"),
        other => bad(&other.to_string()),
    })?;
    if parsed.query().is_some() {
        return Err(bad("parameters (`?...`) are not supported"));
    }
    let host = parsed.host_str().unwrap_or_default();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    Ok(ServerUrl {
        user: Some(decode(parsed.username())).filter(|u| !u.is_empty()),
        password: parsed.password().map(decode),
        host: decode(host),
        port: parsed.port(),
        path: parsed.path().trim_start_matches('/').to_owned(),
    })
}

/// `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS; percent-encoded.
fn parse_redis(url: &str, rest: &str, tls: bool) -> Result<RedisUrl, CliError> {
    let bad = |why: &str| {
        CliError::Invalid(format!(
            "store URL `{}`: {why}; use redis://[:password@]host:port[/db] or rediss://... \
             for TLS (percent-encode special characters)",
            redact_url(url)
        ))
    };
    let parts = parse_server_url(url, rest, &bad)?;
    // `redis://secret@host`: a user part alone is the password, as redis-cli reads it.
    let (username, password) = match (parts.user, parts.password) {
        (Some(alone), None) => (None, Some(alone)),
        (user, password) => (user, password),
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
            redis_server: Some(parts.host),
            redis_port: Some(parts.port.unwrap_or(DEFAULT_REDIS_PORT)),
            redis_password: password.map(Password::from),
        },
        username,
        db,
        tls,
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
    let parts = parse_server_url(url, rest, &bad)?;
    let db = parts.path.split('/').next().unwrap_or("");
    let db = percent_decode_str(db).decode_utf8_lossy().into_owned();
    Ok(MysqlServer {
        mysql_host: Some(parts.host),
        mysql_port: Some(parts.port.unwrap_or(DEFAULT_MYSQL_PORT)),
        mysql_user: parts.user,
        mysql_password: parts.password.map(Password::from),
        mysql_db: Some(db).filter(|d| !d.is_empty()),
    })
}

/// `url` with its password hidden (`***`): the password of its user part, a user part that
/// is a Redis password, and a `password=` parameter. Read by the `url` crate; a URL it cannot
/// read is hidden after its scheme.
pub(super) fn redact_url(url: &str) -> String {
    let Some((scheme, _)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Ok(mut parsed) = url::Url::parse(url) else {
        return format!("{scheme}://***");
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    } else if scheme.starts_with("redis") && !parsed.username().is_empty() {
        let _ = parsed.set_username("***");
    }
    if parsed.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// A libpq conninfo (`key=value ...` or a URL) with its password hidden, also a quoted one.
pub(super) fn redact_conninfo(conninfo: &str) -> String {
    if conninfo.contains("://") {
        return redact_url(conninfo);
    }
    let mut out = String::with_capacity(conninfo.len());
    let mut rest = conninfo;
    while let Some(at) = find_password_key(rest) {
        out.push_str(&rest[..at]);
        out.push_str("password=***");
        let value = rest[at..]
            .split_once('=')
            .map_or("", |(_, v)| v)
            .trim_start();
        rest = &value[value_len(value)..];
    }
    out.push_str(rest);
    out
}

/// Where a `password` key starts in `s` (at the start or after white space).
fn find_password_key(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("password") {
        let at = from + i;
        let before_ok = at == 0 || lower[..at].ends_with(char::is_whitespace);
        let after = lower[at + "password".len()..].trim_start();
        if before_ok && after.starts_with('=') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The length of a conninfo value at the start of `v`: quoted (`'...'`, with `\\` escapes)
/// or up to white space.
fn value_len(v: &str) -> usize {
    let mut chars = v.char_indices();
    let quoted = v.starts_with('\'');
    if quoted {
        chars.next();
    }
    let mut escaped = false;
    for (i, c) in chars {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '\'' if quoted => return i + 1,
            c if !quoted && c.is_whitespace() => return i,
            _ => {}
        }
    }
    v.len()
}

//! Parsing queue type names (`-q`) and store URLs (`--store`).

use std::path::PathBuf;

use crate::error::CliError;

/// The kinds of store this release has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Builtin,
    Sqlite,
    Postgres,
    Redis,
    Mysql,
}

impl Kind {
    /// The `-q` name to suggest for this kind.
    pub(super) fn queue_type(self) -> &'static str {
        match self {
            Kind::Builtin => "builtin",
            Kind::Sqlite => "libsqlite3",
            Kind::Postgres => "libpq",
            Kind::Redis => "redis",
            Kind::Mysql => "mysql",
        }
    }

    /// What it is, for messages.
    pub(super) fn what(self) -> &'static str {
        match self {
            Kind::Builtin => "builtin",
            Kind::Sqlite => "SQLite",
            Kind::Postgres => "PostgreSQL",
            Kind::Redis => "Redis",
            Kind::Mysql => "MySQL/MariaDB",
        }
    }
}

/// Where a `redis://` URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RedisUrl {
    pub host: String,
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<String>,
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
    /// A `mysql://` URL (a `mariadb://` one is rewritten to `mysql://`).
    Mysql(String),
}

impl Url {
    pub(super) fn kind(&self) -> Kind {
        match self {
            Url::Builtin => Kind::Builtin,
            Url::Sqlite(_) => Kind::Sqlite,
            Url::Postgres(_) => Kind::Postgres,
            Url::Redis(_) => Kind::Redis,
            Url::Mysql(_) => Kind::Mysql,
        }
    }
}

/// gearmand queues gearboxd will not have.
const UNSUPPORTED: [&str; 3] = ["libmemcached", "libtokyocabinet", "libdrizzle"];

const KNOWN: &str = "`builtin` (memory only), `libsqlite3` (also `sqlite`), `libpq` (also \
                     `postgres`), `redis` or `mysql` (also `mariadb`)";

pub(super) fn parse_queue_type(name: &str) -> Result<Kind, CliError> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "builtin" | "memory" => return Ok(Kind::Builtin),
        "libsqlite3" | "sqlite" | "sqlite3" => return Ok(Kind::Sqlite),
        "libpq" | "postgres" | "postgresql" | "pg" => return Ok(Kind::Postgres),
        "redis" | "libhiredis" | "hiredis" => return Ok(Kind::Redis),
        "mysql" | "libmysql" | "mariadb" => return Ok(Kind::Mysql),
        _ => {}
    }
    if UNSUPPORTED.contains(&lower.as_str()) {
        return Err(CliError::Invalid(format!(
            "queue type `{name}` is gearmand's and is not supported by gearboxd: use {KNOWN}"
        )));
    }
    Err(CliError::Invalid(format!(
        "unknown queue type `{name}`: use {KNOWN}"
    )))
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
        "mysql" | "mariadb" => {
            let Some(after) = rest.strip_prefix("//") else {
                return Err(CliError::Invalid(format!(
                    "store URL `{}`: use mysql://user[:password]@host[:port]/database",
                    redact_url(url)
                )));
            };
            let url = format!("mysql://{after}");
            // Checked here, so that a bad URL is reported before anything starts.
            gearbox_store_mysql::MysqlOptions::from_url(&url).map_err(|_| {
                CliError::Invalid(format!(
                    "store URL `{}` cannot be parsed: use \
                     mysql://user[:password]@host[:port]/database (percent-encode special \
                     characters)",
                    redact_url(&url)
                ))
            })?;
            Ok(Url::Mysql(url))
        }
        _ => Err(CliError::Invalid(format!(
            "unknown store URL `{}`: use sqlite:///absolute/path.sqlite, \
             sqlite:relative/path.sqlite, postgres://user@host/database, \
             redis://[:password@]host:port[/db], mysql://user[:password]@host[:port]/database \
             or memory:",
            redact_url(url)
        ))),
    }
}

/// `redis://[[user]:password@]host[:port][/db]`.
fn parse_redis(url: &str, rest: &str) -> Result<RedisUrl, CliError> {
    let bad = |why: &str| {
        CliError::Invalid(format!(
            "store URL `{}`: {why}; use redis://[:password@]host:port[/db]",
            redact_url(url)
        ))
    };
    let rest = rest.strip_prefix("//").ok_or_else(|| bad("no `//`"))?;
    if rest.contains('?') {
        return Err(bad("parameters (`?...`) are not supported"));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (
                Some(user.to_owned()).filter(|u| !u.is_empty()),
                Some(pass.to_owned()),
            ),
            None => (None, Some(u.to_owned())),
        },
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
    let db = if path.is_empty() {
        0
    } else {
        path.parse::<i64>()
            .map_err(|_| bad("the database is not a number"))?
    };
    Ok(RedisUrl {
        host: host.to_owned(),
        port,
        username,
        password,
        db,
    })
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

//! [`StoreSettings::resolve`]: the command line's store keys over the config file's, by the
//! rules of the module documentation ("Which layer wins"), all of them here.

use gearbox_store::sql::DEFAULT_TABLE;
use gearbox_store::tls::{MysqlSslMode, TlsFiles};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::kind::Kind;
use super::parse::{parse_url, redact_url, Url};
use super::secret;
use super::section::{MysqlServer, RedisServer, StoreSection};
use super::{
    MemcachedSettings, MysqlSettings, PostgresSettings, RedisSettings, SqliteSettings,
    StoreSettings, DEFAULT_LIBMEMCACHED_PREFIX, DEFAULT_LIBMEMCACHED_SERVERS, DEFAULT_LIBPQ_TABLE,
    DEFAULT_LIBSQLITE3_TABLE, DEFAULT_MYSQL_HOST, DEFAULT_MYSQL_PORT, DEFAULT_MYSQL_TABLE,
    DEFAULT_QUEUE_TYPE, DEFAULT_REDIS_GEARMAND_PREFIX, DEFAULT_REDIS_PORT, DEFAULT_REDIS_PREFIX,
    DEFAULT_REDIS_SERVER, SQLITE_FILE_NAME,
};
use crate::error::CliError;
use crate::layers::{flag, from_table, given, overlay};

impl StoreSettings {
    /// Combines the command line's keys with the config file's; also returns warnings for
    /// command-line flags that have no effect with the chosen store.
    pub fn resolve(
        cli: &StoreSection,
        file: &StoreSection,
    ) -> Result<(StoreSettings, Vec<String>), CliError> {
        Self::resolve_as(cli, file, None)
    }

    /// [`StoreSettings::resolve`] for a server that will serve as `user` (`-u`), whose home
    /// may be the default data directory (see [`default_data_dir_from`](super::default_data_dir_from)).
    pub fn resolve_as(
        cli: &StoreSection,
        file: &StoreSection,
        user: Option<&str>,
    ) -> Result<(StoreSettings, Vec<String>), CliError> {
        let layers = Layers {
            cli,
            file,
            each: overlay(cli, file)?,
            user,
        };
        let kind = kind(layers.one_layer(|l| l.queue_type.is_some() || l.store.is_some()))?;
        let warnings = unused_flags(cli, kind)?;
        let settings = match kind {
            Kind::Builtin => StoreSettings::Builtin,
            Kind::Sqlite => StoreSettings::Sqlite(sqlite(&layers)?),
            Kind::Postgres => StoreSettings::Postgres(postgres(&layers)?),
            Kind::Redis => StoreSettings::Redis(redis(&layers)?),
            Kind::Mysql => StoreSettings::Mysql(mysql(&layers)?),
            Kind::Memcached => StoreSettings::Memcached(memcached(&layers)?),
        };
        Ok((settings, warnings))
    }
}

/// The command line's store keys and the config file's, and the rules that combine them.
struct Layers<'a> {
    cli: &'a StoreSection,
    file: &'a StoreSection,
    /// Each key on its own: the command line's if it gives it, else the file's.
    each: StoreSection,
    /// The user the server will serve as (`-u`), if it switches.
    user: Option<&'a str>,
}

impl Layers<'_> {
    /// The layer that gives a group of keys as a whole: the command line if it gives any key
    /// of the group, else the file. A flag then overrides the file without contradicting it.
    fn one_layer(&self, gives: impl Fn(&StoreSection) -> bool) -> &StoreSection {
        if gives(self.cli) {
            self.cli
        } else {
            self.file
        }
    }

    /// The database named by a store URL of this kind (`url_of`) and by the location key
    /// (`key_of`), both from one layer (the command line if it gives either): they must agree
    /// (`conflict` says how they differ).
    fn location<T: PartialEq + Clone>(
        &self,
        key_of: impl Fn(&StoreSection) -> Option<&T>,
        url_of: impl Fn(Url) -> Option<T>,
        conflict: impl Fn(&T, &T) -> String,
    ) -> Result<Option<T>, CliError> {
        let layer = self.one_layer(|l| l.store.is_some() || key_of(l).is_some());
        let url = layer.store.as_deref().map(parse_url).transpose()?;
        match (url.and_then(url_of), key_of(layer)) {
            (Some(u), Some(k)) if u != *k => Err(CliError::Invalid(conflict(&u, k))),
            (Some(u), _) => Ok(Some(u)),
            (None, k) => Ok(k.cloned()),
        }
    }

    /// A server named by a URL and by keys (Redis, MySQL). The URL comes from the command
    /// line's `store` if `url_of` finds one there, else from the file's. The keys (`keys_of`
    /// a layer) override its parts key by key, the command line's over the file's; when the
    /// URL is the command line's, the file's keys are not used. A key of the URL's own layer
    /// must agree with the URL (a part the URL leaves out counts as said: no password, the
    /// default port).
    fn url_and_keys<S, U>(
        &self,
        url_of: impl Fn(Url) -> Option<U>,
        server_of: impl Fn(&U) -> &S,
        keys_of: impl Fn(&StoreSection) -> &S,
        kind: Kind,
    ) -> Result<(S, Option<U>), CliError>
    where
        S: Serialize + DeserializeOwned,
    {
        let find = |layer: &StoreSection| -> Result<Option<U>, CliError> {
            let url = layer.store.as_deref().map(parse_url).transpose()?;
            Ok(url.and_then(&url_of))
        };
        let (url, layers) = match find(self.cli)? {
            Some(u) => (Some(u), vec![self.cli]),
            None => (find(self.file)?, vec![self.file, self.cli]),
        };
        let mut table = match &url {
            Some(u) => {
                let parts = given(server_of(u))?;
                for (key, value) in given(keys_of(layers[0]))? {
                    if parts.get(&key) != Some(&value) {
                        let what = key.split_once('_').map_or(key.as_str(), |(_, w)| w);
                        return Err(CliError::Invalid(format!(
                            "the store URL and {} name different {} {what}s: give one of them",
                            flag(&key),
                            kind.what()
                        )));
                    }
                }
                parts
            }
            None => toml::Table::new(),
        };
        for layer in layers {
            table.extend(given(keys_of(layer))?);
        }
        let server = from_table(table).map_err(CliError::Invalid)?;
        Ok((server, url))
    }
}

/// gearmand's queue table to import from: the name given (by `key`), or gearmand's default;
/// and whether it was given. gearboxd's own table, or no name, is an error.
fn gearmand_table(
    given: Option<String>,
    key: &str,
    default: &str,
) -> Result<(String, bool), CliError> {
    let table_given = given.is_some();
    let table = given.unwrap_or_else(|| default.to_owned());
    if table == DEFAULT_TABLE || table.is_empty() {
        return Err(CliError::Invalid(format!(
            "{} `{table}` cannot be gearmand's queue table (gearboxd keeps its jobs in \
             `{DEFAULT_TABLE}`; gearmand's default: {default})",
            flag(key)
        )));
    }
    Ok((table, table_given))
}

/// The kind `layer` chooses by its `queue_type` and `store`, which must agree; SQLite if it
/// gives neither. A kind this gearboxd was built without is an error.
fn kind(layer: &StoreSection) -> Result<Kind, CliError> {
    let by_name = layer.queue_type.map(Kind::try_from).transpose()?;
    let by_url = layer.store.as_deref().map(parse_url).transpose()?;
    let kind = match (by_name, &by_url) {
        (Some(k), Some(u)) if k != u.kind() => {
            return Err(CliError::Invalid(format!(
                "queue type `{}` and store URL `{}` disagree: give one of them",
                k.queue_type(),
                redact_url(layer.store.as_deref().unwrap_or_default())
            )))
        }
        (_, Some(u)) => u.kind(),
        (Some(k), None) => k,
        (None, None) => {
            let default = Kind::try_from(DEFAULT_QUEUE_TYPE)?;
            return default.built_in().map(|()| default).map_err(|e| {
                CliError::Invalid(format!(
                    "no queue type given, and the default, {DEFAULT_QUEUE_TYPE}, is not \
                     available: {e}, or give -q builtin (jobs in memory only) or another -q"
                ))
            });
        }
    };
    kind.built_in()?;
    Ok(kind)
}

/// Warnings for command-line store flags the chosen kind does not use: those of the other
/// kinds' sections, and `--durability` for the stores without it.
fn unused_flags(cli: &StoreSection, kind: Kind) -> Result<Vec<String>, CliError> {
    let sections = [
        (Kind::Sqlite, given(&cli.sqlite)?),
        (Kind::Postgres, given(&cli.postgres)?),
        (Kind::Redis, given(&cli.redis)?),
        (Kind::Mysql, given(&cli.mysql)?),
        (Kind::Memcached, given(&cli.memcached)?),
    ];
    let mut warnings = Vec::new();
    for (used_by, keys) in &sections {
        if *used_by != kind {
            warnings.extend(keys.keys().map(|key| unused(&flag(key), kind, *used_by)));
        }
    }
    warnings.extend(secret::on_command_line(cli));
    if cli.store_password_file.is_some()
        && matches!(kind, Kind::Builtin | Kind::Sqlite | Kind::Memcached)
    {
        warnings.push(format!(
            "--store-password-file has no effect with the {} queue (it is for PostgreSQL, \
             Redis and MySQL/MariaDB)",
            kind.what()
        ));
    }
    if cli.durability.is_some() && matches!(kind, Kind::Builtin | Kind::Redis | Kind::Memcached) {
        warnings.push(unused("--durability", kind, Kind::Sqlite));
    }
    // gearmand's Tokyo Cabinet flags: `-q libtokyocabinet` itself is refused.
    warnings.extend(given(&cli.tokyocabinet)?.keys().map(|key| {
        format!(
            "{} has no effect: gearboxd has no Tokyo Cabinet queue (see \"Moving a Tokyo \
             Cabinet queue\" in docs/job-store.md)",
            flag(key)
        )
    }));
    Ok(warnings)
}

/// `flag` (a flag of a `used_by` store) has no effect with `kind`.
fn unused(flag: &str, kind: Kind, used_by: Kind) -> String {
    match kind {
        Kind::Builtin => format!(
            "{flag} has no effect with the builtin queue (jobs are kept in memory only); \
             add `-q {}` to keep them in {}",
            used_by.queue_type(),
            used_by.what()
        ),
        Kind::Redis if flag == "--durability" => "--durability has no effect with the Redis \
             queue: how an acknowledged job survives a crash depends on the Redis server's \
             appendonly and appendfsync settings (appendonly yes, appendfsync always for \
             fsync-like durability)"
            .to_owned(),
        Kind::Memcached if flag == "--durability" => "--durability has no effect with the \
             memcached queue: memcached keeps jobs in memory only (a restart of memcached loses \
             them, and it evicts them when full unless started with -M)"
            .to_owned(),
        _ => format!(
            "{flag} has no effect with the {} queue (it is for {})",
            kind.what(),
            used_by.what()
        ),
    }
}

fn sqlite(layers: &Layers) -> Result<SqliteSettings, CliError> {
    let named = layers.location(
        |l| l.sqlite.libsqlite3_db.as_ref(),
        |u| match u {
            Url::Sqlite(path) => Some(path),
            _ => None,
        },
        |u, d| {
            format!(
                "the store URL names {} and --libsqlite3-db names {}: give one of them",
                u.display(),
                d.display()
            )
        },
    )?;
    let (path, data_dir) = match named {
        Some(p) => (p, None),
        None => {
            let dir = layers.each.sqlite.data_dir.clone();
            let dir = dir.unwrap_or_else(|| super::data_dir::default_data_dir(layers.user));
            if dir.as_os_str().is_empty() {
                return Err(CliError::Invalid(
                    "the data directory name is empty (use `.` for the working directory)".into(),
                ));
            }
            (dir.join(SQLITE_FILE_NAME), Some(dir))
        }
    };
    if path.as_os_str().is_empty() {
        return Err(CliError::Invalid("the SQLite file name is empty".into()));
    }
    let table = layers.each.sqlite.libsqlite3_table.clone();
    let (gearmand_table, gearmand_table_given) =
        gearmand_table(table, "libsqlite3_table", DEFAULT_LIBSQLITE3_TABLE)?;
    Ok(SqliteSettings {
        path,
        data_dir,
        gearmand_table,
        gearmand_table_given,
        durability: layers.each.durability.unwrap_or_default(),
    })
}

fn postgres(layers: &Layers) -> Result<PostgresSettings, CliError> {
    let conninfo = layers.location(
        |l| l.postgres.libpq_conninfo.as_ref(),
        |u| match u {
            Url::Postgres(url) => Some(url),
            _ => None,
        },
        |_, _| {
            "both a store URL and --libpq-conninfo name the PostgreSQL database, differently: \
             give one of them"
                .into()
        },
    )?;
    let Some(conninfo) = conninfo.filter(|c| !c.trim().is_empty()) else {
        return Err(CliError::Invalid(
            "the PostgreSQL queue needs a database: give --libpq-conninfo (e.g. \
             'host=127.0.0.1 user=gearman dbname=gearman') or --store \
             postgres://user@host/database"
                .into(),
        ));
    };
    let table = layers.each.postgres.libpq_table.clone();
    let (gearmand_table, gearmand_table_given) =
        gearmand_table(table, "libpq_table", DEFAULT_LIBPQ_TABLE)?;
    Ok(PostgresSettings {
        password: secret::password(None, password_file(layers), "PGPASSWORD")?,
        conninfo,
        gearmand_table,
        gearmand_table_given,
        durability: layers.each.durability.unwrap_or_default(),
    })
}

/// The password file key, from either layer.
fn password_file<'a>(layers: &'a Layers) -> Option<&'a std::path::Path> {
    layers.each.store_password_file.as_deref()
}

fn redis(layers: &Layers) -> Result<RedisSettings, CliError> {
    let (server, url) = layers.url_and_keys(
        |u| match u {
            Url::Redis(r) => Some(r),
            _ => None,
        },
        |r| &r.server,
        |l| &l.redis.server,
        Kind::Redis,
    )?;
    let RedisServer {
        redis_server,
        redis_port,
        redis_password,
    } = server;
    let prefix = layers.each.redis.redis_prefix.clone();
    let gearmand_prefix = layers.each.redis.redis_gearmand_prefix.clone();
    let keys = &layers.each.redis;
    let files = TlsFiles {
        ca: keys.redis_ca_file.clone(),
        cert: keys.redis_cert_file.clone(),
        key: keys.redis_key_file.clone(),
    };
    let url_tls = url.as_ref().is_some_and(|u| u.tls);
    let tls = (url_tls || keys.redis_tls || files != TlsFiles::default()).then_some(files);
    let s = RedisSettings {
        host: redis_server.unwrap_or_else(|| DEFAULT_REDIS_SERVER.to_owned()),
        port: redis_port.unwrap_or(DEFAULT_REDIS_PORT),
        username: url.as_ref().and_then(|u| u.username.clone()),
        password: secret::password(redis_password, password_file(layers), "REDISCLI_AUTH")?,
        db: url.as_ref().map_or(0, |u| u.db),
        tls,
        prefix: prefix
            .clone()
            .unwrap_or_else(|| DEFAULT_REDIS_PREFIX.to_owned()),
        // gearmand's command line names its prefix with --redis-prefix: unless the import's
        // prefix is named on its own, that one is gearmand's too, so the line works unchanged.
        gearmand_prefix: gearmand_prefix
            .or(prefix)
            .unwrap_or_else(|| DEFAULT_REDIS_GEARMAND_PREFIX.to_owned()),
    };
    if s.host.is_empty() {
        return Err(CliError::Invalid("the Redis server name is empty".into()));
    }
    if s.port == 0 {
        return Err(CliError::Invalid("the Redis port must not be 0".into()));
    }
    Ok(s)
}

fn mysql(layers: &Layers) -> Result<MysqlSettings, CliError> {
    let (server, _) = layers.url_and_keys(
        |u| match u {
            Url::Mysql(m) => Some(m),
            _ => None,
        },
        |m| m,
        |l| &l.mysql.server,
        Kind::Mysql,
    )?;
    let MysqlServer {
        mysql_host,
        mysql_port,
        mysql_user,
        mysql_password,
        mysql_db,
    } = server;
    let host = mysql_host.unwrap_or_else(|| DEFAULT_MYSQL_HOST.to_owned());
    if host.is_empty() {
        return Err(CliError::Invalid("the MySQL host name is empty".into()));
    }
    let port = mysql_port.unwrap_or(DEFAULT_MYSQL_PORT);
    if port == 0 {
        return Err(CliError::Invalid("the MySQL port must not be 0".into()));
    }
    let Some(db) = mysql_db.filter(|d| !d.is_empty()) else {
        return Err(CliError::Invalid(
            "the MySQL/MariaDB queue needs a database: give --mysql-db (and --mysql-host, \
             --mysql-user, --mysql-password) or --store mysql://user@host/database"
                .into(),
        ));
    };
    let table = layers.each.mysql.mysql_table.clone();
    let (gearmand_table, gearmand_table_given) =
        gearmand_table(table, "mysql_table", DEFAULT_MYSQL_TABLE)?;
    let keys = &layers.each.mysql;
    let ssl = TlsFiles {
        ca: keys.mysql_ssl_ca.clone(),
        cert: keys.mysql_ssl_cert.clone(),
        key: keys.mysql_ssl_key.clone(),
    };
    let ssl_mode = keys
        .mysql_ssl_mode
        .unwrap_or(if ssl == TlsFiles::default() {
            MysqlSslMode::Disabled
        } else {
            MysqlSslMode::VerifyIdentity
        });
    Ok(MysqlSettings {
        host,
        port,
        user: mysql_user,
        password: secret::password(mysql_password, password_file(layers), "MYSQL_PWD")?,
        db,
        gearmand_table,
        gearmand_table_given,
        durability: layers.each.durability.unwrap_or_default(),
        ssl_mode,
        ssl,
    })
}

fn memcached(layers: &Layers) -> Result<MemcachedSettings, CliError> {
    let servers = layers.location(
        |l| l.memcached.libmemcached_servers.as_ref(),
        |u| match u {
            Url::Memcached(list) => Some(list),
            _ => None,
        },
        |u, k| {
            format!(
                "the store URL names memcached servers {u} and --libmemcached-servers names \
                 {k}: give one of them"
            )
        },
    )?;
    let servers = servers.unwrap_or_else(|| DEFAULT_LIBMEMCACHED_SERVERS.to_owned());
    #[cfg(feature = "memcached")]
    gearbox_store_memcached::parse_servers(&servers)
        .map_err(|e| CliError::Invalid(e.to_string()))?;
    let prefix = layers.each.memcached.libmemcached_prefix.clone();
    let prefix = prefix.unwrap_or_else(|| DEFAULT_LIBMEMCACHED_PREFIX.to_owned());
    if prefix.len() > 200 || !prefix.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CliError::Invalid(format!(
            "--libmemcached-prefix {prefix:?}: use at most 200 printable characters without \
             spaces (memcached keys)"
        )));
    }
    Ok(MemcachedSettings { servers, prefix })
}

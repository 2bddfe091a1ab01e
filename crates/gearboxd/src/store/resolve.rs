//! [`StoreSettings::resolve`]: the command line's store keys over the config file's.

use std::path::PathBuf;

use gearbox_store::sql::DEFAULT_TABLE;

use super::DEFAULT_LIBSQLITE3_TABLE as DEFAULT_GEARMAND_TABLE;

use super::parse::{parse_queue_type, parse_url, Kind, Url};
use super::{
    MysqlSettings, PostgresSettings, RedisSettings, SqliteSettings, StoreKeys, StoreSettings,
    DEFAULT_DATA_DIR, DEFAULT_LIBPQ_TABLE, DEFAULT_MYSQL_HOST, DEFAULT_MYSQL_PORT,
    DEFAULT_MYSQL_TABLE, DEFAULT_REDIS_PORT, DEFAULT_REDIS_PREFIX, DEFAULT_REDIS_SERVER,
    SQLITE_FILE_NAME,
};
use crate::error::CliError;

impl StoreSettings {
    /// Combines the command line's keys with the config file's; also returns warnings for
    /// command-line flags that have no effect with the chosen store.
    pub fn resolve(
        cli: StoreKeys,
        file: StoreKeys,
    ) -> Result<(StoreSettings, Vec<String>), CliError> {
        // The kind: both keys from the command line if it gives either, else from the file.
        let (queue_type, kind_url) = if cli.queue_type.is_some() || cli.store.is_some() {
            (cli.queue_type.clone(), cli.store.clone())
        } else {
            (file.queue_type.clone(), file.store.clone())
        };
        let by_name = queue_type.as_deref().map(parse_queue_type).transpose()?;
        let by_url = kind_url.as_deref().map(parse_url).transpose()?;
        let kind = match (by_name, &by_url) {
            (Some(k), Some(u)) if k != u.kind() => {
                return Err(CliError::Invalid(format!(
                    "queue type `{}` and store URL `{}` disagree: give one of them",
                    queue_type.unwrap_or_default(),
                    super::parse::redact_url(&kind_url.unwrap_or_default())
                )))
            }
            (_, Some(u)) => u.kind(),
            (Some(k), None) => k,
            // SQLite in the data directory unless told otherwise.
            (None, None) => Kind::Sqlite,
        };
        let warnings = unused_flags(&cli, kind);
        let settings = match kind {
            Kind::Builtin => StoreSettings::Builtin,
            Kind::Sqlite => StoreSettings::Sqlite(sqlite(cli, file)?),
            Kind::Postgres => StoreSettings::Postgres(postgres(cli, file)?),
            Kind::Redis => StoreSettings::Redis(redis(cli, file)?),
            Kind::Mysql => StoreSettings::Mysql(mysql(cli, file)?),
        };
        Ok((settings, warnings))
    }
}

/// Warnings for command-line store flags the chosen kind does not use.
fn unused_flags(cli: &StoreKeys, kind: Kind) -> Vec<String> {
    use Kind::{Mysql, Postgres, Redis, Sqlite};
    let flags: [(bool, &str, &[Kind]); 16] = [
        (cli.data_dir.is_some(), "--data-dir", &[Sqlite]),
        (cli.libsqlite3_db.is_some(), "--libsqlite3-db", &[Sqlite]),
        (
            cli.libsqlite3_table.is_some(),
            "--libsqlite3-table",
            &[Sqlite],
        ),
        (
            cli.durability.is_some(),
            "--durability",
            &[Sqlite, Postgres, Mysql],
        ),
        (
            cli.libpq_conninfo.is_some(),
            "--libpq-conninfo",
            &[Postgres],
        ),
        (cli.libpq_table.is_some(), "--libpq-table", &[Postgres]),
        (cli.redis_server.is_some(), "--redis-server", &[Redis]),
        (cli.redis_port.is_some(), "--redis-port", &[Redis]),
        (cli.redis_password.is_some(), "--redis-password", &[Redis]),
        (cli.redis_prefix.is_some(), "--redis-prefix", &[Redis]),
        (cli.mysql_host.is_some(), "--mysql-host", &[Mysql]),
        (cli.mysql_port.is_some(), "--mysql-port", &[Mysql]),
        (cli.mysql_user.is_some(), "--mysql-user", &[Mysql]),
        (cli.mysql_password.is_some(), "--mysql-password", &[Mysql]),
        (cli.mysql_db.is_some(), "--mysql-db", &[Mysql]),
        (cli.mysql_table.is_some(), "--mysql-table", &[Mysql]),
    ];
    let mut warnings = Vec::new();
    for (given, flag, used_by) in flags {
        if !given || used_by.contains(&kind) {
            continue;
        }
        warnings.push(match kind {
            Kind::Builtin => format!(
                "{flag} has no effect with the builtin queue (jobs are kept in memory only); \
                 add `-q {}` to keep them in {}",
                used_by[0].queue_type(),
                used_by[0].what()
            ),
            Kind::Redis if flag == "--durability" => "--durability has no effect with the Redis \
                 queue: how an acknowledged job survives a crash depends on the Redis server's \
                 appendonly and appendfsync settings (appendonly yes, appendfsync always for \
                 fsync-like durability)"
                .to_owned(),
            _ => format!(
                "{flag} has no effect with the {} queue (it is for {})",
                kind.what(),
                used_by[0].what()
            ),
        });
    }
    warnings
}

fn sqlite(cli: StoreKeys, file: StoreKeys) -> Result<SqliteSettings, CliError> {
    // The location: both keys from the command line if it gives either, else from the file.
    let (location_url, db) = if cli.store.is_some() || cli.libsqlite3_db.is_some() {
        (cli.store, cli.libsqlite3_db)
    } else {
        (file.store, file.libsqlite3_db)
    };
    let url_path = match location_url.as_deref().map(parse_url).transpose()? {
        Some(Url::Sqlite(path)) => Some(path),
        _ => None,
    };
    let (path, data_dir) = match (url_path, db) {
        (Some(u), Some(d)) if u != d => {
            return Err(CliError::Invalid(format!(
                "the store URL names {} and --libsqlite3-db names {}: give one of them",
                u.display(),
                d.display()
            )))
        }
        (Some(p), _) | (None, Some(p)) => (p, None),
        (None, None) => {
            let dir = cli
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
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
    let given_table = cli.libsqlite3_table.or(file.libsqlite3_table);
    let gearmand_table_given = given_table.is_some();
    let gearmand_table = given_table.unwrap_or_else(|| DEFAULT_GEARMAND_TABLE.to_owned());
    if gearmand_table == DEFAULT_TABLE {
        return Err(CliError::Invalid(format!(
            "--libsqlite3-table `{DEFAULT_TABLE}` is gearboxd's own table; name gearmand's \
             queue table (gearmand's default: {DEFAULT_GEARMAND_TABLE})"
        )));
    }
    Ok(SqliteSettings {
        path,
        data_dir,
        gearmand_table,
        gearmand_table_given,
        durability: cli.durability.or(file.durability).unwrap_or_default(),
    })
}

fn postgres(cli: StoreKeys, file: StoreKeys) -> Result<PostgresSettings, CliError> {
    let (location_url, conninfo) = if cli.store.is_some() || cli.libpq_conninfo.is_some() {
        (cli.store, cli.libpq_conninfo)
    } else {
        (file.store, file.libpq_conninfo)
    };
    let url = match location_url.as_deref().map(parse_url).transpose()? {
        Some(Url::Postgres(url)) => Some(url),
        _ => None,
    };
    let conninfo = match (url, conninfo) {
        (Some(u), Some(c)) if u != c => {
            return Err(CliError::Invalid(
                "both a store URL and --libpq-conninfo name the PostgreSQL database, \
                 differently: give one of them"
                    .into(),
            ))
        }
        (Some(c), _) | (None, Some(c)) => c,
        (None, None) => String::new(),
    };
    if conninfo.trim().is_empty() {
        return Err(CliError::Invalid(
            "the PostgreSQL queue needs a database: give --libpq-conninfo (e.g. \
             'host=127.0.0.1 user=gearman dbname=gearman') or --store \
             postgres://user@host/database"
                .into(),
        ));
    }
    let given_table = cli.libpq_table.or(file.libpq_table);
    let gearmand_table_given = given_table.is_some();
    let gearmand_table = given_table.unwrap_or_else(|| DEFAULT_LIBPQ_TABLE.to_owned());
    if gearmand_table == DEFAULT_TABLE || gearmand_table.is_empty() {
        return Err(CliError::Invalid(format!(
            "--libpq-table `{gearmand_table}` cannot be gearmand's queue table (gearboxd keeps \
             its jobs in `{}`; gearmand's default: {DEFAULT_LIBPQ_TABLE})",
            DEFAULT_TABLE
        )));
    }
    Ok(PostgresSettings {
        conninfo,
        gearmand_table,
        gearmand_table_given,
        durability: cli.durability.or(file.durability).unwrap_or_default(),
    })
}

fn redis(cli: StoreKeys, file: StoreKeys) -> Result<RedisSettings, CliError> {
    // A URL comes from the command line if it gives one, else from the file; the separate
    // keys then override it key by key (flags over the file), except that a URL and a key of
    // the same layer must agree.
    let redis_url = |layer: &StoreKeys| -> Result<_, CliError> {
        Ok(match layer.store.as_deref().map(parse_url).transpose()? {
            Some(Url::Redis(url)) => Some(url),
            _ => None,
        })
    };
    let (url, url_layer) = match redis_url(&cli)? {
        Some(u) => (Some(u), Some(&cli)),
        None => match redis_url(&file)? {
            Some(u) => (Some(u), Some(&file)),
            None => (None, None),
        },
    };
    let mut s = RedisSettings {
        host: DEFAULT_REDIS_SERVER.to_owned(),
        port: DEFAULT_REDIS_PORT,
        username: None,
        password: None,
        db: 0,
        prefix: cli
            .redis_prefix
            .clone()
            .or(file.redis_prefix.clone())
            .unwrap_or_else(|| DEFAULT_REDIS_PREFIX.to_owned()),
    };
    if let (Some(u), Some(layer)) = (url, url_layer) {
        s.host = u.host;
        s.port = u.port.unwrap_or(DEFAULT_REDIS_PORT);
        s.username = u.username;
        s.password = u.password;
        s.db = u.db;
        let conflict = |what: &str| {
            CliError::Invalid(format!(
                "the store URL and --redis-{what} name different Redis {what}s: give one of them"
            ))
        };
        if layer.redis_server.as_ref().is_some_and(|h| *h != s.host) {
            return Err(conflict("server"));
        }
        if layer.redis_port.is_some_and(|p| p != s.port) {
            return Err(conflict("port"));
        }
        if layer.redis_password.is_some() && layer.redis_password != s.password {
            return Err(conflict("password"));
        }
    }
    let from_file = !url_layer.is_some_and(|l| std::ptr::eq(l, &cli));
    let layers: &[&StoreKeys] = if from_file { &[&file, &cli] } else { &[&cli] };
    for layer in layers {
        if let Some(h) = &layer.redis_server {
            s.host.clone_from(h);
        }
        if let Some(p) = layer.redis_port {
            s.port = p;
        }
        if layer.redis_password.is_some() {
            s.password.clone_from(&layer.redis_password);
        }
    }
    if s.host.is_empty() {
        return Err(CliError::Invalid("the Redis server name is empty".into()));
    }
    if s.port == 0 {
        return Err(CliError::Invalid("the Redis port must not be 0".into()));
    }
    Ok(s)
}

fn mysql(cli: StoreKeys, file: StoreKeys) -> Result<MysqlSettings, CliError> {
    // As for Redis: a URL from the command line if it gives one, else from the file; the
    // separate keys override it key by key, and a URL and a key of one layer must agree.
    let mysql_url = |layer: &StoreKeys| -> Result<_, CliError> {
        Ok(match layer.store.as_deref().map(parse_url).transpose()? {
            Some(Url::Mysql(url)) => Some(url),
            _ => None,
        })
    };
    let (url, url_layer) = match mysql_url(&cli)? {
        Some(u) => (Some(u), Some(&cli)),
        None => match mysql_url(&file)? {
            Some(u) => (Some(u), Some(&file)),
            None => (None, None),
        },
    };
    let mut o = gearbox_store_mysql::MysqlOptions {
        host: DEFAULT_MYSQL_HOST.to_owned(),
        port: DEFAULT_MYSQL_PORT,
        ..Default::default()
    };
    if let (Some(u), Some(layer)) = (url, url_layer) {
        o = gearbox_store_mysql::MysqlOptions::from_url(&u).map_err(|_| {
            CliError::Invalid(format!(
                "store URL `{}` cannot be parsed",
                super::parse::redact_url(&u)
            ))
        })?;
        let conflict = |what: &str| {
            CliError::Invalid(format!(
                "the store URL and --mysql-{what} name different MySQL {what}s: give one of them"
            ))
        };
        if layer.mysql_host.as_ref().is_some_and(|h| *h != o.host) {
            return Err(conflict("host"));
        }
        if layer.mysql_port.is_some_and(|p| p != o.port) {
            return Err(conflict("port"));
        }
        if layer.mysql_user.is_some() && layer.mysql_user != o.user {
            return Err(conflict("user"));
        }
        if layer.mysql_password.is_some() && layer.mysql_password != o.password {
            return Err(conflict("password"));
        }
        if layer.mysql_db.is_some() && layer.mysql_db != o.db {
            return Err(conflict("db"));
        }
    }
    let from_file = !url_layer.is_some_and(|l| std::ptr::eq(l, &cli));
    let layers: &[&StoreKeys] = if from_file { &[&file, &cli] } else { &[&cli] };
    for layer in layers {
        if let Some(h) = &layer.mysql_host {
            o.host.clone_from(h);
        }
        if let Some(p) = layer.mysql_port {
            o.port = p;
        }
        if layer.mysql_user.is_some() {
            o.user.clone_from(&layer.mysql_user);
        }
        if layer.mysql_password.is_some() {
            o.password.clone_from(&layer.mysql_password);
        }
        if layer.mysql_db.is_some() {
            o.db.clone_from(&layer.mysql_db);
        }
    }
    if o.host.is_empty() {
        return Err(CliError::Invalid("the MySQL host name is empty".into()));
    }
    if o.port == 0 {
        return Err(CliError::Invalid("the MySQL port must not be 0".into()));
    }
    if o.db.as_deref().unwrap_or("").is_empty() {
        return Err(CliError::Invalid(
            "the MySQL/MariaDB queue needs a database: give --mysql-db (and --mysql-host, \
             --mysql-user, --mysql-password) or --store mysql://user@host/database"
                .into(),
        ));
    }
    let given_table = cli.mysql_table.or(file.mysql_table);
    let gearmand_table_given = given_table.is_some();
    let gearmand_table = given_table.unwrap_or_else(|| DEFAULT_MYSQL_TABLE.to_owned());
    if gearmand_table == DEFAULT_TABLE || gearmand_table.is_empty() {
        return Err(CliError::Invalid(format!(
            "--mysql-table `{gearmand_table}` cannot be gearmand's queue table (gearboxd keeps \
             its jobs in `{}`; gearmand's default: {DEFAULT_MYSQL_TABLE})",
            DEFAULT_TABLE
        )));
    }
    Ok(MysqlSettings {
        options: o,
        gearmand_table,
        gearmand_table_given,
        durability: cli.durability.or(file.durability).unwrap_or_default(),
    })
}

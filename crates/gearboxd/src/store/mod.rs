//! The job store: which one (`-q`, `--store`, `--data-dir`, `--libsqlite3-*`, `--libpq-*`,
//! `--redis-*`, `--mysql-*`, `--libmemcached-*`, `--durability` and their config-file keys, resolved into
//! [`StoreSettings`]) and opening it before the server binds ([`open`]).
//!
//! SQLite (`libsqlite3`) in the data directory is the default. SQLite, PostgreSQL (`libpq`),
//! Redis (`redis`), MySQL/MariaDB (`mysql`) and memcached (`libmemcached`, in gearmand's key
//! format; a cache that may evict jobs) keep every background job; `builtin` keeps
//! jobs in memory only.
//!
//! The code is split by responsibility: `section` holds the store's keys ([`StoreSection`], a
//! section of [`crate::options::Options`]), `kind` the queue type names ([`QueueType`]) and
//! which stores this build has, `parse` reads store URLs, `resolve` applies the rules below
//! once, into [`StoreSettings`] (plain data, whatever the cargo features), `open` opens (or
//! connects to) the store with its driver and imports gearmand's queue (its table, or its Redis
//! keys), `lock` keeps one gearboxd per SQLite file.
//!
//! # Cargo features
//!
//! Each database store is a feature (`sqlite`, `postgres`, `mysql`, `redis`, `memcached`; all on by
//! default); `builtin` is always there. Choosing a store this gearboxd was built without stops
//! the start-up with an error that names the feature to build with. That includes the
//! default, `libsqlite3`: a gearboxd built without `sqlite` needs `-q` (for example
//! `-q builtin`), rather than silently keeping jobs in memory only.
//!
//! # Which layer wins
//!
//! Each key follows flags > config file > default, except that two groups of keys are taken
//! from one layer as a whole, so a flag can override the file without contradicting it:
//! the queue's kind (`queue_type`, `store`) and the database's location (`store` with
//! `libsqlite3_db`, or `store` with `libpq_conninfo`) come from the command line if it gives
//! any key of the group, else from the file. Within one layer, keys that disagree
//! (`-q builtin --store sqlite:x`) are an error. Redis's `redis_server`, `redis_port` and
//! `redis_password` each override the host, port and password of a `redis://` URL given in
//! the other layer, key by key; so do `mysql_host`, `mysql_port`, `mysql_user`,
//! `mysql_password` and `mysql_db` for a `mysql://` URL. All of these rules are applied in one
//! place, [`StoreSettings::resolve`], to the two layers' [`StoreSection`]s.
//!
//! # One server per store
//!
//! For SQLite, [`open`] takes an exclusive `flock` on `<database>.lock` (which holds the
//! owner's pid), so a second gearboxd on the same store stops at start-up instead of running
//! the same jobs and handing out the same handles. PostgreSQL, Redis and MySQL have no such lock
//! yet: run one gearboxd per table (or key prefix).
//!
//! # Migration from gearmand
//!
//! If the SQLite database holds gearmand's queue table (`--libsqlite3-table`, gearmand's own
//! default `gearman_queue`), or the PostgreSQL database holds gearmand's libpq table
//! (`--libpq-table`, default `queue`), or the MySQL database holds gearmand's MySQL table
//! (`--mysql-table`, default `gearman_queue`), its jobs are moved into gearboxd's table
//! (`gearbox_jobs`) at start-up, in one transaction that also empties gearmand's table. They
//! get handles `<prefix>:<n>` numbered after the highest stored handle of this prefix, so they
//! cannot collide with stored jobs.

mod data_dir;
mod kind;
#[cfg(feature = "sqlite")]
mod lock;
mod open;
mod parse;
mod resolve;
mod secret;
mod section;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_secure;

use std::path::PathBuf;

use gearbox_store::tls::{MysqlSslMode, TlsFiles};
use gearbox_store::Durability;

pub use data_dir::{default_data_dir_from, ServingAs, SYSTEM_DATA_DIR};
pub use kind::QueueType;
pub use open::{open, OpenedStore};
pub use secret::PASSWORD_VAR;
pub use section::{
    MemcachedSection, MysqlSection, MysqlServer, Password, PostgresSection, RedisSection,
    RedisServer, SqliteSection, StoreSection, TokyoCabinetSection,
};

/// The queue type unless `-q` or `--store` says otherwise.
pub const DEFAULT_QUEUE_TYPE: QueueType = QueueType::Libsqlite3;

/// The data directory unless `--data-dir` or `$STATE_DIRECTORY` says otherwise, or the
/// working directory is `/` (see [`default_data_dir_from`]); relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "gearbox-data";

/// The SQLite file's name inside the data directory.
pub const SQLITE_FILE_NAME: &str = "gearbox.sqlite";

/// gearmand's libsqlite3 queue table, imported from if it exists (`--libsqlite3-table`).
pub const DEFAULT_LIBSQLITE3_TABLE: &str = "gearman_queue";

/// gearmand's libpq queue table, imported from if it exists (`--libpq-table`).
pub const DEFAULT_LIBPQ_TABLE: &str = "queue";

/// The Redis server unless `--redis-server` says otherwise.
pub const DEFAULT_REDIS_SERVER: &str = "127.0.0.1";

/// The Redis port unless `--redis-port` says otherwise.
pub const DEFAULT_REDIS_PORT: u16 = 6379;

/// The Redis key prefix unless `--redis-prefix` says otherwise.
pub const DEFAULT_REDIS_PREFIX: &str = "gearbox:";

/// gearmand's Redis key prefix, imported from (`--redis-gearmand-prefix`): gearmand's default.
pub const DEFAULT_REDIS_GEARMAND_PREFIX: &str = "_gear_";

/// The MySQL server unless `--mysql-host` says otherwise (gearmand's default).
pub const DEFAULT_MYSQL_HOST: &str = "localhost";

/// The MySQL port unless `--mysql-port` says otherwise.
pub const DEFAULT_MYSQL_PORT: u16 = 3306;

/// gearmand's MySQL queue table, imported from if it exists (`--mysql-table`).
pub const DEFAULT_MYSQL_TABLE: &str = "gearman_queue";

/// The memcached servers unless `--libmemcached-servers` says otherwise.
pub const DEFAULT_LIBMEMCACHED_SERVERS: &str = "127.0.0.1:11211";

/// The memcached key prefix unless `--libmemcached-prefix` says otherwise (gearmand's).
pub const DEFAULT_LIBMEMCACHED_PREFIX: &str = "gear_";

/// Where background jobs are kept, after precedence and checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSettings {
    /// In memory only: queued jobs are lost when gearboxd stops (gearmand's `builtin`).
    Builtin,
    /// A SQLite database file.
    Sqlite(SqliteSettings),
    /// A PostgreSQL table (gearmand's `libpq`).
    Postgres(PostgresSettings),
    /// Redis keys (gearmand's `redis`).
    Redis(RedisSettings),
    /// A MySQL/MariaDB table (gearmand's `mysql`).
    Mysql(MysqlSettings),
    /// memcached keys in gearmand's format (gearmand's `libmemcached`).
    Memcached(MemcachedSettings),
}

/// The memcached queue's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemcachedSettings {
    /// The servers, as given (libmemcached's syntax; checked when resolved).
    pub servers: String,
    /// Prefix of every key.
    pub prefix: String,
}

/// The SQLite queue's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteSettings {
    /// The database file.
    pub path: PathBuf,
    /// The data directory to create before opening, when the file is the data directory's.
    pub data_dir: Option<PathBuf>,
    /// gearmand's queue table to import from, if it exists.
    pub gearmand_table: String,
    /// Whether the table was named by the user (then a table that is not in gearmand's
    /// format is an error; gearmand's default name is only imported from if it fits).
    pub gearmand_table_given: bool,
    /// How hard commits try to survive crashes.
    pub durability: Durability,
}

/// The PostgreSQL queue's settings.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// libpq conninfo (`host=... user=... dbname=...`) or a `postgres://` URL, with libpq's
    /// TLS keys (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`).
    pub conninfo: String,
    /// The password if the conninfo has none (from `--store-password-file` or the
    /// environment).
    pub password: Option<Password>,
    /// gearmand's queue table to import from, if it exists (`--libpq-table`).
    pub gearmand_table: String,
    /// Whether the table was named by the user (see [`SqliteSettings::gearmand_table_given`]).
    pub gearmand_table_given: bool,
    /// `fsync` = `synchronous_commit = on`; `normal` and `none` turn it off.
    pub durability: Durability,
}

impl std::fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("conninfo", &parse::redact_conninfo(&self.conninfo))
            .field("password", &self.password)
            .field("gearmand_table", &self.gearmand_table)
            .field("gearmand_table_given", &self.gearmand_table_given)
            .field("durability", &self.durability)
            .finish()
    }
}

/// The Redis queue's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User for `AUTH` (Redis 6 ACLs), from a URL only.
    pub username: Option<String>,
    /// Password for `AUTH`.
    pub password: Option<Password>,
    /// Database number (`SELECT`), from a URL only.
    pub db: i64,
    /// Prefix of every key.
    pub prefix: String,
    /// gearmand's key prefix, whose queued jobs are imported (`--redis-gearmand-prefix`).
    pub gearmand_prefix: String,
    /// TLS with these files (`rediss://`, `--redis-tls`), or plain TCP.
    pub tls: Option<TlsFiles>,
}

impl RedisSettings {
    /// `redis://host:port/db` (`rediss://` with TLS), without the password.
    pub fn location(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://{}:{}/{}", self.host, self.port, self.db)
    }
}

/// The MySQL/MariaDB queue's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlSettings {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User name.
    pub user: Option<String>,
    /// Password.
    pub password: Option<Password>,
    /// Database, where gearboxd's table is.
    pub db: String,
    /// gearmand's queue table to import from, if it exists (`--mysql-table`).
    pub gearmand_table: String,
    /// Whether the table was named by the user (see [`SqliteSettings::gearmand_table_given`]).
    pub gearmand_table_given: bool,
    /// `fsync` checks that the server flushes at every commit; `normal` and `none` accept
    /// what it does.
    pub durability: Durability,
    /// TLS or not (`--mysql-ssl-mode`).
    pub ssl_mode: MysqlSslMode,
    /// The CA file and client certificate (`--mysql-ssl-ca`, `-cert`, `-key`).
    pub ssl: TlsFiles,
}

impl MysqlSettings {
    /// `mysql://user@host:port/db`, without the password, for logs and errors (with
    /// `?ssl-mode=...` when TLS is on).
    pub fn location(&self) -> String {
        let user = self.user.as_deref().unwrap_or("");
        let at = if user.is_empty() { "" } else { "@" };
        let tls = match self.ssl_mode {
            MysqlSslMode::Disabled => String::new(),
            mode => format!("?ssl-mode={mode}"),
        };
        format!(
            "mysql://{user}{at}{}:{}/{}{tls}",
            self.host, self.port, self.db
        )
    }
}

impl StoreSettings {
    /// Which kind of store it is.
    #[cfg_attr(
        all(
            feature = "sqlite",
            feature = "postgres",
            feature = "mysql",
            feature = "redis",
            feature = "memcached"
        ),
        allow(dead_code)
    )]
    fn kind(&self) -> kind::Kind {
        match self {
            StoreSettings::Builtin => kind::Kind::Builtin,
            StoreSettings::Sqlite(_) => kind::Kind::Sqlite,
            StoreSettings::Postgres(_) => kind::Kind::Postgres,
            StoreSettings::Redis(_) => kind::Kind::Redis,
            StoreSettings::Mysql(_) => kind::Kind::Mysql,
            StoreSettings::Memcached(_) => kind::Kind::Memcached,
        }
    }

    /// A short description for logs, without passwords: `builtin`, `sqlite FILE (durability
    /// ...)`, `postgres CONNINFO (...)`, `redis redis://host:port/db (...)` or
    /// `mysql mysql://user@host:port/db (...)`.
    pub fn describe(&self) -> String {
        match self {
            StoreSettings::Builtin => "builtin (in memory only)".into(),
            StoreSettings::Sqlite(s) => {
                format!("sqlite {} (durability {})", s.path.display(), s.durability)
            }
            StoreSettings::Postgres(s) => format!(
                "postgres {} (table {}, durability {})",
                parse::redact_conninfo(&s.conninfo),
                gearbox_store::sql::DEFAULT_TABLE,
                s.durability
            ),
            StoreSettings::Redis(s) => format!(
                "redis {} (prefix {:?}; durability per the server's appendonly and \
                 appendfsync settings)",
                s.location(),
                s.prefix
            ),
            StoreSettings::Mysql(s) => format!(
                "mysql {} (table {}, durability {})",
                s.location(),
                gearbox_store::sql::DEFAULT_TABLE,
                s.durability
            ),
            StoreSettings::Memcached(s) => format!(
                "memcached {} (prefix {:?}; in memcached's memory only: a restart of memcached \
                 or an eviction loses jobs)",
                s.servers, s.prefix
            ),
        }
    }

    /// gearmand's queue table this store imports from at start-up, and whether the user named
    /// it (then a table that is not in gearmand's format is an error).
    pub fn import_table(&self) -> Option<(&str, bool)> {
        match self {
            StoreSettings::Sqlite(s) => Some((&s.gearmand_table, s.gearmand_table_given)),
            StoreSettings::Postgres(s) => Some((&s.gearmand_table, s.gearmand_table_given)),
            StoreSettings::Mysql(s) => Some((&s.gearmand_table, s.gearmand_table_given)),
            // gearmand's key prefix; keys not in its format are left alone, never an error.
            StoreSettings::Redis(s) => Some((&s.gearmand_prefix, true)),
            StoreSettings::Builtin | StoreSettings::Memcached(_) => None,
        }
    }

    /// Where this store imports gearmand's queue from and what became of it, for the
    /// start-up message: `gearmand's queue table `T` in LOCATION; that table is now empty`.
    pub fn import_source(&self) -> Option<String> {
        let table = |t: &str, location: String| {
            format!("gearmand's queue table `{t}` in {location}; that table is now empty")
        };
        match self {
            StoreSettings::Sqlite(s) => {
                Some(table(&s.gearmand_table, s.path.display().to_string()))
            }
            StoreSettings::Postgres(s) => Some(table(
                &s.gearmand_table,
                parse::redact_conninfo(&s.conninfo),
            )),
            StoreSettings::Mysql(s) => Some(table(&s.gearmand_table, s.location())),
            StoreSettings::Redis(s) => Some(format!(
                "gearmand's Redis queue (keys `{}-*`) in {}; those keys are deleted",
                s.gearmand_prefix,
                s.location()
            )),
            StoreSettings::Builtin | StoreSettings::Memcached(_) => None,
        }
    }
}

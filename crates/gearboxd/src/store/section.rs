//! [`StoreSection`]: the store's settings as one layer gives them (flags, or config-file keys),
//! a section of [`crate::options::Options`]. Each backend's keys are a sub-section, so that
//! the keys a chosen store does not use are known without a list of names.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use gearbox_store::tls::MysqlSslMode;
use gearbox_store::Durability;
use serde::{Deserialize, Serialize};

use super::QueueType;

/// The `--help` heading of the store's flags.
const STORE: &str = "Job store";

/// The job store's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreSection {
    /// Job queue: `libsqlite3` (also `sqlite`) keeps every background job in a SQLite file in
    /// the data directory (see --data-dir), `libpq` (also `postgres`) in a PostgreSQL table
    /// (see --libpq-conninfo), `redis` in Redis (see --redis-server), `mysql` (also
    /// `mariadb`) in a MySQL/MariaDB table (see --mysql-host), `libmemcached` (also
    /// `memcached`) in memcached as gearmand does (see --libmemcached-servers; a cache: it
    /// may evict jobs), and acknowledges it only once stored; `builtin` keeps jobs in memory
    /// only, lost when gearboxd stops (default: libsqlite3).
    #[arg(short = 'q', long, value_name = "TYPE", help_heading = STORE)]
    pub queue_type: Option<QueueType>,

    /// The job store as a URL, instead of -q and the location flags:
    /// `sqlite:///abs/file.sqlite`, `sqlite:relative/file.sqlite`,
    /// `postgres://user[:password]@host[:port]/database[?sslmode=...]`,
    /// `redis://[:password@]host:port[/db]` (`rediss://` for TLS),
    /// `mysql://user[:password]@host[:port]/database`,
    /// `memcached://host[:port][,host[:port]...]`, or `memory:` (the builtin queue).
    #[arg(long = "store", value_name = "URL", help_heading = STORE)]
    pub store: Option<String>,

    /// File holding the password of the PostgreSQL, Redis or MySQL/MariaDB store (one line;
    /// a final newline is not part of it), for when the URL and the password keys give none.
    /// Then come the environment variables GEARBOX_STORE_PASSWORD and the database's own
    /// (PGPASSWORD, REDISCLI_AUTH, MYSQL_PWD). Unlike a password flag, it is not visible in
    /// the process list.
    #[arg(long = "store-password-file", value_name = "FILE", help_heading = STORE)]
    pub store_password_file: Option<PathBuf>,

    /// The SQLite queue's keys.
    #[command(flatten)]
    #[serde(flatten)]
    pub sqlite: SqliteSection,

    /// The PostgreSQL queue's keys.
    #[command(flatten)]
    #[serde(flatten)]
    pub postgres: PostgresSection,

    /// The Redis queue's keys.
    #[command(flatten)]
    #[serde(flatten)]
    pub redis: RedisSection,

    /// The MySQL/MariaDB queue's keys.
    #[command(flatten)]
    #[serde(flatten)]
    pub mysql: MysqlSection,

    /// The memcached queue's keys.
    #[command(flatten)]
    #[serde(flatten)]
    pub memcached: MemcachedSection,

    /// gearmand's Tokyo Cabinet queue's keys: read, so that gearmand's command lines parse,
    /// and refused with the way to move the queue.
    #[command(flatten)]
    #[serde(flatten)]
    pub tokyocabinet: TokyoCabinetSection,

    /// When a background job is acknowledged (JOB_CREATED) with the SQLite queue. `fsync`:
    /// once flushed to disk; it survives a crash of gearboxd, of the system and a power loss.
    /// `normal`: once written to the OS, flushed at checkpoints; it survives a crash of
    /// gearboxd (even SIGKILL), but a system crash or power loss may lose the latest jobs
    /// (never corrupting the database). `none`: never flushed; it survives a crash of gearboxd
    /// only, and a system crash may lose jobs and corrupt the database. With PostgreSQL,
    /// `fsync` is synchronous_commit = on, `normal` and `none` turn it off (a PostgreSQL crash
    /// may lose the latest jobs). With MySQL/MariaDB, `fsync` checks at each connection that
    /// the server flushes at every commit (innodb_flush_log_at_trx_commit = 1) and warns
    /// otherwise. With Redis it has no effect: the server's appendonly and
    /// appendfsync settings decide (default: fsync).
    #[arg(long, value_name = "MODE", help_heading = STORE)]
    pub durability: Option<Durability>,
}

/// The SQLite queue's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct SqliteSection {
    /// Directory of the SQLite queue (the default queue), created if missing; the database is
    /// DIR/gearbox.sqlite unless --libsqlite3-db or --store names a file (default:
    /// gearbox-data in the working directory; $STATE_DIRECTORY if set, as systemd's
    /// StateDirectory= sets it; if the working directory is /, /var/lib/gearbox as root or
    /// the serving user's home directory).
    #[arg(long, value_name = "DIR", help_heading = STORE)]
    pub data_dir: Option<PathBuf>,

    /// SQLite database file of the queue, instead of DIR/gearbox.sqlite. It may be gearmand's
    /// libsqlite3 database: gearmand's queued jobs are then imported (see --libsqlite3-table).
    #[arg(long = "libsqlite3-db", value_name = "FILE", help_heading = STORE)]
    pub libsqlite3_db: Option<PathBuf>,

    /// gearmand's queue table in the SQLite database. If it exists (columns unique_key,
    /// function_name, priority, data, when_to_run), its jobs move into gearboxd's own table
    /// at start-up with new handles, and it is left empty (default: gearman_queue).
    #[arg(long = "libsqlite3-table", value_name = "NAME", help_heading = STORE)]
    pub libsqlite3_table: Option<String>,
}

/// The PostgreSQL queue's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct PostgresSection {
    /// PostgreSQL server and database for `-q libpq`, as libpq conninfo
    /// (`host=127.0.0.1 port=5432 user=gearman dbname=gearman`) or a `postgres://` URL. TLS
    /// with libpq's keys (URL parameters `?sslmode=...&sslrootcert=...`): sslmode=disable,
    /// prefer (the default), require, verify-ca or verify-full; sslrootcert=FILE (the CA);
    /// sslcert=FILE and sslkey=FILE (a client certificate).
    #[arg(long = "libpq-conninfo", value_name = "STR", help_heading = STORE)]
    pub libpq_conninfo: Option<String>,

    /// gearmand's queue table in the PostgreSQL database. If it exists (columns unique_key,
    /// function_name, priority, data, when_to_run), its jobs move into gearboxd's own table
    /// (gearbox_jobs) at start-up with new handles, and it is left empty (default: queue).
    #[arg(long = "libpq-table", value_name = "NAME", help_heading = STORE)]
    pub libpq_table: Option<String>,
}

/// The Redis queue's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct RedisSection {
    /// Where the server is: what a `redis://` URL can also say.
    #[command(flatten)]
    #[serde(flatten)]
    pub server: RedisServer,

    /// Prefix of every Redis key gearboxd uses (default: gearbox:).
    #[arg(long = "redis-prefix", value_name = "P", help_heading = STORE)]
    pub redis_prefix: Option<String>,

    /// The key prefix of gearmand's Redis queue. Its queued jobs, keys
    /// `<P>-<function>-<unique>`, move into gearboxd's keys at start-up with new handles and
    /// are deleted from gearmand's; other keys are left alone (default: _gear_, or
    /// --redis-prefix if that is given, as gearmand's command line names its prefix so).
    #[arg(long = "redis-gearmand-prefix", value_name = "P", help_heading = STORE)]
    pub redis_gearmand_prefix: Option<String>,

    /// Connect to Redis over TLS, as a `rediss://` URL does; the server's certificate must
    /// name the host (--redis-server) and chain to --redis-ca-file (or to the system's CAs).
    /// Also on when --redis-ca-file, --redis-cert-file or --redis-key-file is given.
    #[arg(long = "redis-tls", help_heading = STORE)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub redis_tls: bool,

    /// CA certificates (PEM) that the Redis server's certificate must chain to (default: the
    /// system's).
    #[arg(long = "redis-ca-file", value_name = "FILE", help_heading = STORE)]
    pub redis_ca_file: Option<PathBuf>,

    /// Client certificate (PEM) for a Redis server that requires one (tls-auth-clients);
    /// needs --redis-key-file.
    #[arg(long = "redis-cert-file", value_name = "FILE", help_heading = STORE)]
    pub redis_cert_file: Option<PathBuf>,

    /// The client certificate's private key (PEM, unencrypted).
    #[arg(long = "redis-key-file", value_name = "FILE", help_heading = STORE)]
    pub redis_key_file: Option<PathBuf>,
}

/// The Redis server's keys, each overriding the same part of a `redis://` URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct RedisServer {
    /// Redis server (host name or address) for `-q redis` (default: 127.0.0.1).
    #[arg(long = "redis-server", value_name = "HOST", help_heading = STORE)]
    pub redis_server: Option<String>,

    /// Redis port (default: 6379).
    #[arg(long = "redis-port", value_name = "N", help_heading = STORE)]
    pub redis_port: Option<u16>,

    /// Redis password (AUTH). Visible in the process list: prefer --store-password-file, the
    /// config file or REDISCLI_AUTH.
    #[arg(long = "redis-password", value_name = "P", help_heading = STORE)]
    pub redis_password: Option<Password>,
}

/// The MySQL/MariaDB queue's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct MysqlSection {
    /// Where the server and database are: what a `mysql://` URL can also say.
    #[command(flatten)]
    #[serde(flatten)]
    pub server: MysqlServer,

    /// gearmand's queue table in the MySQL database. If it exists (columns unique_key,
    /// function_name, priority, data, when_to_run), its jobs move into gearboxd's own table
    /// (gearbox_jobs) at start-up with new handles, and it is left empty
    /// (default: gearman_queue).
    #[arg(long = "mysql-table", value_name = "NAME", help_heading = STORE)]
    pub mysql_table: Option<String>,

    /// TLS to MySQL/MariaDB, as mysql's --ssl-mode: DISABLED, REQUIRED (encrypted, any
    /// certificate), VERIFY_CA (signed by --mysql-ssl-ca) or VERIFY_IDENTITY (and naming
    /// --mysql-host) (default: DISABLED, or VERIFY_IDENTITY when a --mysql-ssl-* file is
    /// given).
    #[arg(long = "mysql-ssl-mode", value_name = "MODE", help_heading = STORE)]
    pub mysql_ssl_mode: Option<MysqlSslMode>,

    /// CA certificates (PEM) that the MySQL/MariaDB server's certificate must chain to
    /// (default: the Mozilla roots bundled with the driver).
    #[arg(long = "mysql-ssl-ca", value_name = "FILE", help_heading = STORE)]
    pub mysql_ssl_ca: Option<PathBuf>,

    /// Client certificate (PEM) for a MySQL/MariaDB user created REQUIRE X509; needs
    /// --mysql-ssl-key.
    #[arg(long = "mysql-ssl-cert", value_name = "FILE", help_heading = STORE)]
    pub mysql_ssl_cert: Option<PathBuf>,

    /// The client certificate's private key (PEM, unencrypted).
    #[arg(long = "mysql-ssl-key", value_name = "FILE", help_heading = STORE)]
    pub mysql_ssl_key: Option<PathBuf>,
}

/// The MySQL/MariaDB server's keys, each overriding the same part of a `mysql://` URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct MysqlServer {
    /// MySQL/MariaDB server (host name or address) for `-q mysql` (default: localhost).
    #[arg(long = "mysql-host", value_name = "HOST", help_heading = STORE)]
    pub mysql_host: Option<String>,

    /// MySQL/MariaDB port (default: 3306).
    #[arg(long = "mysql-port", value_name = "N", help_heading = STORE)]
    pub mysql_port: Option<u16>,

    /// MySQL/MariaDB user.
    #[arg(long = "mysql-user", value_name = "USER", help_heading = STORE)]
    pub mysql_user: Option<String>,

    /// MySQL/MariaDB password. Visible in the process list: prefer --store-password-file, the
    /// config file or MYSQL_PWD.
    #[arg(long = "mysql-password", value_name = "P", help_heading = STORE)]
    pub mysql_password: Option<Password>,

    /// MySQL/MariaDB database; gearboxd keeps its jobs in its table gearbox_jobs there.
    #[arg(long = "mysql-db", value_name = "NAME", help_heading = STORE)]
    pub mysql_db: Option<String>,
}

/// The memcached queue's keys (gearmand's flags).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct MemcachedSection {
    /// memcached servers for `-q libmemcached`, as gearmand takes them: `host[:port]`
    /// entries separated by commas (default: 127.0.0.1:11211).
    #[arg(long = "libmemcached-servers", value_name = "LIST", help_heading = STORE)]
    pub libmemcached_servers: Option<String>,

    /// Prefix of every memcached key; gearmand's jobs under it are replayed
    /// (default: gear_).
    #[arg(long = "libmemcached-prefix", value_name = "P", help_heading = STORE)]
    pub libmemcached_prefix: Option<String>,
}

/// gearmand's Tokyo Cabinet flags: accepted, never used (`-q libtokyocabinet` is refused).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct TokyoCabinetSection {
    /// gearmand's Tokyo Cabinet file. Not supported: see docs/job-store.md, "Moving a
    /// Tokyo Cabinet queue", to move its jobs.
    #[arg(long = "libtokyocabinet-file", value_name = "FILE", help_heading = STORE)]
    pub libtokyocabinet_file: Option<PathBuf>,

    /// gearmand's switch to optimize the Tokyo Cabinet file on open. Not supported.
    #[arg(long = "libtokyocabinet-optimize", help_heading = STORE)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub libtokyocabinet_optimize: bool,
}

/// A password: shown as `***` by `Debug`, so that settings can be printed without it; it
/// dereferences to its text.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl std::ops::Deref for Password {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for Password {
    fn from(text: String) -> Password {
        Password(text)
    }
}

impl FromStr for Password {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Password(s.to_owned()))
    }
}

//! Command-line flags, named as gearmand names them.
//!
//! Every setting that the config file can also set is an `Option` here with no clap default,
//! so [`crate::settings`] can tell "given on the command line or in the environment" from
//! "not given" and apply the precedence flags > environment > file > defaults. The defaults
//! shown in `--help` are the ones [`crate::settings`] applies.

use std::path::PathBuf;

use clap::{ArgAction, Parser};
use gearbox_server::core::TimeoutAction;
use gearbox_store::Durability;
use serde::de::IntoDeserializer;
use serde::Deserialize;

use crate::level::Verbosity;

const LIMITS: &str = "Limits";
const COMPAT: &str = "Accepted for gearmand compatibility";
const STORE: &str = "Job store";

/// gearboxd: a Gearman job server, a drop-in replacement for gearmand.
///
/// Settings come from flags, then the environment, then the `--config` file, then defaults.
/// Once every socket is bound, gearboxd prints one line per listening address on standard
/// error, `gearboxd listening on ADDR`, whatever the log settings.
/// Signals: SIGTERM/SIGINT stop now, SIGUSR1 stops once queued and running jobs are done,
/// SIGHUP reopens the log file; a second SIGTERM/SIGINT during a stop ends it at once.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "gearboxd", version, max_term_width = 100)]
pub struct Args {
    /// TOML configuration file (keys: see gearboxd.example.toml).
    #[arg(long, value_name = "FILE", env = "GEARBOXD_CONFIG")]
    pub config: Option<PathBuf>,

    /// Port to listen on (default: 4730; 0 = any free port).
    #[arg(short = 'p', long, value_name = "PORT", env = "GEARMAND_PORT")]
    pub port: Option<u16>,

    /// Address to listen on: an IP, `IP:PORT`, `[IPv6]:PORT` or a host name; repeatable
    /// (default: 0.0.0.0, and :: where IPv6 is available)
    #[arg(short = 'L', long = "listen", value_name = "ADDR")]
    pub listen: Vec<String>,

    /// Length of the queue of connections not yet accepted (default: 32).
    #[arg(short = 'b', long, value_name = "N")]
    pub backlog: Option<u32>,

    /// Attempts a job gets before a lost worker fails it, as gearmand counts them: 1 = never
    /// retried; 0 or -1 = unlimited (default: 0).
    #[arg(short = 'j', long, value_name = "N", allow_negative_numbers = true)]
    pub job_retries: Option<i64>,

    /// Sleeping workers woken per new job; 0 = all (default: 0).
    #[arg(short = 'w', long, value_name = "N")]
    pub worker_wakeup: Option<usize>,

    /// Send WORK_EXCEPTION to every client, not only to those that asked for it.
    #[arg(long)]
    pub exceptions: bool,

    /// Job handle prefix: handles are PREFIX:N (default: `H:<hostname>`).
    #[arg(long, value_name = "PREFIX")]
    pub job_handle_prefix: Option<String>,

    /// What a CAN_DO_TIMEOUT expiry does: `fail` the job, or `requeue` it as gearmand does
    /// (default: fail).
    #[arg(long, value_name = "ACTION", value_parser = parse_timeout_action)]
    pub timeout_action: Option<TimeoutAction>,

    /// Runtime worker threads: 1 = everything on one thread with no cross-thread wake-ups
    /// (fastest measured, on 2 cores shared with clients), N spreads socket reads and writes
    /// over N threads, 0 = one per CPU core (default: 1).
    #[arg(short = 't', long, value_name = "N")]
    pub threads: Option<usize>,

    /// Append the log to FILE; `stderr` or `none` log to standard error (default: stderr).
    /// SIGHUP reopens it.
    #[arg(short = 'l', long, value_name = "FILE")]
    pub log_file: Option<String>,

    /// Log level: FATAL, ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFO or DEBUG
    /// (default: ERROR).
    #[arg(long = "verbose", value_name = "LEVEL", value_parser = parse_verbosity)]
    pub verbose: Option<Verbosity>,

    /// One level more verbose than --verbose (or the file, or ERROR); repeatable.
    #[arg(short = 'v', action = ArgAction::Count)]
    pub more_verbose: u8,

    /// Write the process id to FILE at start; removed at exit.
    #[arg(short = 'P', long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Job queue: `libsqlite3` (also `sqlite`) keeps every background job in a SQLite file in
    /// the data directory (see --data-dir), `libpq` (also `postgres`) in a PostgreSQL table
    /// (see --libpq-conninfo), `redis` in Redis (see --redis-server), `mysql` (also
    /// `mariadb`) in a MySQL/MariaDB table (see --mysql-host), and acknowledges it only once
    /// stored; `builtin` keeps jobs in memory only, lost when gearboxd stops
    /// (default: libsqlite3).
    #[arg(short = 'q', long, value_name = "TYPE", help_heading = STORE)]
    pub queue_type: Option<String>,

    /// The job store as a URL, instead of -q and the location flags:
    /// `sqlite:///abs/file.sqlite`, `sqlite:relative/file.sqlite`,
    /// `postgres://user[:password]@host[:port]/database`,
    /// `redis://[:password@]host:port[/db]`,
    /// `mysql://user[:password]@host[:port]/database`, or `memory:` (the builtin queue).
    #[arg(long = "store", value_name = "URL", help_heading = STORE)]
    pub store: Option<String>,

    /// Directory of the SQLite queue (the default queue), created if missing; the database is
    /// DIR/gearbox.sqlite unless --libsqlite3-db or --store names a file (default:
    /// gearbox-data, in the working directory).
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

    /// PostgreSQL server and database for `-q libpq`, as libpq conninfo
    /// (`host=127.0.0.1 port=5432 user=gearman dbname=gearman`) or a `postgres://` URL. No
    /// TLS: use a local or trusted network, or a Unix socket (`host=/run/postgresql`).
    #[arg(long = "libpq-conninfo", value_name = "STR", help_heading = STORE)]
    pub libpq_conninfo: Option<String>,

    /// gearmand's queue table in the PostgreSQL database. If it exists (columns unique_key,
    /// function_name, priority, data, when_to_run), its jobs move into gearboxd's own table
    /// (gearbox_jobs) at start-up with new handles, and it is left empty (default: queue).
    #[arg(long = "libpq-table", value_name = "NAME", help_heading = STORE)]
    pub libpq_table: Option<String>,

    /// Redis server (host name or address) for `-q redis` (default: 127.0.0.1).
    #[arg(long = "redis-server", value_name = "HOST", help_heading = STORE)]
    pub redis_server: Option<String>,

    /// Redis port (default: 6379).
    #[arg(long = "redis-port", value_name = "N", help_heading = STORE)]
    pub redis_port: Option<u16>,

    /// Redis password (AUTH). Visible in the process list: prefer the config file.
    #[arg(long = "redis-password", value_name = "P", help_heading = STORE)]
    pub redis_password: Option<String>,

    /// Prefix of every Redis key gearboxd uses (default: gearbox:).
    #[arg(long = "redis-prefix", value_name = "P", help_heading = STORE)]
    pub redis_prefix: Option<String>,

    /// MySQL/MariaDB server (host name or address) for `-q mysql` (default: localhost).
    #[arg(long = "mysql-host", value_name = "HOST", help_heading = STORE)]
    pub mysql_host: Option<String>,

    /// MySQL/MariaDB port (default: 3306).
    #[arg(long = "mysql-port", value_name = "N", help_heading = STORE)]
    pub mysql_port: Option<u16>,

    /// MySQL/MariaDB user.
    #[arg(long = "mysql-user", value_name = "USER", help_heading = STORE)]
    pub mysql_user: Option<String>,

    /// MySQL/MariaDB password. Visible in the process list: prefer the config file.
    #[arg(long = "mysql-password", value_name = "P", help_heading = STORE)]
    pub mysql_password: Option<String>,

    /// MySQL/MariaDB database; gearboxd keeps its jobs in its table gearbox_jobs there.
    #[arg(long = "mysql-db", value_name = "NAME", help_heading = STORE)]
    pub mysql_db: Option<String>,

    /// gearmand's queue table in the MySQL database. If it exists (columns unique_key,
    /// function_name, priority, data, when_to_run), its jobs move into gearboxd's own table
    /// (gearbox_jobs) at start-up with new handles, and it is left empty
    /// (default: gearman_queue).
    #[arg(long = "mysql-table", value_name = "NAME", help_heading = STORE)]
    pub mysql_table: Option<String>,

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
    #[arg(long, value_name = "MODE", value_parser = parse_durability, help_heading = STORE)]
    pub durability: Option<Durability>,

    /// Check the flags and the config file, then exit without serving.
    #[arg(long)]
    pub check_args: bool,

    /// Largest packet body accepted, bytes; larger ones get an ERROR and the connection is
    /// closed (default: 67108864).
    #[arg(long, value_name = "BYTES", help_heading = LIMITS)]
    pub max_body: Option<usize>,

    /// Longest admin text line, bytes (default: 8192).
    #[arg(long, value_name = "BYTES", help_heading = LIMITS)]
    pub max_admin_line: Option<usize>,

    /// Unsent output a connection may hold before it is dropped, bytes; past a quarter of it
    /// the producing connections pause (default: 67108864).
    #[arg(long, value_name = "BYTES", help_heading = LIMITS)]
    pub max_unsent: Option<usize>,

    /// How long a paused producer waits for a slow peer before that peer is dropped,
    /// milliseconds (default: 30000).
    #[arg(long, value_name = "MS", help_heading = LIMITS)]
    pub send_stall_timeout_ms: Option<u64>,

    /// How long a store commit may take before the background submits waiting for it get
    /// ERROR QUEUE_ERROR, milliseconds (default: 10000).
    #[arg(long, value_name = "MS", help_heading = LIMITS)]
    pub store_timeout_ms: Option<u64>,

    /// Simultaneous connections (default: 10000).
    #[arg(long, value_name = "N", help_heading = LIMITS)]
    pub max_connections: Option<usize>,

    /// Longest unique id, bytes (default: 64).
    #[arg(long, value_name = "BYTES", help_heading = LIMITS)]
    pub max_unique: Option<usize>,

    /// Longest function name, bytes (default: 512).
    #[arg(long, value_name = "BYTES", help_heading = LIMITS)]
    pub max_function: Option<usize>,

    /// Longest client id, bytes (default: 254).
    #[arg(long, value_name = "BYTES", help_heading = LIMITS)]
    pub max_client_id: Option<usize>,

    /// Raise the open-file limit (RLIMIT_NOFILE) to N.
    #[arg(short = 'f', long, value_name = "N", help_heading = COMPAT)]
    pub file_descriptors: Option<u64>,

    /// Enable TCP keepalive on client connections.
    #[arg(long, help_heading = COMPAT)]
    pub keepalive: bool,

    /// With --keepalive: idle seconds before the first probe; -1 = system default.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, help_heading = COMPAT)]
    pub keepalive_idle: Option<i32>,

    /// With --keepalive: seconds between probes; -1 = system default.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, help_heading = COMPAT)]
    pub keepalive_interval: Option<i32>,

    /// With --keepalive: unanswered probes before the connection is dropped; -1 = system
    /// default.
    #[arg(long, value_name = "N", allow_negative_numbers = true, help_heading = COMPAT)]
    pub keepalive_count: Option<i32>,

    /// Ignored: gearboxd always runs in the foreground (let systemd supervise it).
    #[arg(short = 'd', long, help_heading = COMPAT)]
    pub daemon: bool,

    /// Ignored: workers get jobs by priority, round-robin between functions.
    #[arg(short = 'R', long, help_heading = COMPAT)]
    pub round_robin: bool,

    /// Ignored: gearboxd's tables grow as needed.
    #[arg(long, value_name = "N", help_heading = COMPAT)]
    pub hashtable_buckets: Option<u64>,

    /// Ignored: core dumps follow the system's settings (ulimit -c).
    #[arg(long, help_heading = COMPAT)]
    pub coredump: bool,

    /// Ignored: gearboxd does not switch users; start it as the user it should run as.
    #[arg(short = 'u', long, value_name = "USER", help_heading = COMPAT)]
    pub user: Option<String>,

    /// Ignored: logs go to standard error or --log-file.
    #[arg(long, help_heading = COMPAT)]
    pub syslog: bool,
}

fn parse_verbosity(s: &str) -> Result<Verbosity, String> {
    s.parse()
}

/// Parses `fsync` / `normal` / `none` with the same names the config file uses.
pub fn parse_durability(s: &str) -> Result<Durability, String> {
    s.parse()
        .map_err(|e: gearbox_store::StoreError| e.to_string())
}

/// Parses `fail` / `requeue` with the same names the config file uses.
pub fn parse_timeout_action(s: &str) -> Result<TimeoutAction, String> {
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> = s.into_deserializer();
    TimeoutAction::deserialize(de).map_err(|_| format!("expected `fail` or `requeue`, not `{s}`"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn gearmand_style_command_line_parses() {
        let a = Args::try_parse_from([
            "gearboxd",
            "-p",
            "4731",
            "-L",
            "127.0.0.1",
            "-L",
            "::1",
            "-b",
            "64",
            "-j",
            "-1",
            "-w",
            "2",
            "--exceptions",
            "-t",
            "3",
            "-l",
            "stderr",
            "--verbose",
            "info",
            "-vv",
            "-P",
            "/run/g.pid",
            "-q",
            "builtin",
            "-d",
            "-R",
            "--hashtable-buckets",
            "991",
            "--keepalive",
            "--keepalive-idle",
            "-1",
            "-u",
            "gearman",
            "-f",
            "4096",
        ])
        .unwrap();
        assert_eq!(a.port, Some(4731));
        assert_eq!(a.listen, ["127.0.0.1", "::1"]);
        assert_eq!(a.job_retries, Some(-1));
        assert_eq!(a.verbose, Some(Verbosity::Info));
        assert_eq!(a.more_verbose, 2);
        assert_eq!(a.keepalive_idle, Some(-1));
        assert!(a.daemon && a.round_robin && a.keepalive && a.exceptions);
    }

    #[test]
    fn defaults_in_the_help_are_the_real_ones() {
        use crate::settings::{DEFAULT_BACKLOG, DEFAULT_PORT};
        let d = gearbox_server::Config::default();
        let cmd = Args::command();
        let help = |id: &str| {
            let arg = cmd.get_arguments().find(|a| a.get_id() == id).unwrap();
            arg.get_long_help().or(arg.get_help()).unwrap().to_string()
        };
        let expected = [
            ("port", DEFAULT_PORT.to_string()),
            ("backlog", DEFAULT_BACKLOG.to_string()),
            ("job_retries", d.job_retries.to_string()),
            ("worker_wakeup", d.worker_wakeup.to_string()),
            ("verbose", d.verbose.clone()),
            ("max_body", d.max_body.to_string()),
            ("max_admin_line", d.max_admin_line.to_string()),
            ("max_unsent", d.max_unsent.to_string()),
            ("send_stall_timeout_ms", d.send_stall_timeout_ms.to_string()),
            ("store_timeout_ms", d.store_timeout_ms.to_string()),
            ("max_connections", d.max_connections.to_string()),
            ("max_unique", d.max_unique.to_string()),
            ("max_function", d.max_function.to_string()),
            ("max_client_id", d.max_client_id.to_string()),
            ("queue_type", "libsqlite3".into()),
            ("data_dir", crate::store::DEFAULT_DATA_DIR.into()),
            (
                "libsqlite3_table",
                crate::store::DEFAULT_LIBSQLITE3_TABLE.into(),
            ),
            ("durability", Durability::default().to_string()),
            ("libpq_table", crate::store::DEFAULT_LIBPQ_TABLE.into()),
            ("redis_server", crate::store::DEFAULT_REDIS_SERVER.into()),
            ("redis_port", crate::store::DEFAULT_REDIS_PORT.to_string()),
            ("redis_prefix", crate::store::DEFAULT_REDIS_PREFIX.into()),
            ("mysql_host", crate::store::DEFAULT_MYSQL_HOST.into()),
            ("mysql_port", crate::store::DEFAULT_MYSQL_PORT.to_string()),
            ("mysql_table", crate::store::DEFAULT_MYSQL_TABLE.into()),
        ];
        for (id, value) in expected {
            let text = help(id);
            assert!(
                text.contains(&format!("(default: {value}")),
                "--{id}: {text}"
            );
        }
    }

    #[test]
    fn timeout_action_names_match_the_config_file() {
        assert_eq!(parse_timeout_action("fail"), Ok(TimeoutAction::Fail));
        assert_eq!(parse_timeout_action("requeue"), Ok(TimeoutAction::Requeue));
        assert!(parse_timeout_action("retry").is_err());
    }

    #[test]
    fn store_flags_parse() {
        let a = Args::try_parse_from([
            "gearboxd",
            "-q",
            "libsqlite3",
            "--data-dir",
            "/var/lib/gearboxd",
            "--libsqlite3-db",
            "/var/lib/gearman/queue.db",
            "--libsqlite3-table",
            "gearman_queue",
            "--store",
            "sqlite:///x.sqlite",
            "--durability",
            "normal",
        ])
        .unwrap();
        assert_eq!(a.queue_type.as_deref(), Some("libsqlite3"));
        assert_eq!(a.data_dir, Some(PathBuf::from("/var/lib/gearboxd")));
        assert_eq!(
            a.libsqlite3_db,
            Some(PathBuf::from("/var/lib/gearman/queue.db"))
        );
        assert_eq!(a.libsqlite3_table.as_deref(), Some("gearman_queue"));
        assert_eq!(a.store.as_deref(), Some("sqlite:///x.sqlite"));
        assert_eq!(a.durability, Some(Durability::Normal));
        assert!(Args::try_parse_from(["gearboxd", "--durability", "maybe"]).is_err());
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(Args::try_parse_from(["gearboxd", "-p", "http"]).is_err());
        assert!(Args::try_parse_from(["gearboxd", "--verbose", "LOUD"]).is_err());
        assert!(Args::try_parse_from(["gearboxd", "--no-such-flag"]).is_err());
    }
}

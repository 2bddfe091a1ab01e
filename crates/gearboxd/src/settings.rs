//! The effective settings: flags (and the environment, which clap reads for the flags that
//! have a variable) over the config file over defaults, checked once.

use std::path::PathBuf;

use gearbox_server::Config;

use crate::args::Args;
use crate::config_file::FileConfig;
use crate::error::CliError;
use crate::level::Verbosity;
use crate::store::{StoreKeys, StoreSettings};

/// Default port, as gearmand.
pub const DEFAULT_PORT: u16 = 4730;
/// Default listen backlog, as gearmand.
pub const DEFAULT_BACKLOG: u32 = 32;

/// TCP keepalive settings for accepted connections; `None` = the system's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle seconds before the first probe (TCP_KEEPIDLE).
    pub idle: Option<u32>,
    /// Seconds between probes (TCP_KEEPINTVL).
    pub interval: Option<u32>,
    /// Unanswered probes before the connection is dropped (TCP_KEEPCNT).
    pub count: Option<u32>,
}

/// Everything `gearboxd` needs to start, after precedence and checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The server library's settings (`verbose` holds the level name).
    pub server: Config,
    /// Log level.
    pub verbosity: Verbosity,
    /// `--listen` values as given; empty = every interface (IPv4, and IPv6 if available).
    pub listen: Vec<String>,
    /// Port for listen addresses that name none.
    pub port: u16,
    /// Listen backlog.
    pub backlog: u32,
    /// Runtime worker threads; 1 = a single-threaded runtime, 0 = one per core.
    pub threads: usize,
    /// Log file; `None` = standard error.
    pub log_file: Option<PathBuf>,
    /// Pid file to write at start and remove at exit.
    pub pid_file: Option<PathBuf>,
    /// RLIMIT_NOFILE to set (`--file-descriptors`).
    pub file_limit: Option<u64>,
    /// TCP keepalive on accepted connections (`--keepalive`).
    pub keepalive: Option<Keepalive>,
    /// Only check the settings, then exit (`--check-args`).
    pub check_only: bool,
    /// Where background jobs are kept (`-q`, `--store`, `--data-dir`, ...).
    pub store: StoreSettings,
    /// Warnings about accepted-but-ignored flags, to show once logging is up.
    pub warnings: Vec<String>,
}

impl Settings {
    /// Applies flags > environment > `--config` file > defaults.
    pub fn resolve(args: Args) -> Result<Settings, CliError> {
        let file = match &args.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        Settings::from_parts(args, file)
    }

    /// [`Settings::resolve`] with the file already parsed.
    pub fn from_parts(args: Args, file: FileConfig) -> Result<Settings, CliError> {
        let FileConfig {
            binary,
            server: mut cfg,
            has_verbose,
        } = file;
        let mut warnings = ignored_flags(&args);
        let keepalive = keepalive(&args, &mut warnings)?;

        let base = match args.verbose {
            Some(v) => v,
            None if has_verbose => cfg
                .verbose
                .parse()
                .map_err(|e| CliError::Invalid(format!("config file key `verbose`: {e}")))?,
            None => Verbosity::default(),
        };
        let verbosity = base.raised(args.more_verbose);
        cfg.verbose = verbosity.name().to_owned();
        apply_server_flags(&mut cfg, &args)?;
        let file_durability = binary
            .durability
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| CliError::Invalid(format!("config file key `durability`: {e}")))?;
        let (store, store_warnings) = StoreSettings::resolve(
            StoreKeys {
                queue_type: args.queue_type,
                store: args.store,
                data_dir: args.data_dir,
                libsqlite3_db: args.libsqlite3_db,
                libsqlite3_table: args.libsqlite3_table,
                libpq_conninfo: args.libpq_conninfo,
                libpq_table: args.libpq_table,
                redis_server: args.redis_server,
                redis_port: args.redis_port,
                redis_password: args.redis_password,
                redis_prefix: args.redis_prefix,
                mysql_host: args.mysql_host,
                mysql_port: args.mysql_port,
                mysql_user: args.mysql_user,
                mysql_password: args.mysql_password,
                mysql_db: args.mysql_db,
                mysql_table: args.mysql_table,
                durability: args.durability,
            },
            StoreKeys {
                queue_type: binary.queue_type,
                store: binary.store,
                data_dir: binary.data_dir,
                libsqlite3_db: binary.libsqlite3_db,
                libsqlite3_table: binary.libsqlite3_table,
                libpq_conninfo: binary.libpq_conninfo,
                libpq_table: binary.libpq_table,
                redis_server: binary.redis_server,
                redis_port: binary.redis_port,
                redis_password: binary.redis_password,
                redis_prefix: binary.redis_prefix,
                mysql_host: binary.mysql_host,
                mysql_port: binary.mysql_port,
                mysql_user: binary.mysql_user,
                mysql_password: binary.mysql_password,
                mysql_db: binary.mysql_db,
                mysql_table: binary.mysql_table,
                durability: file_durability,
            },
        )?;
        warnings.extend(store_warnings);

        Ok(Settings {
            server: cfg,
            verbosity,
            listen: if args.listen.is_empty() {
                binary.listen.unwrap_or_default()
            } else {
                args.listen
            },
            port: args.port.or(binary.port).unwrap_or(DEFAULT_PORT),
            backlog: args.backlog.or(binary.backlog).unwrap_or(DEFAULT_BACKLOG),
            threads: args.threads.or(binary.threads).unwrap_or(1),
            log_file: log_file(args.log_file.or(binary.log_file))?,
            pid_file: args.pid_file.or(binary.pid_file),
            file_limit: args.file_descriptors,
            keepalive,
            check_only: args.check_args,
            store,
            warnings,
        })
    }
}

/// Puts the flags that have a [`Config`] field over the file's values, then checks them.
fn apply_server_flags(cfg: &mut Config, args: &Args) -> Result<(), CliError> {
    fn set<T: Clone>(slot: &mut T, flag: &Option<T>) {
        if let Some(v) = flag {
            *slot = v.clone();
        }
    }
    set(&mut cfg.job_retries, &args.job_retries);
    set(&mut cfg.worker_wakeup, &args.worker_wakeup);
    cfg.exceptions |= args.exceptions;
    if args.job_handle_prefix.is_some() {
        cfg.job_handle_prefix.clone_from(&args.job_handle_prefix);
    }
    set(&mut cfg.timeout_action, &args.timeout_action);
    set(&mut cfg.max_body, &args.max_body);
    set(&mut cfg.max_admin_line, &args.max_admin_line);
    set(&mut cfg.max_unsent, &args.max_unsent);
    set(&mut cfg.send_stall_timeout_ms, &args.send_stall_timeout_ms);
    set(&mut cfg.store_timeout_ms, &args.store_timeout_ms);
    set(&mut cfg.max_connections, &args.max_connections);
    set(&mut cfg.max_unique, &args.max_unique);
    set(&mut cfg.max_function, &args.max_function);
    set(&mut cfg.max_client_id, &args.max_client_id);
    if cfg.job_retries < -1 {
        return Err(CliError::Invalid(format!(
            "job retries must be 0 or -1 (unlimited) or a number of attempts, not {}",
            cfg.job_retries
        )));
    }
    if cfg.job_handle_prefix.as_deref().is_some_and(str::is_empty) {
        return Err(CliError::Invalid(
            "the job handle prefix must not be empty".into(),
        ));
    }
    Ok(())
}

/// `stderr`, `none` and no value mean standard error.
fn log_file(value: Option<String>) -> Result<Option<PathBuf>, CliError> {
    match value.as_deref() {
        None | Some("stderr" | "none") => Ok(None),
        Some("") => Err(CliError::Invalid(
            "the log file name is empty (use `stderr` to log to standard error)".into(),
        )),
        Some(s) => Ok(Some(PathBuf::from(s))),
    }
}

/// Warnings for gearmand flags that gearboxd accepts and ignores.
fn ignored_flags(args: &Args) -> Vec<String> {
    let ignored = [
        (args.daemon, "--daemon is ignored: gearboxd runs in the foreground; let systemd or another supervisor manage it"),
        (args.round_robin, "--round-robin is ignored: workers get jobs by priority, round-robin between functions of equal priority"),
        (args.hashtable_buckets.is_some(), "--hashtable-buckets is ignored: gearboxd's tables grow as needed"),
        (args.coredump, "--coredump is ignored: core dumps follow the system's settings (ulimit -c)"),
        (args.user.is_some(), "--user is ignored: gearboxd does not switch users; start it as the user it should run as (systemd: User=)"),
        (args.syslog, "--syslog is ignored: logs go to standard error or to --log-file"),
    ];
    ignored
        .iter()
        .filter(|(given, _)| *given)
        .map(|(_, w)| (*w).to_owned())
        .collect()
}

fn keepalive(args: &Args, warnings: &mut Vec<String>) -> Result<Option<Keepalive>, CliError> {
    let params = [
        ("--keepalive-idle", args.keepalive_idle),
        ("--keepalive-interval", args.keepalive_interval),
        ("--keepalive-count", args.keepalive_count),
    ];
    if !args.keepalive {
        for (name, v) in params {
            if v.is_some() {
                warnings.push(format!("{name} has no effect without --keepalive"));
            }
        }
        return Ok(None);
    }
    let [idle, interval, count] = params.map(|(name, v)| match v {
        None | Some(-1) => Ok(None),
        Some(n) if n >= 1 => Ok(Some(n as u32)),
        Some(n) => Err(CliError::Invalid(format!(
            "{name} must be -1 (system default) or at least 1, not {n}"
        ))),
    });
    Ok(Some(Keepalive {
        idle: idle?,
        interval: interval?,
        count: count?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(argv: &[&str], file: &str) -> Result<Settings, CliError> {
        let args =
            Args::try_parse_from(std::iter::once("gearboxd").chain(argv.iter().copied())).unwrap();
        Settings::from_parts(args, FileConfig::parse(file).unwrap())
    }

    #[test]
    fn defaults_match_gearmand() {
        let s = settings(&[], "").unwrap();
        assert_eq!(s.port, 4730);
        assert_eq!(s.backlog, 32);
        assert_eq!(s.threads, 1);
        assert!(s.listen.is_empty());
        assert_eq!(s.verbosity, Verbosity::Error);
        assert_eq!(
            s.server,
            Config {
                verbose: "ERROR".into(),
                ..Config::default()
            }
        );
        assert_eq!((s.log_file, s.pid_file, s.keepalive), (None, None, None));
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let file = "port = 5000\nbacklog = 7\njob_handle_prefix = \"H:file\"\nmax_body = 1000\n\
                    listen = [\"10.0.0.1\"]\nlog_file = \"/var/log/file.log\"\n";
        let s = settings(
            &[
                "-p",
                "6000",
                "--job-handle-prefix",
                "H:flag",
                "-L",
                "127.0.0.1",
            ],
            file,
        )
        .unwrap();
        assert_eq!(s.port, 6000);
        assert_eq!(s.backlog, 7);
        assert_eq!(s.server.job_handle_prefix.as_deref(), Some("H:flag"));
        assert_eq!(s.server.max_body, 1000);
        assert_eq!(s.listen, ["127.0.0.1"]);
        assert_eq!(s.log_file, Some(PathBuf::from("/var/log/file.log")));
        let s = settings(&["-l", "stderr"], file).unwrap();
        assert_eq!(s.log_file, None);
    }

    #[test]
    fn verbose_levels_and_v_counts() {
        assert_eq!(settings(&["-vvv"], "").unwrap().server.verbose, "INFO");
        assert_eq!(
            settings(&["--verbose", "warning", "-v"], "")
                .unwrap()
                .verbosity,
            Verbosity::Notice
        );
        assert_eq!(
            settings(&["-v"], "verbose = \"INFO\"").unwrap().verbosity,
            Verbosity::Debug
        );
        assert_eq!(
            settings(&["--verbose", "ERROR"], "verbose = \"INFO\"")
                .unwrap()
                .verbosity,
            Verbosity::Error
        );
        let e = settings(&[], "verbose = \"LOUD\"").unwrap_err().to_string();
        assert!(e.contains("`verbose`") && e.contains("LOUD"), "{e}");
    }

    #[test]
    fn builtin_and_sqlite_queues_are_accepted() {
        assert_eq!(
            settings(&["-q", "BUILTIN"], "").unwrap().store,
            StoreSettings::Builtin
        );
        let s = settings(&["-q", "libsqlite3", "--durability", "none"], "").unwrap();
        let crate::store::StoreSettings::Sqlite(sqlite) = s.store else {
            panic!("not sqlite: {:?}", s.store)
        };
        assert_eq!(sqlite.durability, gearbox_store::Durability::None);
        let s = settings(&[], "queue_type = \"sqlite\"\ndata_dir = \"/d\"\n").unwrap();
        let crate::store::StoreSettings::Sqlite(sqlite) = s.store else {
            panic!("not sqlite: {:?}", s.store)
        };
        assert_eq!(sqlite.path, PathBuf::from("/d/gearbox.sqlite"));
        // No flag: SQLite in the data directory.
        let s = settings(&[], "").unwrap();
        let crate::store::StoreSettings::Sqlite(sqlite) = s.store else {
            panic!("not sqlite: {:?}", s.store)
        };
        assert_eq!(sqlite.path, PathBuf::from("gearbox-data/gearbox.sqlite"));
        // MySQL: the flags over the file's keys.
        let s = settings(
            &["-q", "mysql", "--mysql-port", "3307"],
            "mysql_host = \"db\"\nmysql_port = 3310\nmysql_user = \"g\"\nmysql_password = \
             \"pw\"\nmysql_db = \"q\"\nmysql_table = \"old\"\n",
        )
        .unwrap();
        let crate::store::StoreSettings::Mysql(m) = s.store else {
            panic!("not mysql: {:?}", s.store)
        };
        assert_eq!(
            (
                m.options.host.as_str(),
                m.options.port,
                m.gearmand_table.as_str()
            ),
            ("db", 3307, "old")
        );
        assert_eq!(m.options.password.as_deref(), Some("pw"));
        // PostgreSQL and Redis: the flags over the file's keys.
        let s = settings(
            &["-q", "libpq", "--durability", "normal"],
            "libpq_conninfo = \"host=/run/postgresql\"\nlibpq_table = \"gq\"\n",
        )
        .unwrap();
        let crate::store::StoreSettings::Postgres(pg) = s.store else {
            panic!("not postgres: {:?}", s.store)
        };
        assert_eq!(pg.conninfo, "host=/run/postgresql");
        assert_eq!(pg.gearmand_table, "gq");
        assert_eq!(pg.durability, gearbox_store::Durability::Normal);
        let s = settings(
            &["--redis-port", "7000"],
            "queue_type = \"redis\"\nredis_server = \"cache\"\nredis_prefix = \"q:\"\n",
        )
        .unwrap();
        let crate::store::StoreSettings::Redis(r) = s.store else {
            panic!("not redis: {:?}", s.store)
        };
        // Each Redis key on its own: the flag's port, the file's server.
        assert_eq!(
            (r.host.as_str(), r.port, r.prefix.as_str()),
            ("cache", 7000, "q:")
        );
        // MySQL needs a database.
        assert!(settings(&[], "queue_type = \"mysql\"").is_err());
        let e = settings(&["-q", "sqlite"], "durability = \"sometimes\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`durability`") && e.contains("sometimes"), "{e}");
        let s = settings(&["-q", "builtin", "--durability", "normal"], "").unwrap();
        assert_eq!(s.store, StoreSettings::Builtin);
        assert!(
            s.warnings[0].contains("--durability has no effect"),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn invalid_values_are_errors() {
        assert!(settings(&["-j", "-2"], "").is_err());
        assert!(settings(&["--job-handle-prefix", ""], "").is_err());
        assert!(settings(&["-l", ""], "").is_err());
        assert!(settings(&["--keepalive", "--keepalive-count", "0"], "").is_err());
    }

    #[test]
    fn gearmand_only_flags_warn() {
        let s = settings(
            &[
                "-d",
                "-R",
                "--hashtable-buckets",
                "991",
                "--coredump",
                "-u",
                "x",
                "--syslog",
                "--keepalive-idle",
                "5",
            ],
            "",
        )
        .unwrap();
        assert_eq!(s.warnings.len(), 7, "{:?}", s.warnings);
        let s = settings(
            &[
                "--keepalive",
                "--keepalive-idle",
                "30",
                "--keepalive-count",
                "-1",
            ],
            "",
        )
        .unwrap();
        assert_eq!(
            s.keepalive,
            Some(Keepalive {
                idle: Some(30),
                interval: None,
                count: None
            })
        );
    }
}

//! The effective settings: flags (and the environment, which clap reads for the flags that
//! have a variable) over the config file over defaults, checked once.
//!
//! The layering itself is generic ([`crate::layers`]); the store's own rules are in
//! [`StoreSettings::resolve`]; the server library's [`Config`] is read from the merged
//! [`ServerSection`](crate::options::ServerSection) by serde. What is left here is the
//! defaults and checks of gearboxd's own settings.

use std::path::PathBuf;

use gearbox_server::Config;

use crate::args::Args;
use crate::cluster::ClusterSettings;
use crate::compat;
use crate::config_file;
use crate::error::CliError;
use crate::gearmand_conf;
use crate::http::HttpSettings;
use crate::layers;
use crate::level::Verbosity;
use crate::log_format::{self, LogFormat};
use crate::options::Options;
use crate::store::StoreSettings;
use crate::tls::{TlsPorts, TlsSettings};

/// Default port, as gearmand.
pub const DEFAULT_PORT: u16 = 4730;
/// Default listen backlog, as gearmand.
pub const DEFAULT_BACKLOG: u32 = 32;
/// Default runtime worker threads: a single-threaded runtime.
pub const DEFAULT_THREADS: usize = 1;

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
    /// Log line format (`--log-format`).
    pub log_format: LogFormat,
    /// `RUST_LOG`-style directives over the level (`--log-filter`), checked.
    pub log_filter: Option<String>,
    /// Pid file to write at start and remove at exit.
    pub pid_file: Option<PathBuf>,
    /// RLIMIT_NOFILE to set (`--file-descriptors`).
    pub file_limit: Option<u64>,
    /// TCP keepalive on accepted connections (`--keepalive`).
    pub keepalive: Option<Keepalive>,
    /// Only check the settings, then exit (`--check-args`).
    pub check_only: bool,
    /// Detach into the background (`--daemon`).
    pub daemon: bool,
    /// The user to switch to once the sockets are bound (`--user`).
    pub user: Option<String>,
    /// Also log to syslog (`--syslog`).
    pub syslog: bool,
    /// Where background jobs are kept (`-q`, `--store`, `--data-dir`, ...).
    pub store: StoreSettings,
    /// The HTTP listener (`-r http`), if on.
    pub http: Option<HttpSettings>,
    /// TLS on the Gearman port (`--ssl`), if on.
    pub tls: Option<TlsSettings>,
    /// Cluster mode (`--cluster`), if on.
    pub cluster: Option<ClusterSettings>,
    /// Warnings about accepted-but-ignored flags, to show once logging is up.
    pub warnings: Vec<String>,
}

impl Settings {
    /// Applies flags > environment > gearmand's `--config-file` > the `--config` file >
    /// defaults.
    pub fn resolve(args: Args) -> Result<Settings, CliError> {
        let file = match &args.config {
            Some(path) => config_file::load(path)?,
            None => Options::default(),
        };
        let (args, file, conf_warnings) = gearmand_conf::apply(args, file)?;
        let mut settings = Settings::from_parts(args, file)?;
        settings.warnings.extend(conf_warnings);
        Ok(settings)
    }

    /// [`Settings::resolve`] with the file already parsed.
    pub fn from_parts(args: Args, file: Options) -> Result<Settings, CliError> {
        let mut warnings = compat::check(&args)?;
        let keepalive = keepalive(&args, &mut warnings)?;
        let (store, store_warnings) =
            StoreSettings::resolve_as(&args.options.store, &file.store, args.user.as_deref())?;
        warnings.extend(store_warnings);
        let Options {
            daemon,
            server,
            http,
            tls,
            cluster,
            ..
        } = layers::overlay(&args.options, &file)?;
        let verbosity = daemon.verbose.unwrap_or_default().raised(args.more_verbose);
        // Checked here so that --check-args reports a bad filter.
        log_format::filter(verbosity, daemon.log_filter.as_deref())?;
        let server = server.config(verbosity)?;
        let mut http = http.resolve(&daemon.listen, server.max_body, &mut warnings)?;
        let tls = tls.resolve(&daemon.listen, &mut warnings)?;
        let cluster = cluster.resolve(&store, &mut warnings)?;
        if server.cluster_poll_ms == 0 {
            return Err(CliError::Invalid(
                "--cluster-poll-ms must be at least 1".into(),
            ));
        }
        if let (Some(_), Some(TlsPorts::Main)) = (&http, tls.as_ref().map(|t| &t.ports)) {
            // The HTTP gateway submits through a plain Gearman connection to this server.
            return Err(CliError::Invalid(
                "-r http needs a plain Gearman port to submit through, and --ssl makes every \
                 Gearman port TLS: add --ssl-port PORT to serve TLS on a port of its own"
                    .into(),
            ));
        }
        if let Some(h) = &mut http {
            h.access = server.access.clone();
        }
        Ok(Settings {
            server,
            http,
            tls,
            cluster,
            verbosity,
            listen: daemon.listen,
            port: daemon.port.unwrap_or(DEFAULT_PORT),
            backlog: daemon.backlog.unwrap_or(DEFAULT_BACKLOG),
            threads: daemon.threads.unwrap_or(DEFAULT_THREADS),
            log_file: log_file(daemon.log_file)?,
            log_format: daemon.log_format.unwrap_or_default(),
            log_filter: daemon.log_filter,
            pid_file: daemon.pid_file,
            file_limit: args.file_descriptors,
            keepalive,
            check_only: args.check_args,
            daemon: args.daemon,
            user: args.user.clone(),
            syslog: args.syslog,
            store,
            warnings,
        })
    }
}

impl Settings {
    /// Makes the relative paths (log file, pid file, SQLite queue) absolute against `cwd`,
    /// before `--daemon` changes to `/`.
    pub fn absolutize(&mut self, cwd: &std::path::Path) {
        for path in [&mut self.log_file, &mut self.pid_file]
            .into_iter()
            .flatten()
        {
            *path = cwd.join(&*path);
        }
        self.store.absolutize(cwd);
        if let Some(tls) = &mut self.tls {
            tls.absolutize(cwd);
        }
    }
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
    use clap::{CommandFactory, Parser};

    fn settings(argv: &[&str], file: &str) -> Result<Settings, CliError> {
        let args =
            Args::try_parse_from(std::iter::once("gearboxd").chain(argv.iter().copied())).unwrap();
        let file = config_file::parse(file).map_err(|message| CliError::ConfigParse {
            path: "test.toml".into(),
            message,
        })?;
        Settings::from_parts(args, file)
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

    /// The field names of [`Config`], from its refusal of an unknown key.
    fn config_fields() -> Vec<String> {
        let unknown = toml::Table::from_iter([("not_a_field".to_owned(), 0.into())]);
        let e = layers::from_table::<Config>(unknown).unwrap_err();
        let listed = e.split("expected one of").nth(1).expect("serde lists them");
        listed
            .split(',')
            .map(|k| k.trim().trim_matches('`').to_owned())
            .collect()
    }

    #[test]
    fn every_server_config_field_has_a_flag_and_a_file_key() {
        let default = settings(&[], "").unwrap().server;
        let cmd = Args::command();
        let fields = config_fields();
        assert!(fields.len() >= 15, "{fields:?}");
        // File-only keys (the access rules) have their own test in `config_file`.
        let with_flags = fields
            .into_iter()
            .filter(|f| !Options::FILE_ONLY_KEYS.contains(&f.as_str()));
        for field in with_flags {
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_id() == field.as_str())
                .unwrap_or_else(|| panic!("no flag sets Config::{field}"));
            let flag = format!("--{}", arg.get_long().expect("a long flag"));
            // A value that parses and is not the default (none for a switch).
            let candidates: &[Option<&str>] = if arg.get_action().takes_values() {
                &[
                    Some("requeue"),
                    Some("milliseconds"),
                    Some("INFO"),
                    Some("7"),
                ]
            } else {
                &[None]
            };
            let (args, from_flag) = candidates
                .iter()
                .find_map(|value| {
                    let argv = ["gearboxd", flag.as_str()].into_iter().chain(*value);
                    let args = Args::try_parse_from(argv).ok()?;
                    let s = Settings::from_parts(args.clone(), Options::default()).ok()?;
                    (s.server != default).then_some((args, s.server))
                })
                .unwrap_or_else(|| panic!("{flag} does not reach Config::{field}"));
            // The same value as a config-file key of the same name.
            let text = toml::to_string(&layers::given(&args.options).unwrap()).unwrap();
            assert!(text.starts_with(&format!("{field} = ")), "{text}");
            assert_eq!(settings(&[], &text).unwrap().server, from_flag, "{text}");
        }
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
        use crate::store::SqliteSettings;
        use gearbox_store::Durability;
        let store = |argv: &[&str], file: &str| settings(argv, file).unwrap().store;
        let sqlite = |dir: &str, durability| {
            StoreSettings::Sqlite(SqliteSettings {
                path: PathBuf::from(dir).join("gearbox.sqlite"),
                data_dir: Some(dir.into()),
                gearmand_table: "gearman_queue".into(),
                gearmand_table_given: false,
                durability,
            })
        };
        assert_eq!(store(&["-q", "BUILTIN"], ""), StoreSettings::Builtin);
        assert_eq!(
            store(&["-q", "libsqlite3", "--durability", "none"], ""),
            sqlite("gearbox-data", Durability::None)
        );
        assert_eq!(
            store(&[], "queue_type = \"sqlite\"\ndata_dir = \"/d\"\n"),
            sqlite("/d", Durability::Fsync)
        );
        // No flag: SQLite in the data directory.
        assert_eq!(store(&[], ""), sqlite("gearbox-data", Durability::Fsync));
        // MySQL: the flag's port over the file's; the file's other keys.
        let file = "mysql_host = \"db\"\nmysql_port = 3310\nmysql_user = \"g\"\n\
                    mysql_password = \"pw\"\nmysql_db = \"q\"\nmysql_table = \"old\"\n";
        let s = store(&["-q", "mysql", "--mysql-port", "3307"], file);
        assert!(
            matches!(&s, StoreSettings::Mysql(m) if m.host == "db" && m.port == 3307
                && m.password.as_deref() == Some("pw") && m.gearmand_table == "old"),
            "{s:?}"
        );
        // PostgreSQL: the flags choose it and its durability, the file names the database.
        let file = "libpq_conninfo = \"host=/run/postgresql\"\nlibpq_table = \"gq\"\n";
        let s = store(&["-q", "libpq", "--durability", "normal"], file);
        assert!(
            matches!(&s, StoreSettings::Postgres(p) if p.conninfo == "host=/run/postgresql"
                && p.gearmand_table == "gq" && p.durability == Durability::Normal),
            "{s:?}"
        );
        // Each Redis key on its own: the flag's port, the file's server.
        let file = "queue_type = \"redis\"\nredis_server = \"cache\"\nredis_prefix = \"q:\"\n";
        let s = store(&["--redis-port", "7000"], file);
        assert!(
            matches!(&s, StoreSettings::Redis(r) if r.host == "cache" && r.port == 7000
                && r.prefix == "q:"),
            "{s:?}"
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
        // -d, -u and --syslog have their effect: no warning.
        assert_eq!(s.warnings.len(), 4, "{:?}", s.warnings);
        assert!(s.daemon && s.syslog && s.user.as_deref() == Some("x"));
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

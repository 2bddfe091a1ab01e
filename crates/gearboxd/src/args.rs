//! Command-line flags, named as gearmand names them.
//!
//! Every setting the config file can also give is a field of [`Options`], flattened in here;
//! the fields of [`Args`] itself exist on the command line (and in gearmand's config file)
//! only: the config files' paths, `--check-args`, `-v`, gearmand's process flags, and the
//! flags accepted and ignored. (gearmand's TLS flags are settings: [`crate::tls::TlsSection`].)

use std::path::PathBuf;

use clap::{ArgAction, Parser};

use crate::options::Options;

const COMPAT: &str = "Accepted for gearmand compatibility";
const PROCESS: &str = "Process";

/// gearboxd: a Gearman job server, a drop-in replacement for gearmand.
///
/// Settings come from flags, then the environment, then gearmand's --config-file, then the
/// `--config` file, then defaults. Once every socket is bound, gearboxd prints one line per
/// listening address on standard error, `gearboxd listening on ADDR`, whatever the log
/// settings (and `gearboxd http listening on ADDR` for `-r http`). Under systemd
/// (NOTIFY_SOCKET), it sends READY=1 once serving.
/// Signals: SIGTERM/SIGINT stop now, SIGUSR1 stops once queued and running jobs are done,
/// SIGHUP reopens the log file and re-reads the TLS certificate, key and CA; a second
/// SIGTERM/SIGINT during a stop ends it at once.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "gearboxd", version, max_term_width = 100)]
pub struct Args {
    /// TOML configuration file (keys: see gearboxd.example.toml).
    #[arg(long, value_name = "FILE", env = "GEARBOXD_CONFIG")]
    pub config: Option<PathBuf>,

    /// The settings the config file can also give.
    #[command(flatten)]
    pub options: Options,

    /// One level more verbose than --verbose (or the file, or ERROR); repeatable.
    #[arg(short = 'v', action = ArgAction::Count)]
    pub more_verbose: u8,

    /// Check the flags and the config file, then exit without serving.
    #[arg(long)]
    pub check_args: bool,

    /// Raise the open-file limit (RLIMIT_NOFILE) to N.
    #[arg(short = 'f', long, value_name = "N", help_heading = PROCESS)]
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

    /// Detach and run in the background: the starting process exits 0 once the daemon
    /// serves (sockets bound, store replayed, pid file written), or 1 with its error.
    #[arg(short = 'd', long, help_heading = PROCESS)]
    pub daemon: bool,

    /// Switch to USER (its groups too) once the sockets are bound; needs root. The log file,
    /// the pid file and the store are then opened as USER.
    #[arg(short = 'u', long, value_name = "USER", help_heading = PROCESS)]
    pub user: Option<String>,

    /// Also log to syslog (facility user, ident gearboxd), through /dev/log.
    #[arg(long, help_heading = PROCESS)]
    pub syslog: bool,

    /// gearmand's config file: options as on gearmand's command line (`--port=4730`,
    /// `-L 127.0.0.1`), separated by spaces or newlines, `#` to the end of a line a comment.
    /// The command line wins over it, and it over --config. A missing default file is
    /// skipped (default: /etc/gearmand.conf).
    #[arg(long, value_name = "FILE", help_heading = PROCESS)]
    pub config_file: Option<PathBuf>,

    /// Ignored: workers get jobs by priority, round-robin between functions.
    #[arg(short = 'R', long, help_heading = COMPAT)]
    pub round_robin: bool,

    /// Ignored: gearboxd's tables grow as needed.
    #[arg(long, value_name = "N", help_heading = COMPAT)]
    pub hashtable_buckets: Option<u64>,

    /// Ignored: core dumps follow the system's settings (ulimit -c).
    #[arg(long, help_heading = COMPAT)]
    pub coredump: bool,

    /// Ignored: gearboxd stores every background job when it is submitted, so a stop loses
    /// none (gearmand's libsqlite3 option to store them only at shutdown).
    #[arg(long, help_heading = COMPAT)]
    pub store_queue_on_shutdown: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level::Verbosity;
    use crate::store::QueueType;
    use clap::CommandFactory;
    use gearbox_server::core::{TimeoutAction, TimeoutUnit};
    use gearbox_store::Durability;

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
        let o = &a.options;
        assert_eq!(o.daemon.port, Some(4731));
        assert_eq!(o.daemon.listen, ["127.0.0.1", "::1"]);
        assert_eq!(o.server.job_retries, Some(-1));
        assert_eq!(o.daemon.verbose, Some(Verbosity::Info));
        assert_eq!(o.store.queue_type, Some(QueueType::Builtin));
        assert_eq!(a.more_verbose, 2);
        assert_eq!(a.keepalive_idle, Some(-1));
        assert!(a.daemon && a.round_robin && a.keepalive && o.server.exceptions);
    }

    #[test]
    fn defaults_in_the_help_are_the_real_ones() {
        use crate::settings::{DEFAULT_BACKLOG, DEFAULT_PORT, DEFAULT_THREADS};
        use crate::store::*;
        // gearboxd's own defaults, written as a config file (whose parser checks the keys and
        // types), and the server library's, every field of Config::default() by serde.
        let own = format!(
            "port = {DEFAULT_PORT}\nbacklog = {DEFAULT_BACKLOG}\nthreads = {DEFAULT_THREADS}\n\
             queue_type = \"{DEFAULT_QUEUE_TYPE}\"\ndata_dir = \"{DEFAULT_DATA_DIR}\"\n\
             libsqlite3_table = \"{DEFAULT_LIBSQLITE3_TABLE}\"\ndurability = \"{}\"\n\
             libpq_table = \"{DEFAULT_LIBPQ_TABLE}\"\nredis_server = \"{DEFAULT_REDIS_SERVER}\"\n\
             redis_port = {DEFAULT_REDIS_PORT}\nredis_prefix = \"{DEFAULT_REDIS_PREFIX}\"\n\
             redis_gearmand_prefix = \"{DEFAULT_REDIS_GEARMAND_PREFIX}\"\n\
             mysql_host = \"{DEFAULT_MYSQL_HOST}\"\nmysql_port = {DEFAULT_MYSQL_PORT}\n\
             mysql_table = \"{DEFAULT_MYSQL_TABLE}\"\n\
             libmemcached_servers = \"{DEFAULT_LIBMEMCACHED_SERVERS}\"\n\
             libmemcached_prefix = \"{DEFAULT_LIBMEMCACHED_PREFIX}\"\n\
             log_format = \"{}\"\n",
            Durability::default(),
            crate::log_format::LogFormat::default()
        );
        let mut defaults = crate::layers::given(&crate::config_file::parse(&own).unwrap()).unwrap();
        let server = toml::Table::try_from(gearbox_server::Config::default()).unwrap();
        // A switch (`exceptions`) is off unless given: its help names no default.
        defaults.extend(server.into_iter().filter(|(_, v)| !v.is_bool()));
        assert!(defaults.len() >= 27, "{defaults:?}");
        let cmd = Args::command();
        for (key, value) in defaults {
            let arg = cmd.get_arguments().find(|a| a.get_id() == key.as_str());
            let text = arg
                .and_then(|a| a.get_long_help().or(a.get_help()))
                .map(|h| h.to_string())
                .unwrap_or_else(|| panic!("no help for `{key}`"));
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            assert!(
                text.contains(&format!("(default: {value}")),
                "--{key}: {text}"
            );
        }
    }

    #[test]
    fn timeout_action_names_match_the_config_file() {
        let action = |name: &str| {
            Args::try_parse_from(["gearboxd", "--timeout-action", name])
                .map(|a| a.options.server.timeout_action)
        };
        assert_eq!(action("fail").unwrap(), Some(TimeoutAction::Fail));
        assert_eq!(action("requeue").unwrap(), Some(TimeoutAction::Requeue));
        assert!(action("retry").is_err());
        let file = crate::config_file::parse("timeout_action = \"requeue\"").unwrap();
        assert_eq!(file.server.timeout_action, Some(TimeoutAction::Requeue));
        let unit = |name: &str| {
            Args::try_parse_from(["gearboxd", "--can-do-timeout-unit", name])
                .map(|a| a.options.server.can_do_timeout_unit)
        };
        assert_eq!(
            unit("milliseconds").unwrap(),
            Some(TimeoutUnit::Milliseconds)
        );
        assert_eq!(unit("seconds").unwrap(), Some(TimeoutUnit::Seconds));
        assert!(unit("ms").is_err());
        let file = crate::config_file::parse("can_do_timeout_unit = \"milliseconds\"").unwrap();
        assert_eq!(
            file.server.can_do_timeout_unit,
            Some(TimeoutUnit::Milliseconds)
        );
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
        let s = a.options.store;
        assert_eq!(s.queue_type, Some(QueueType::Libsqlite3));
        assert_eq!(s.sqlite.data_dir, Some(PathBuf::from("/var/lib/gearboxd")));
        assert_eq!(
            s.sqlite.libsqlite3_db,
            Some(PathBuf::from("/var/lib/gearman/queue.db"))
        );
        assert_eq!(s.sqlite.libsqlite3_table.as_deref(), Some("gearman_queue"));
        assert_eq!(s.store.as_deref(), Some("sqlite:///x.sqlite"));
        assert_eq!(s.durability, Some(Durability::Normal));
        assert!(Args::try_parse_from(["gearboxd", "--durability", "maybe"]).is_err());
        // Unknown names are flag errors; gearmand's other queues parse, to be refused with a
        // reason when the store is chosen.
        assert!(Args::try_parse_from(["gearboxd", "-q", "disk"]).is_err());
        let a = Args::try_parse_from(["gearboxd", "-q", "libmemcached"]).unwrap();
        assert_eq!(a.options.store.queue_type, Some(QueueType::Libmemcached));
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(Args::try_parse_from(["gearboxd", "-p", "http"]).is_err());
        assert!(Args::try_parse_from(["gearboxd", "--verbose", "LOUD"]).is_err());
        assert!(Args::try_parse_from(["gearboxd", "--no-such-flag"]).is_err());
    }
}

//! [`Options`]: every setting that both a flag (or an environment variable) and a config-file
//! key can give, defined once.
//!
//! Each setting is one field: its doc comment is the `--help` text, its name is the config-file
//! key and (with `-` for `_`) the long flag, and its type parses both. Every field is an
//! `Option` (a list, or a switch) so that "not given" stays visible: [`crate::layers`] lays the
//! command line over the file over the defaults, and [`crate::settings`] checks the result once.
//! The defaults shown in `--help` are the ones applied there (a test checks them).

use std::path::PathBuf;

use gearbox_server::access::AccessPolicy;
use gearbox_server::core::{TimeoutAction, TimeoutUnit};
use gearbox_server::Config;
use serde::{Deserialize, Serialize};

use crate::cluster::ClusterSection;
use crate::error::CliError;
use crate::http::HttpSection;
use crate::layers;
use crate::level::Verbosity;
use crate::log_format::LogFormat;
use crate::store::StoreSection;
use crate::tls::TlsSection;

/// The `--help` heading of the size and time limits.
const LIMITS: &str = "Limits";

/// Every setting a layer (the command line with the environment, or the config file) can give.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// Where to listen, the process, logging.
    #[command(flatten)]
    #[serde(flatten)]
    pub daemon: DaemonSection,
    /// Where background jobs are kept.
    #[command(flatten)]
    #[serde(flatten)]
    pub store: StoreSection,
    /// Jobs and limits: the server library's [`Config`].
    #[command(flatten)]
    #[serde(flatten)]
    pub server: ServerSection,
    /// The HTTP listener (`-r http`).
    #[command(flatten)]
    #[serde(flatten)]
    pub http: HttpSection,
    /// TLS on the Gearman port (`--ssl`).
    #[command(flatten)]
    #[serde(flatten)]
    pub tls: TlsSection,
    /// Cluster mode (`--cluster`).
    #[command(flatten)]
    #[serde(flatten)]
    pub cluster: ClusterSection,
}

impl Options {
    /// Every key that is also a flag, in `--help` order: the config file accepts these and
    /// the [`Options::FILE_ONLY_KEYS`], no others.
    pub fn keys() -> Vec<String> {
        layers::keys::<Options>()
    }

    /// Keys of the config file that have no flag: `access` (the `[[access]]` rules).
    pub const FILE_ONLY_KEYS: [&'static str; 1] = ["access"];
}

/// gearboxd's own settings: sockets, threads, logging, pid file.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct DaemonSection {
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
    #[arg(long = "verbose", value_name = "LEVEL")]
    pub verbose: Option<Verbosity>,

    /// Log line format: `text`, or `json` (one object per line with timestamp, level,
    /// target, message and every structured field) (default: text).
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// `RUST_LOG`-style directives laid over the --verbose level, e.g.
    /// `gearbox_server=debug` or `info,gearbox_store=debug`; a bare level replaces --verbose.
    #[arg(long, value_name = "FILTER", env = "GEARBOXD_LOG")]
    pub log_filter: Option<String>,

    /// Write the process id to FILE at start; removed at exit.
    #[arg(short = 'P', long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
}

/// The job server library's settings: every key is the [`Config`] field of the same name
/// (`verbose`, the other one, comes from [`DaemonSection::verbose`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSection {
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
    #[arg(long, value_name = "ACTION")]
    pub timeout_action: Option<TimeoutAction>,

    /// Unit of a CAN_DO_TIMEOUT sent as a decimal number: `seconds`, as Perl's, PHP's and
    /// Python's worker libraries document it, or `milliseconds`, as gearmand 1.1.20 reads it
    /// (default: seconds). The Go library's 4-byte binary form is seconds either way.
    #[arg(long, value_name = "UNIT")]
    pub can_do_timeout_unit: Option<TimeoutUnit>,

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

    /// A job running longer than SECS logs one warning with its handle, function and worker;
    /// 0 = never (default: 300).
    #[arg(long, value_name = "SECS")]
    pub slow_job_warning: Option<u64>,

    /// A worker that took a job and sent no WORK_STATUS, WORK_DATA or WORK_WARNING for it
    /// for SECS logs one warning; 0 = never (default: 600).
    #[arg(long, value_name = "SECS")]
    pub stuck_worker_warning: Option<u64>,

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

    /// With --cluster: how often this server looks for free jobs in the shared queue when
    /// no other server woke it, milliseconds (default: 1000). Servers wake each other when
    /// they free jobs; this bounds the delay when a wake-up is lost.
    #[arg(long, value_name = "MS", help_heading = "Cluster (docs/cluster.md)")]
    pub cluster_poll_ms: Option<u64>,

    /// The `[[access]]` rules: config file only (no flag), checked when the file is read.
    #[arg(skip)]
    #[serde(skip_serializing_if = "AccessPolicy::is_empty")]
    pub access: AccessPolicy,
}

impl ServerSection {
    /// The server library's settings: the keys given here and `verbosity`, through serde (each
    /// key is read into the [`Config`] field of its name, which rejects any other), with
    /// [`Config::default`] for the rest; then checked.
    pub fn config(&self, verbosity: Verbosity) -> Result<Config, CliError> {
        let mut table = layers::given(self)?;
        table.insert("verbose".into(), verbosity.name().into());
        let config: Config = layers::from_table(table).map_err(CliError::Invalid)?;
        if config.job_retries < -1 {
            return Err(CliError::Invalid(format!(
                "job retries must be 0 or -1 (unlimited) or a number of attempts, not {}",
                config.job_retries
            )));
        }
        if config
            .job_handle_prefix
            .as_deref()
            .is_some_and(str::is_empty)
        {
            return Err(CliError::Invalid(
                "the job handle prefix must not be empty".into(),
            ));
        }
        Ok(config)
    }
}

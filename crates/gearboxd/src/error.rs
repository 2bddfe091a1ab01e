//! Errors of the binary's set-up layer: configuration, sockets, files.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What can stop `gearboxd` before (or instead of) serving.
///
/// Messages are short and lowercase; the underlying cause, if any, is the error's source, so
/// `{:#}` (as `anyhow` prints it) reads "cannot read config file /x: No such file ...".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The configuration file could not be read.
    #[error("cannot read config file {}", path.display())]
    ConfigRead {
        /// The file named by `--config`.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML or has an unknown key or a wrong type.
    #[error("invalid config file {}: {message}", path.display())]
    ConfigParse {
        /// The file named by `--config`.
        path: PathBuf,
        /// What is wrong, as the TOML parser or the settings check says it.
        message: String,
    },
    /// A setting has a value gearboxd cannot use (from a flag, the environment or the file).
    #[error("{0}")]
    Invalid(String),
    /// A `--listen` host name could not be resolved.
    #[error("cannot resolve listen address {host}")]
    Resolve {
        /// The name given.
        host: String,
        /// The resolver's answer.
        #[source]
        source: std::io::Error,
    },
    /// A listening socket could not be set up.
    #[error("cannot listen on {addr} (is another server running there?)")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's answer.
        #[source]
        source: std::io::Error,
    },
    /// The log file could not be opened.
    #[error("cannot open log file {}", path.display())]
    LogFile {
        /// The file named by `--log-file`.
        path: PathBuf,
        /// The system's answer.
        #[source]
        source: std::io::Error,
    },
    /// The data directory of the SQLite queue could not be created.
    #[error("cannot create data directory {}", path.display())]
    DataDir {
        /// The directory named by `--data-dir` (or the default).
        path: PathBuf,
        /// The system's answer.
        #[source]
        source: std::io::Error,
    },
    /// Another process (another gearboxd) holds the store's lock file.
    #[error("job store {} is in use by another gearboxd{}: run one gearboxd per store, or give this one another --data-dir", path.display(), pid.as_deref().map(|p| format!(" (pid {p})")).unwrap_or_default())]
    StoreInUse {
        /// The database file.
        path: PathBuf,
        /// The pid the lock file names, if it names one.
        pid: Option<String>,
    },
    /// The store's lock file could not be created or locked.
    #[error("cannot lock job store: cannot use lock file {}", path.display())]
    StoreLock {
        /// The lock file, next to the database.
        path: PathBuf,
        /// The system's answer.
        #[source]
        source: std::io::Error,
    },
    /// The pid file could not be written.
    #[error("cannot write pid file {}", path.display())]
    PidFile {
        /// The file named by `--pid-file`.
        path: PathBuf,
        /// The system's answer.
        #[source]
        source: std::io::Error,
    },
    /// gearmand's config file (`--config-file`) could not be read.
    #[error("cannot read gearmand config file {}", path.display())]
    GearmandConfRead {
        /// The file named by `--config-file`.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate, key or CA file is missing, unreadable or invalid.
    #[error("{0}")]
    Tls(#[source] gearbox_server::tls::TlsError),
    /// A gearmand flag whose feature gearboxd does not have.
    #[error("{0}")]
    Refused(String),
    /// `--user`: the user is unknown, or switching to it is not allowed or failed.
    #[error("{0}")]
    User(String),
    /// A step of detaching (`--daemon`) or of talking to the service manager failed.
    #[error("cannot {what}")]
    Process {
        /// The step, as a verb phrase ("fork", "create the ready pipe", ...).
        what: &'static str,
        /// The system's answer.
        #[source]
        source: std::io::Error,
    },
    /// `--syslog`: the syslog socket could not be reached.
    #[error("cannot reach syslog at {path}: {message}")]
    Syslog {
        /// The socket tried.
        path: String,
        /// What went wrong.
        message: String,
    },
}

//! The one error type of the client, worker and admin APIs.

use bytes::Bytes;

/// What went wrong talking to Gearman servers. Messages say what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No server was configured.
    #[error(
        "no Gearman server configured: pass a list like \"host:4730,host2\" or set GEARMAN_SERVERS"
    )]
    NoServers,
    /// None of the servers could be reached.
    #[error("no server reachable at {servers}: is gearboxd (or gearmand) running there? last error: {source}")]
    Unreachable {
        /// The servers tried, comma-separated.
        servers: String,
        /// The last connection error.
        #[source]
        source: std::io::Error,
    },
    /// The connection to a server failed or closed while a request was in flight.
    #[error("lost the connection to {server}: {reason}")]
    Disconnected {
        /// The server.
        server: String,
        /// What happened.
        reason: String,
    },
    /// The server answered with bytes that are not the Gearman protocol.
    #[error("protocol error from {server}: {source}")]
    Protocol {
        /// The server.
        server: String,
        /// The decoding problem.
        #[source]
        source: gearbox_proto::ProtoError,
    },
    /// The server's job queue for this function is full (ERROR QUEUE_ERROR).
    #[error(
        "the server's queue for this function is full (maxqueue); retry later or raise the limit"
    )]
    QueueFull,
    /// The server refused an argument as too large (ERROR ARGUMENT_TOO_LARGE).
    #[error("the server refused an argument as too large: {0}")]
    ArgumentTooLarge(String),
    /// The server's access rules refuse the request (ERROR PERMISSION_DENIED): a submit to a
    /// function this client may not submit to, or a worker's CAN_DO for a function it may not
    /// register for. Retrying does not help.
    #[error("permission denied by the server: {0}; the server's [[access]] rules must grant it")]
    PermissionDenied(String),
    /// Any other ERROR packet from the server.
    #[error("server error {code}: {text}")]
    Server {
        /// Error code, e.g. `JOB_NOT_FOUND`.
        code: String,
        /// The server's text.
        text: String,
    },
    /// The job ended with WORK_FAIL.
    #[error("the job failed (WORK_FAIL) after {attempts} attempt(s)")]
    JobFailed {
        /// How many times it was submitted.
        attempts: u32,
    },
    /// The job ended with WORK_EXCEPTION.
    #[error("the job raised an exception: {}", String::from_utf8_lossy(.0))]
    JobException(Bytes),
    /// A timeout expired.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The caller stopped waiting for a foreground job (the `keep_going` callback of
    /// [`crate::blocking::client::Job::run_while`] said no). The job may still run on the server.
    #[error("stopped waiting for the job: the caller cancelled it (the job may still run on the server)")]
    Cancelled,
    /// The caller passed something unusable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An admin command got a reply it could not parse, or an ERR line.
    #[error("admin command {command:?} failed: {reply}")]
    Admin {
        /// The command sent.
        command: String,
        /// The reply received.
        reply: String,
    },
    /// The client or worker was shut down.
    #[error("shut down")]
    Shutdown,
    /// The TLS settings are unusable: no CA given, a certificate or key file missing or
    /// unreadable, a key that does not fit its certificate, a bad server name.
    #[error("TLS setup: {what}: {reason}")]
    TlsSetup {
        /// What was being set up (which file, or which setting).
        what: String,
        /// What is wrong with it and what to do.
        reason: String,
    },
    /// The TLS handshake with a server failed: its certificate did not verify (wrong CA,
    /// wrong name, expired), it refused this client's certificate, or it does not speak TLS.
    #[error("TLS with {server} failed: {reason}")]
    Tls {
        /// The server.
        server: String,
        /// What failed and what to do.
        reason: String,
    },
    /// A blocking facade could not start its private runtime (threads or the I/O driver).
    #[error("could not start the runtime of a blocking facade: {0}; check the thread and open-file limits")]
    Runtime(#[source] std::io::Error),
}

impl Error {
    /// Maps an ERROR packet's code and text to a typed error.
    pub fn from_server(code: &[u8], text: &[u8]) -> Error {
        let text = String::from_utf8_lossy(text).into_owned();
        match code {
            b"QUEUE_ERROR" => Error::QueueFull,
            b"ARGUMENT_TOO_LARGE" => Error::ArgumentTooLarge(text),
            b"PERMISSION_DENIED" => Error::PermissionDenied(text),
            _ => Error::Server {
                code: String::from_utf8_lossy(code).into_owned(),
                text,
            },
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! Server settings. Every limit is explicit and has a documented default; the binary fills
//! this from flags, environment and a TOML file (see `gearboxd.example.toml`).

use serde::{Deserialize, Serialize};

use crate::access::AccessPolicy;
use crate::core::{CoreConfig, TimeoutAction, TimeoutUnit};

/// Settings of the job server library.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Handle prefix: handles are `<prefix>:<n>`. Default `H:<hostname>`.
    pub job_handle_prefix: Option<String>,
    /// Attempts a job gets before it fails, counted as gearmand does: a job fails when it has
    /// lost its worker (disconnect or `requeue` timeout) this many times, so 1 = never retried.
    /// 0 (default) or -1 = unlimited.
    pub job_retries: i64,
    /// Sleeping workers woken per new job; 0 = all (default).
    pub worker_wakeup: usize,
    /// Send WORK_EXCEPTION to every client, not only those that sent `OPTION_REQ exceptions`.
    pub exceptions: bool,
    /// What a CAN_DO_TIMEOUT expiry does: `fail` (default) or `requeue` (gearmand).
    pub timeout_action: TimeoutAction,
    /// Unit of a CAN_DO_TIMEOUT sent as a decimal number: `seconds` (default; what Perl's,
    /// PHP's and Python's worker libraries document) or `milliseconds` (gearmand 1.1.20's
    /// reading). The Go library's 4-byte binary form is seconds either way.
    pub can_do_timeout_unit: TimeoutUnit,
    /// Largest packet body accepted, bytes (default 64 MiB). Larger: ERROR and close.
    pub max_body: usize,
    /// Longest admin text line, bytes (default 8 KiB). Longer: ERROR and close.
    pub max_admin_line: usize,
    /// Unsent output a connection may accumulate before it is dropped (default 64 MiB).
    pub max_unsent: usize,
    /// How long a connection's reading waits for a slow peer to drain output it produced for
    /// that peer, in milliseconds (default 30000); then that peer is dropped.
    pub send_stall_timeout_ms: u64,
    /// How long a store commit may take before the background submits waiting for it get
    /// `ERROR QUEUE_ERROR`, in milliseconds (default 10000).
    pub store_timeout_ms: u64,
    /// Simultaneous connections (default 10000). Past it: ERROR SERVER_BUSY and close.
    pub max_connections: usize,
    /// Longest unique id (default 64, as gearmand).
    pub max_unique: usize,
    /// Longest function name (default 512, as gearmand).
    pub max_function: usize,
    /// Longest client id (default 254, as gearmand).
    pub max_client_id: usize,
    /// Log level name reported by the `verbose` admin command.
    pub verbose: String,
    /// A job running longer than this many seconds logs one warning (handle, function,
    /// worker); 0 = never (default 300).
    pub slow_job_warning: u64,
    /// A worker that took a job and sent no WORK_STATUS, WORK_DATA or WORK_WARNING for it for
    /// this many seconds logs one warning (handle, function, worker); 0 = never (default 600).
    pub stuck_worker_warning: u64,
    /// The `[[access]]` rules (config file only): who may submit to which functions,
    /// register for which, and run which admin commands. None (default): everything is
    /// allowed. See `docs/security.md`.
    #[serde(skip_serializing_if = "AccessPolicy::is_empty")]
    pub access: AccessPolicy,
    /// Cluster mode: how often a member looks for free jobs in the shared queue when no
    /// other member woke it, in milliseconds (default 1000). Notifications make claims
    /// prompt; this bounds the delay when one is lost.
    pub cluster_poll_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        let core = CoreConfig::default();
        Config {
            job_handle_prefix: None,
            job_retries: 0,
            worker_wakeup: 0,
            exceptions: false,
            timeout_action: TimeoutAction::Fail,
            can_do_timeout_unit: TimeoutUnit::Seconds,
            max_body: gearbox_proto::codec::DEFAULT_MAX_BODY,
            max_admin_line: gearbox_proto::codec::DEFAULT_MAX_LINE,
            max_unsent: 64 * 1024 * 1024,
            send_stall_timeout_ms: 30_000,
            store_timeout_ms: 10_000,
            max_connections: 10_000,
            max_unique: core.max_unique,
            max_function: core.max_function,
            max_client_id: core.max_client_id,
            verbose: core.verbose,
            slow_job_warning: 300,
            stuck_worker_warning: 600,
            access: AccessPolicy::default(),
            cluster_poll_ms: 1000,
        }
    }
}

impl Config {
    /// The core's part of the settings.
    pub fn core(&self) -> CoreConfig {
        let host = hostname();
        CoreConfig {
            handle_prefix: self
                .job_handle_prefix
                .clone()
                .unwrap_or_else(|| format!("H:{host}")),
            job_retries: u32::try_from(self.job_retries).ok().filter(|n| *n > 0),
            worker_wakeup: self.worker_wakeup,
            exceptions: self.exceptions,
            timeout_action: self.timeout_action,
            timeout_unit: self.can_do_timeout_unit,
            max_unique: self.max_unique,
            max_function: self.max_function,
            max_client_id: self.max_client_id,
            persistent: false,
            version: env!("CARGO_PKG_VERSION").into(),
            verbose: self.verbose.clone(),
            slow_job_warning_ms: self.slow_job_warning.saturating_mul(1000),
            stuck_worker_warning_ms: self.stuck_worker_warning.saturating_mul(1000),
            access: self.access.clone(),
            cluster: false,
        }
    }

    /// The decoder's limits.
    pub fn limits(&self) -> gearbox_proto::Limits {
        gearbox_proto::Limits {
            max_body: self.max_body,
            max_line: self.max_admin_line,
        }
    }
}

/// This machine's host name, for default handles.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

//! Why [`Worker::run`](super::Worker::run) returned: [`StopReason`].

use std::fmt;
use std::time::Duration;

/// Why a worker stopped. Returned by [`Worker::run`](super::Worker::run).
///
/// ```
/// use gearbox_client::worker::StopReason;
///
/// let reason = StopReason::Requested { finished: 2, abandoned: 0 };
/// assert!(reason.is_clean());
/// assert_eq!(reason.to_string(), "shutdown requested: 2 running job(s) finished, 0 abandoned");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The shutdown future resolved. The worker stopped taking jobs and gave the running ones
    /// [`shutdown_timeout`](super::WorkerBuilder::shutdown_timeout) to finish.
    Requested {
        /// Jobs that were running (or were being handed over) when shutdown was requested and
        /// finished in time. Their results were sent to the server.
        finished: usize,
        /// Jobs still running at the timeout. They were cancelled and their connections closed,
        /// so the server re-queues them (counting a retry) or fails them, as configured there.
        abandoned: usize,
    },
    /// Every server stayed unreachable for longer than
    /// [`give_up_after`](super::WorkerBuilder::give_up_after).
    ServersUnreachable {
        /// How long no server could be reached.
        down_for: Duration,
        /// The last connection error seen, for the log.
        last_error: String,
    },
    /// Every server refused to let the worker register a function (ERROR PERMISSION_DENIED
    /// from its access rules). A refused server is not retried: the refusal is not
    /// temporary. While some server accepts the worker, it keeps serving that one.
    PermissionDenied {
        /// The server's refusal, e.g. `permission denied: may not register for billing`.
        error: String,
    },
}

impl StopReason {
    /// True when the worker stopped because it was asked to and no job was cut off.
    ///
    /// ```
    /// use gearbox_client::worker::StopReason;
    ///
    /// assert!(!StopReason::Requested { finished: 0, abandoned: 1 }.is_clean());
    /// ```
    pub fn is_clean(&self) -> bool {
        matches!(self, StopReason::Requested { abandoned: 0, .. })
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Requested {
                finished,
                abandoned,
            } => write!(
                f,
                "shutdown requested: {finished} running job(s) finished, {abandoned} abandoned"
            ),
            StopReason::ServersUnreachable {
                down_for,
                last_error,
            } => write!(
                f,
                "no server reachable for {down_for:?} (last error: {last_error}); \
                 check the server list and that the servers are running"
            ),
            StopReason::PermissionDenied { error } => write!(
                f,
                "every server refused this worker's functions ({error}); register only the \
                 functions the servers' access rules grant, or have them granted"
            ),
        }
    }
}

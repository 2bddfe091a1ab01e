//! The job a blocking handler receives.

use bytes::Bytes;

use crate::worker;
use crate::Result;

/// A job as a blocking handler sees it; the update methods block until the packet is queued.
///
/// ```
/// use gearbox_client::blocking::worker::Job;
///
/// let job = Job::detached("upper", "abc");
/// job.send_status(1, 2).unwrap();
/// assert_eq!(job.payload_str().unwrap(), "abc");
/// ```
#[derive(Debug, Clone)]
pub struct Job {
    inner: worker::Job,
}

impl Job {
    /// A job attached to no server, for testing handlers: updates are accepted and dropped.
    ///
    /// ```
    /// let job = gearbox_client::blocking::worker::Job::detached("f", "x");
    /// assert_eq!(job.function(), "f");
    /// ```
    pub fn detached(function: &str, payload: impl Into<Bytes>) -> Job {
        Job {
            inner: worker::Job::detached(function, payload),
        }
    }

    /// The job handle, e.g. `H:host:42`.
    ///
    /// ```
    /// # let job = gearbox_client::blocking::worker::Job::detached("f", "");
    /// assert!(!job.handle().is_empty());
    /// ```
    pub fn handle(&self) -> &Bytes {
        self.inner.handle()
    }

    /// The function name, as registered.
    ///
    /// ```
    /// # let job = gearbox_client::blocking::worker::Job::detached("f", "");
    /// assert_eq!(job.function(), "f");
    /// ```
    pub fn function(&self) -> &str {
        self.inner.function()
    }

    /// The unique id the client gave (empty if none).
    ///
    /// ```
    /// # let job = gearbox_client::blocking::worker::Job::detached("f", "");
    /// assert!(job.unique().is_empty());
    /// ```
    pub fn unique(&self) -> &Bytes {
        self.inner.unique()
    }

    /// The payload, as the client sent it.
    ///
    /// ```
    /// # let job = gearbox_client::blocking::worker::Job::detached("f", "xy");
    /// assert_eq!(&job.payload()[..], b"xy");
    /// ```
    pub fn payload(&self) -> &Bytes {
        self.inner.payload()
    }

    /// The payload as UTF-8; with `?` in a handler, invalid UTF-8 becomes an exception.
    ///
    /// ```
    /// # let job = gearbox_client::blocking::worker::Job::detached("f", "xy");
    /// assert_eq!(job.payload_str().unwrap(), "xy");
    /// ```
    pub fn payload_str(&self) -> std::result::Result<&str, std::str::Utf8Error> {
        self.inner.payload_str()
    }

    /// The server (`host:port`) the job came from.
    ///
    /// ```
    /// # let job = gearbox_client::blocking::worker::Job::detached("f", "");
    /// println!("from {}", job.server());
    /// ```
    pub fn server(&self) -> &str {
        self.inner.server()
    }

    /// Whether the worker has been asked to shut down; a long handler can check it between
    /// steps and wrap up early.
    ///
    /// ```
    /// # let job = gearbox_client::blocking::worker::Job::detached("f", "");
    /// assert!(!job.is_stopping());
    /// ```
    pub fn is_stopping(&self) -> bool {
        self.inner.is_stopping()
    }

    /// Sends a chunk of result data (WORK_DATA) to the waiting clients.
    ///
    /// ```
    /// # let job = gearbox_client::blocking::worker::Job::detached("f", "");
    /// job.send_data("part 1")?;
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn send_data(&self, data: impl Into<Bytes>) -> Result<()> {
        self.inner
            .send_blocking(self.inner.data_request(data.into()))
    }

    /// Reports progress `numerator / denominator` (WORK_STATUS).
    ///
    /// ```
    /// # let job = gearbox_client::blocking::worker::Job::detached("f", "");
    /// job.send_status(50, 100)?;
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn send_status(&self, numerator: u64, denominator: u64) -> Result<()> {
        self.inner
            .send_blocking(self.inner.status_request(numerator, denominator))
    }

    /// Sends a warning (WORK_WARNING); the job goes on.
    ///
    /// ```
    /// # let job = gearbox_client::blocking::worker::Job::detached("f", "");
    /// job.send_warning("retrying a download")?;
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn send_warning(&self, data: impl Into<Bytes>) -> Result<()> {
        self.inner
            .send_blocking(self.inner.warning_request(data.into()))
    }
}

impl Job {
    /// Wraps a job of the async worker.
    pub(super) fn new(inner: worker::Job) -> Job {
        Job { inner }
    }
}

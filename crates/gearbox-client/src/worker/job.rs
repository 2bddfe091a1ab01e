//! What a handler receives: [`Job`], with the job's details and a way to send updates to
//! the waiting clients while it runs.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use gearbox_proto::Request;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::{Error, Result};

/// One job being run by a handler: its handle, function, unique id and payload, and a way to
/// send data chunks, progress and warnings to the clients waiting for it.
///
/// Cloning is cheap. The update methods work only while the handler runs: once the handler has
/// returned (and the result was sent) they fail with [`Error::InvalidArgument`].
///
/// ```
/// use gearbox_client::worker::Job;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// // A job not attached to any server, for unit tests of handlers.
/// let job = Job::detached("reverse", "abc");
/// job.send_status(1, 2).await.unwrap();
/// assert_eq!(job.function(), "reverse");
/// assert_eq!(&job.payload()[..], b"abc");
/// # });
/// ```
#[derive(Clone)]
pub struct Job {
    handle: Bytes,
    function: Arc<str>,
    unique: Bytes,
    payload: Bytes,
    link: Link,
}

/// Where a job's packets go: its server connection's outbound queue.
#[derive(Clone)]
pub(crate) struct Link {
    server: Arc<str>,
    /// `None` for a detached job.
    out: Option<mpsc::Sender<Request>>,
    /// Set once the handler has returned.
    done: Arc<AtomicBool>,
    /// The worker's shutdown deadline, once shutdown was requested (`None`: detached).
    stop: Option<watch::Receiver<Option<Instant>>>,
}

impl Link {
    /// A link to the connection whose writer reads `out`, in a worker whose shutdown
    /// deadline `stop` carries.
    pub(crate) fn new(
        server: Arc<str>,
        out: mpsc::Sender<Request>,
        stop: watch::Receiver<Option<Instant>>,
    ) -> Link {
        Link {
            server,
            out: Some(out),
            done: Arc::new(AtomicBool::new(false)),
            stop: Some(stop),
        }
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("handle", &self.handle)
            .field("function", &self.function)
            .field("unique", &self.unique)
            .field("payload_len", &self.payload.len())
            .field("server", &self.link.server)
            .finish()
    }
}

impl Job {
    pub(crate) fn new(
        handle: Bytes,
        function: Arc<str>,
        unique: Bytes,
        payload: Bytes,
        link: Link,
    ) -> Job {
        Job {
            handle,
            function,
            unique,
            payload,
            link,
        }
    }

    /// A job attached to no server, for testing handlers: updates are accepted and dropped.
    ///
    /// ```
    /// use gearbox_client::worker::Job;
    ///
    /// let job = Job::detached("upper", "hi");
    /// assert_eq!(job.handle(), &b"detached"[..]);
    /// ```
    pub fn detached(function: &str, payload: impl Into<Bytes>) -> Job {
        Job {
            handle: Bytes::from_static(b"detached"),
            function: function.into(),
            unique: Bytes::new(),
            payload: payload.into(),
            link: Link {
                server: "detached".into(),
                out: None,
                done: Arc::new(AtomicBool::new(false)),
                stop: None,
            },
        }
    }

    /// The job handle the server gave the job, e.g. `H:host:42`.
    ///
    /// ```
    /// # let job = gearbox_client::worker::Job::detached("f", "");
    /// println!("running {}", String::from_utf8_lossy(job.handle()));
    /// ```
    pub fn handle(&self) -> &Bytes {
        &self.handle
    }

    /// The function name, as registered.
    ///
    /// ```
    /// # let job = gearbox_client::worker::Job::detached("resize", "");
    /// assert_eq!(job.function(), "resize");
    /// ```
    pub fn function(&self) -> &str {
        &self.function
    }

    /// The unique id the client gave (empty if none).
    ///
    /// ```
    /// # let job = gearbox_client::worker::Job::detached("f", "");
    /// assert!(job.unique().is_empty());
    /// ```
    pub fn unique(&self) -> &Bytes {
        &self.unique
    }

    /// The job's payload (workload), as the client sent it.
    ///
    /// ```
    /// # let job = gearbox_client::worker::Job::detached("f", &b"\x00\x01"[..]);
    /// assert_eq!(job.payload().len(), 2);
    /// ```
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The payload as UTF-8 text; with `?` in a handler, invalid UTF-8 becomes an exception.
    ///
    /// ```
    /// # use gearbox_client::worker::{Job, JobError};
    /// fn check(job: &Job) -> Result<usize, JobError> {
    ///     Ok(job.payload_str()?.len())
    /// }
    /// assert_eq!(check(&Job::detached("f", "abc")), Ok(3));
    /// assert!(check(&Job::detached("f", &b"\xff"[..])).is_err());
    /// ```
    pub fn payload_str(&self) -> std::result::Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.payload)
    }

    /// The server (`host:port`) the job came from.
    ///
    /// ```
    /// # let job = gearbox_client::worker::Job::detached("f", "");
    /// assert_eq!(job.server(), "detached");
    /// ```
    pub fn server(&self) -> &str {
        &self.link.server
    }

    /// Whether the worker has been asked to shut down. A long handler can check it and wrap
    /// up early; it has until [`shutdown_timeout`](super::WorkerBuilder::shutdown_timeout).
    ///
    /// ```
    /// # let job = gearbox_client::worker::Job::detached("f", "");
    /// assert!(!job.is_stopping());
    /// ```
    pub fn is_stopping(&self) -> bool {
        self.link
            .stop
            .as_ref()
            .is_some_and(|s| s.borrow().is_some())
    }

    /// Resolves once the worker has been asked to shut down (never for a detached job); for
    /// `select!` in long handlers.
    ///
    /// ```no_run
    /// # use gearbox_client::worker::{Job, JobError};
    /// async fn crawl(job: Job) -> Result<&'static str, JobError> {
    ///     tokio::select! {
    ///         _ = job.stopping() => Err(JobError::exception("worker shutting down; resubmit")),
    ///         _ = tokio::time::sleep(std::time::Duration::from_secs(600)) => Ok("crawled"),
    ///     }
    /// }
    /// ```
    pub async fn stopping(&self) {
        match &self.link.stop {
            Some(stop) => {
                let mut stop = stop.clone();
                // An error means the worker is gone: stopping too.
                let _ = stop.wait_for(Option::is_some).await;
            }
            None => std::future::pending().await,
        }
    }

    /// Sends a chunk of result data (WORK_DATA) to the waiting clients.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let job = gearbox_client::worker::Job::detached("f", "");
    /// job.send_data("first chunk").await?;
    /// # Ok::<(), gearbox_client::Error>(()) }).unwrap();
    /// ```
    pub async fn send_data(&self, data: impl Into<Bytes>) -> Result<()> {
        self.send(self.data_request(data.into())).await
    }

    /// Reports progress `numerator / denominator` (WORK_STATUS); the server keeps the last
    /// value for status queries.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let job = gearbox_client::worker::Job::detached("f", "");
    /// job.send_status(3, 10).await?;
    /// # Ok::<(), gearbox_client::Error>(()) }).unwrap();
    /// ```
    pub async fn send_status(&self, numerator: u64, denominator: u64) -> Result<()> {
        self.send(self.status_request(numerator, denominator)).await
    }

    /// Sends a warning (WORK_WARNING) to the waiting clients; the job goes on.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let job = gearbox_client::worker::Job::detached("f", "");
    /// job.send_warning("disk almost full").await?;
    /// # Ok::<(), gearbox_client::Error>(()) }).unwrap();
    /// ```
    pub async fn send_warning(&self, data: impl Into<Bytes>) -> Result<()> {
        self.send(self.warning_request(data.into())).await
    }

    pub(crate) fn warning_request(&self, data: Bytes) -> Request {
        Request::WorkWarning {
            handle: self.handle.clone(),
            data,
        }
    }

    pub(crate) fn data_request(&self, data: Bytes) -> Request {
        Request::WorkData {
            handle: self.handle.clone(),
            data,
        }
    }

    pub(crate) fn status_request(&self, numerator: u64, denominator: u64) -> Request {
        Request::WorkStatus {
            handle: self.handle.clone(),
            numerator: numerator.to_string().into(),
            denominator: denominator.to_string().into(),
        }
    }

    /// Queues `req` on the job's connection, waiting while the queue is full.
    pub(crate) async fn send(&self, req: Request) -> Result<()> {
        self.check_running()?;
        match &self.link.out {
            None => Ok(()),
            Some(tx) => tx.send(req).await.map_err(|_| self.disconnected()),
        }
    }

    /// [`Job::send`] for threads outside the runtime (the blocking facade).
    pub(crate) fn send_blocking(&self, req: Request) -> Result<()> {
        self.check_running()?;
        match &self.link.out {
            None => Ok(()),
            Some(tx) => tx.blocking_send(req).map_err(|_| self.disconnected()),
        }
    }

    /// Marks the handler as returned (later updates are refused) and queues its result.
    pub(crate) async fn finish(&self, result: Vec<Request>) -> Result<()> {
        self.link.done.store(true, Ordering::Release);
        if let Some(tx) = &self.link.out {
            for req in result {
                tx.send(req).await.map_err(|_| self.disconnected())?;
            }
        }
        Ok(())
    }

    fn check_running(&self) -> Result<()> {
        if self.link.done.load(Ordering::Acquire) {
            return Err(Error::InvalidArgument(format!(
                "job {} has already finished; send updates only while its handler runs",
                String::from_utf8_lossy(&self.handle)
            )));
        }
        Ok(())
    }

    fn disconnected(&self) -> Error {
        Error::Disconnected {
            server: self.link.server.to_string(),
            reason: "the connection this job came from is gone; the server re-queues or \
                     fails the job"
                .into(),
        }
    }
}

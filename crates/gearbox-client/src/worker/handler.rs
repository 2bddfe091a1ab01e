//! How handlers plug in: the [`Handler`] trait every `async fn(Job) -> Result<impl Into<Bytes>,
//! E>` implements, [`JobError`] for a job that did not succeed, and [`ExceptionMode`] for how
//! an exception goes on the wire.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use super::job::Job;

/// How a handler says its job did not succeed.
///
/// `Exception` sends WORK_EXCEPTION with the message (clients that did not ask for exceptions
/// get WORK_FAIL from the server instead); `Fail` sends WORK_FAIL. Any [`std::error::Error`]
/// converts into an `Exception` carrying its message and sources, so `?` works in handlers.
///
/// ```
/// use gearbox_client::worker::JobError;
///
/// let e: JobError = "x".parse::<u32>().unwrap_err().into();
/// assert_eq!(e, JobError::Exception("invalid digit found in string".into()));
/// assert_eq!(JobError::exception("bad input").to_string(), "exception: bad input");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobError {
    /// Send WORK_EXCEPTION with this payload (usually a message).
    Exception(Bytes),
    /// Send WORK_FAIL.
    Fail,
}

impl JobError {
    /// An exception with `message`.
    ///
    /// ```
    /// # use gearbox_client::worker::JobError;
    /// let e = JobError::exception(format!("no user {}", 42));
    /// # assert!(matches!(e, JobError::Exception(_)));
    /// ```
    pub fn exception(message: impl Into<Bytes>) -> JobError {
        JobError::Exception(message.into())
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Exception(m) => write!(f, "exception: {}", String::from_utf8_lossy(m)),
            JobError::Fail => f.write_str("failed"),
        }
    }
}

impl<E: std::error::Error> From<E> for JobError {
    fn from(e: E) -> JobError {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        JobError::Exception(message.into())
    }
}

/// What a handler's future yields: the result payload or a [`JobError`].
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Bytes, JobError>> + Send>>;

/// A job handler. Implemented for every `Fn(Job) -> impl Future<Output = Result<T, E>>` where
/// `T: Into<Bytes>` (`Vec<u8>`, `String`, `&'static str`, `Bytes`, ...) and
/// `E: Into<JobError>`, so async closures and `async fn`s register directly.
///
/// ```
/// use gearbox_client::worker::{Handler, Job, JobError};
///
/// async fn upper(job: Job) -> Result<String, JobError> {
///     Ok(job.payload_str()?.to_uppercase())
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let out = upper.call(Job::detached("upper", "abc")).await;
/// assert_eq!(out, Ok("ABC".into()));
/// # });
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Runs the job.
    fn call(&self, job: Job) -> HandlerFuture;
}

impl<F, Fut, T, E> Handler for F
where
    F: Fn(Job) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<T, E>> + Send + 'static,
    T: Into<Bytes>,
    E: Into<JobError>,
{
    fn call(&self, job: Job) -> HandlerFuture {
        let fut = self(job);
        Box::pin(async move { fut.await.map(Into::into).map_err(Into::into) })
    }
}

/// How a handler's [`JobError::Exception`] is sent; set with
/// [`WorkerBuilder::exception_mode`](super::WorkerBuilder::exception_mode).
///
/// ```
/// use gearbox_client::worker::ExceptionMode;
/// assert_eq!(ExceptionMode::default(), ExceptionMode::Exception);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExceptionMode {
    /// WORK_EXCEPTION with the message (the default). Clients that sent `OPTION_REQ
    /// exceptions` receive it; the server sends the others WORK_FAIL instead. gearmand 1.1.x
    /// sends that WORK_FAIL with a stray trailing NUL after the handle, which libgearman
    /// clients (the `gearman` tool, PHP, ...) do not match: they wait until their own timeout.
    #[default]
    Exception,
    /// WORK_WARNING with the message, then WORK_FAIL. Every client sees the message (as a
    /// warning) and a well-formed failure; none gets an exception. Use it with gearmand 1.1.x
    /// when libgearman clients that do not ask for exceptions submit jobs.
    WarningThenFail,
}

//! [`JobBuilder`]: one job's options (priority, unique id, time, schedule, retries, timeout)
//! and the three ways to run it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gearbox_proto::{Priority, Request, SubmitJob};

use super::task::{self, Task};
use super::Client;
use crate::{Error, Result};

/// A point in time for [`JobBuilder::at`], in UNIX seconds. Made from a [`SystemTime`] or a
/// number of seconds.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use gearbox_client::Epoch;
/// let later = Epoch::from(SystemTime::now() + Duration::from_secs(60));
/// assert_eq!(Epoch::from(1_700_000_000).secs(), 1_700_000_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Epoch(u64);

impl Epoch {
    /// Seconds since 1970-01-01 UTC.
    pub fn secs(self) -> u64 {
        self.0
    }
}

impl From<u64> for Epoch {
    fn from(secs: u64) -> Epoch {
        Epoch(secs)
    }
}

impl From<SystemTime> for Epoch {
    /// Rounds up to the next whole second, so the job never runs early; times before 1970
    /// become 0 (run as soon as possible).
    fn from(t: SystemTime) -> Epoch {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        Epoch(d.as_secs() + u64::from(d.subsec_nanos() > 0))
    }
}

/// When a background job runs.
#[derive(Debug, Clone)]
enum When {
    Now,
    Epoch(u64),
    Cron(String),
}

/// One job to submit, made by [`Client::job`]. Set options, then call
/// [`run`](JobBuilder::run) (wait for the result), [`start`](JobBuilder::start) (follow its
/// events) or [`background`](JobBuilder::background) (fire and forget).
///
/// ```no_run
/// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
/// use std::time::Duration;
/// let thumb = client
///     .job("thumbnail", "photo.jpg")
///     .high()
///     .unique("photo.jpg")
///     .retries(2)
///     .timeout(Duration::from_secs(30))
///     .run()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a job does nothing until run, started or sent to the background"]
pub struct JobBuilder {
    client: Client,
    function: Bytes,
    payload: Bytes,
    unique: Option<Bytes>,
    priority: Priority,
    when: When,
    retries: u32,
    timeout: Option<Duration>,
}

impl JobBuilder {
    pub(crate) fn new(client: Client, function: Bytes, payload: Bytes) -> JobBuilder {
        JobBuilder {
            client,
            function,
            payload,
            unique: None,
            priority: Priority::Normal,
            when: When::Now,
            retries: 0,
            timeout: None,
        }
    }

    /// Sets the priority (default [`Priority::Normal`]). Ignored by [`JobBuilder::at`] and
    /// [`JobBuilder::schedule`] jobs, whose packets carry no priority.
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// use gearbox_client::Priority;
    /// client.job("report", "q3").priority(Priority::Low).background().await?;
    /// # Ok(()) }
    /// ```
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Shorthand for `.priority(Priority::High)`.
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// client.job("alert", "disk full").high().run().await?;
    /// # Ok(()) }
    /// ```
    pub fn high(self) -> Self {
        self.priority(Priority::High)
    }

    /// Shorthand for `.priority(Priority::Low)`.
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// client.job("reindex", "all").low().background().await?;
    /// # Ok(()) }
    /// ```
    pub fn low(self) -> Self {
        self.priority(Priority::Low)
    }

    /// Sets the unique id (at most 64 bytes for gearmand). Jobs of one function with the same
    /// unique id are coalesced by the server: a second submit attaches to the first job. The
    /// unique id also picks the server. Without one, a random id is generated, so the job
    /// coalesces with nothing (except its own retries).
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// let a = client.job("render", "page-7").unique("page-7").background().await?;
    /// let b = client.job("render", "page-7").unique("page-7").background().await?;
    /// assert_eq!(a, b); // one job
    /// # Ok(()) }
    /// ```
    pub fn unique(mut self, unique: impl AsRef<[u8]>) -> Self {
        self.unique = Some(Bytes::copy_from_slice(unique.as_ref()));
        self
    }

    /// Runs the job no earlier than `when` (SUBMIT_JOB_EPOCH). Such a job is always a
    /// background job: use [`JobBuilder::background`].
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// use std::time::{Duration, SystemTime};
    /// let at = SystemTime::now() + Duration::from_secs(3600);
    /// client.job("reminder", "call Bob").at(at).background().await?;
    /// # Ok(()) }
    /// ```
    pub fn at(mut self, when: impl Into<Epoch>) -> Self {
        self.when = When::Epoch(when.into().secs());
        self
    }

    /// Runs the job repeatedly on a five-field cron schedule, `"minute hour day-of-month
    /// month day-of-week"` (SUBMIT_JOB_SCHED). A background job: use
    /// [`JobBuilder::background`]. gearbox runs these; gearmand refuses them
    /// (`INVALID_COMMAND`).
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// client.job("cleanup", "tmp").schedule("*/5 * * * *").background().await?;
    /// # Ok(()) }
    /// ```
    pub fn schedule(mut self, cron: &str) -> Self {
        self.when = When::Cron(cron.to_string());
        self
    }

    /// Resubmits the job up to `n` more times when it fails (WORK_FAIL) or its connection is
    /// lost, emitting [`TaskEvent::Retry`](super::TaskEvent::Retry) each time. A worker
    /// exception is final. Default 0.
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// let out = client.job("flaky", "x").retries(3).run().await?;
    /// # Ok(()) }
    /// ```
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// Limits the whole task (every attempt, from submit to result) to `limit`; past it the
    /// task ends with [`Error::Timeout`]. The job itself may still run on the server.
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// use std::time::Duration;
    /// match client.job("slow", "x").timeout(Duration::from_secs(1)).run().await {
    ///     Err(gearbox_client::Error::Timeout(_)) => println!("gave up"),
    ///     other => println!("{other:?}"),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Submits the job in the foreground and waits for its result: WORK_COMPLETE's data,
    /// or [`Error::JobFailed`] / [`Error::JobException`].
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// let out = client.job("reverse", "hello").run().await?;
    /// assert_eq!(&out[..], b"olleh");
    /// # Ok(()) }
    /// ```
    pub async fn run(self) -> Result<Bytes> {
        self.start().await?.wait().await
    }

    /// Submits the job in the foreground and returns once the server created it; follow its
    /// events with the returned [`Task`].
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// let mut task = client.job("encode", "video.mp4").start().await?;
    /// while let Some(event) = task.next_event().await {
    ///     println!("{:?}", event?);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn start(self) -> Result<Task> {
        if !matches!(self.when, When::Now) {
            return Err(Error::InvalidArgument(
                "a job with .at() or .schedule() runs in the background: use .background()".into(),
            ));
        }
        let spec = self.spec(false)?;
        Task::start(self.client, spec).await
    }

    /// Submits the job in the background and returns its handle once the server created it
    /// (retrying a lost connection if [`JobBuilder::retries`] allows).
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// let handle = client.job("email", "welcome:42").low().background().await?;
    /// # Ok(()) }
    /// ```
    pub async fn background(self) -> Result<bytes::Bytes> {
        let spec = self.spec(true)?;
        task::submit_background(&self.client, &spec).await
    }

    fn spec(&self, background: bool) -> Result<task::Spec> {
        let unique = match &self.unique {
            Some(u) => u.clone(),
            None => Bytes::from(super::unique::generate()),
        };
        let (function, data) = (self.function.clone(), self.payload.clone());
        let request = match &self.when {
            When::Now => Request::Submit(SubmitJob {
                function,
                unique: unique.clone(),
                data,
                priority: self.priority,
                background,
            }),
            When::Epoch(epoch) => Request::SubmitEpoch {
                function,
                unique: unique.clone(),
                epoch: *epoch,
                data,
            },
            When::Cron(cron) => Request::SubmitSched {
                function,
                unique: unique.clone(),
                schedule: Box::new(cron_fields(cron)?),
                data,
            },
        };
        Ok(task::Spec {
            request,
            unique,
            retries: self.retries,
            timeout: self.timeout,
        })
    }
}

/// Splits `"m h dom mon dow"` into the five SUBMIT_JOB_SCHED fields.
fn cron_fields(cron: &str) -> Result<[Bytes; 5]> {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    let fields: [&str; 5] = fields.try_into().map_err(|f: Vec<&str>| {
        Error::InvalidArgument(format!(
            "schedule {cron:?} has {} fields; expected 5: minute hour day-of-month month \
             day-of-week, e.g. \"*/5 * * * *\"",
            f.len()
        ))
    })?;
    Ok(fields.map(|f| Bytes::copy_from_slice(f.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_needs_five_fields() {
        let f = cron_fields(" */5  1-3 * * 0 ").unwrap();
        assert_eq!(f[0], "*/5");
        assert_eq!(f[4], "0");
        assert!(matches!(
            cron_fields("* * *"),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn epoch_rounds_up() {
        let t = UNIX_EPOCH + Duration::from_millis(1500);
        assert_eq!(Epoch::from(t).secs(), 2);
        assert_eq!(Epoch::from(UNIX_EPOCH + Duration::from_secs(7)).secs(), 7);
    }
}

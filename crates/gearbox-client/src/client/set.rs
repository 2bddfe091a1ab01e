//! [`TaskSet`]: scatter many foreground jobs at once and gather their results in order.

use std::time::Duration;

use bytes::Bytes;
use futures::future::{join_all, try_join_all};

use super::JobBuilder;
use crate::{Error, Result};

/// Many jobs run concurrently, their results gathered in the order they were added, with an
/// optional limit for the whole set (each job keeps its own [`JobBuilder::timeout`] and
/// [`JobBuilder::retries`] too).
///
/// ```no_run
/// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
/// use std::time::Duration;
/// let mut set = client.task_set().timeout(Duration::from_secs(10));
/// for word in ["alpha", "beta", "gamma"] {
///     set.add(client.job("uppercase", word));
/// }
/// let results = set.run().await?; // ["ALPHA", "BETA", "GAMMA"]
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
#[must_use = "a task set does nothing until run"]
pub struct TaskSet {
    jobs: Vec<JobBuilder>,
    timeout: Option<Duration>,
}

impl TaskSet {
    /// An empty set with no time limit.
    ///
    /// ```
    /// let set = gearbox_client::TaskSet::new();
    /// assert!(set.is_empty());
    /// ```
    pub fn new() -> TaskSet {
        TaskSet::default()
    }

    /// Adds a job (run in the foreground) and returns its index in the results.
    ///
    /// ```no_run
    /// # fn f(client: gearbox_client::Client) {
    /// let mut set = client.task_set();
    /// let i = set.add(client.job("square", "7"));
    /// assert_eq!(i, 0);
    /// # }
    /// ```
    pub fn add(&mut self, job: JobBuilder) -> usize {
        self.jobs.push(job);
        self.jobs.len() - 1
    }

    /// Adds a job, builder style.
    ///
    /// ```no_run
    /// # fn f(client: gearbox_client::Client) {
    /// let set = client.task_set().with(client.job("a", "1")).with(client.job("b", "2"));
    /// # }
    /// ```
    pub fn with(mut self, job: JobBuilder) -> Self {
        self.add(job);
        self
    }

    /// Limits the whole set: jobs not finished after `limit` end with [`Error::Timeout`].
    ///
    /// ```no_run
    /// # fn f(client: gearbox_client::Client) {
    /// let set = client.task_set().timeout(std::time::Duration::from_secs(5));
    /// # }
    /// ```
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Number of jobs added.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether no job was added.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Runs every job at once and returns all results in order, or the first error (a failed
    /// job, [`Error::Timeout`] for the set, ...); the other jobs are then abandoned.
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// let out = client.task_set().with(client.job("echo", "a")).run().await?;
    /// assert_eq!(out.len(), 1);
    /// # Ok(()) }
    /// ```
    pub async fn run(self) -> Result<Vec<Bytes>> {
        tracing::debug!(jobs = self.jobs.len(), "running task set");
        let all = try_join_all(self.jobs.into_iter().map(JobBuilder::run));
        match self.timeout {
            Some(limit) => tokio::time::timeout(limit, all)
                .await
                .map_err(|_| Error::Timeout(limit))?,
            None => all.await,
        }
    }

    /// Runs every job at once and returns each one's own result, in order. With a set
    /// timeout, the jobs still running when it expires get [`Error::Timeout`].
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// let results = client.task_set().with(client.job("maybe", "x")).run_all().await;
    /// for r in results {
    ///     match r {
    ///         Ok(data) => println!("ok {data:?}"),
    ///         Err(e) => println!("failed: {e}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn run_all(self) -> Vec<Result<Bytes>> {
        tracing::debug!(jobs = self.jobs.len(), "running task set");
        let deadline = self.timeout.map(|d| (tokio::time::Instant::now() + d, d));
        join_all(self.jobs.into_iter().map(|job| async move {
            match deadline {
                Some((at, limit)) => tokio::time::timeout_at(at, job.run())
                    .await
                    .unwrap_or(Err(Error::Timeout(limit))),
                None => job.run().await,
            }
        }))
        .await
    }
}

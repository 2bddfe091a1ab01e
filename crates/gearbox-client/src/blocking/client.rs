//! The blocking client: the async [`crate::Client`] driven by a private one-thread runtime.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::runtime::Runtime;

use crate::{Epoch, Error, JobBuilder, JobStatus, Priority, Result, ServerAddr, UniqueStatus};

/// Owns the runtime; shuts it down without blocking, so dropping the last client is safe
/// anywhere (even inside another runtime).
#[derive(Debug)]
struct Rt(Option<Runtime>);

impl Rt {
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match &self.0 {
            Some(rt) => rt.block_on(f),
            None => unreachable!("the runtime is only taken in drop"),
        }
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// A blocking Gearman client for scripts: the same jobs, options and answers as the async
/// [`crate::Client`], each call waiting for its result. It runs a private runtime with one
/// worker thread that keeps the connections. Cheap to clone; usable from many threads.
/// Do not call it from inside an async runtime (it panics there); use the async client.
///
/// ```no_run
/// use gearbox_client::blocking::Client;
/// let client = Client::new("localhost:4730")?;
/// let out = client.submit("reverse", "hello")?;
/// let handle = client.job("report", "q3").low().background()?;
/// println!("{:?}", client.job_status(&handle)?);
/// # Ok::<(), gearbox_client::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    inner: crate::Client,
    rt: Arc<Rt>,
}

impl Client {
    /// A client for a `host[:port],...` list with default settings (see
    /// [`crate::ClientBuilder`]; use [`crate::ClientBuilder::build_blocking`] for others).
    ///
    /// ```
    /// let client = gearbox_client::blocking::Client::new("localhost")?;
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn new(servers: &str) -> Result<Client> {
        Client::from_async(crate::Client::new(servers)?)
    }

    /// Wraps a freshly built async client (its connections then live on our runtime).
    pub(crate) fn from_async(inner: crate::Client) -> Result<Client> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gearbox-client")
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        Ok(Client {
            inner,
            rt: Arc::new(Rt(Some(rt))),
        })
    }

    /// The configured servers, in order.
    ///
    /// ```
    /// let client = gearbox_client::blocking::Client::new("a,b")?;
    /// assert_eq!(client.servers().len(), 2);
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn servers(&self) -> Vec<ServerAddr> {
        self.inner.servers()
    }

    /// Submits a foreground job and waits for its result; see [`crate::Client::submit`].
    ///
    /// ```no_run
    /// # let client = gearbox_client::blocking::Client::new("localhost")?;
    /// let out = client.submit("reverse", "abc")?;
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn submit(&self, function: impl AsRef<[u8]>, payload: impl Into<Bytes>) -> Result<Bytes> {
        self.job(function, payload).run()
    }

    /// Submits a background job and returns its handle; see
    /// [`crate::Client::submit_background`].
    ///
    /// ```no_run
    /// # let client = gearbox_client::blocking::Client::new("localhost")?;
    /// let handle = client.submit_background("send_email", "to=bob")?;
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn submit_background(
        &self,
        function: impl AsRef<[u8]>,
        payload: impl Into<Bytes>,
    ) -> Result<Bytes> {
        self.job(function, payload).background()
    }

    /// A job to configure and run; see [`Job`].
    ///
    /// ```no_run
    /// # let client = gearbox_client::blocking::Client::new("localhost")?;
    /// let out = client.job("resize", "img.png").high().retries(2).run()?;
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn job(&self, function: impl AsRef<[u8]>, payload: impl Into<Bytes>) -> Job {
        Job {
            inner: self.inner.job(function, payload),
            rt: self.rt.clone(),
        }
    }

    /// Asks the servers about a job handle; see [`crate::Client::job_status`].
    ///
    /// ```no_run
    /// # let client = gearbox_client::blocking::Client::new("localhost")?;
    /// let st = client.job_status("H:host:1")?;
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn job_status(&self, handle: impl AsRef<[u8]>) -> Result<JobStatus> {
        self.rt.block_on(self.inner.job_status(handle))
    }

    /// Asks about a unique id; see [`crate::Client::unique_status`].
    ///
    /// ```no_run
    /// # let client = gearbox_client::blocking::Client::new("localhost")?;
    /// let st = client.unique_status("report-q3")?;
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn unique_status(&self, unique: impl AsRef<[u8]>) -> Result<UniqueStatus> {
        self.rt.block_on(self.inner.unique_status(unique))
    }

    /// Echoes `data` through the first reachable server; see [`crate::Client::echo`].
    ///
    /// ```no_run
    /// # let client = gearbox_client::blocking::Client::new("localhost")?;
    /// assert_eq!(&client.echo("ping")?[..], b"ping");
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn echo(&self, data: impl Into<Bytes>) -> Result<Bytes> {
        self.rt.block_on(self.inner.echo(data))
    }
}

/// One job for the blocking client, with the options of [`JobBuilder`].
///
/// ```no_run
/// # let client = gearbox_client::blocking::Client::new("localhost")?;
/// use std::time::Duration;
/// let out = client.job("thumb", "a.jpg").unique("a.jpg").timeout(Duration::from_secs(9)).run()?;
/// # Ok::<(), gearbox_client::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "a job does nothing until run or sent to the background"]
pub struct Job {
    inner: JobBuilder,
    rt: Arc<Rt>,
}

impl Job {
    fn map(self, f: impl FnOnce(JobBuilder) -> JobBuilder) -> Job {
        Job {
            inner: f(self.inner),
            rt: self.rt,
        }
    }

    /// See [`JobBuilder::priority`].
    pub fn priority(self, priority: Priority) -> Job {
        self.map(|j| j.priority(priority))
    }

    /// See [`JobBuilder::high`].
    pub fn high(self) -> Job {
        self.map(JobBuilder::high)
    }

    /// See [`JobBuilder::low`].
    pub fn low(self) -> Job {
        self.map(JobBuilder::low)
    }

    /// See [`JobBuilder::unique`].
    pub fn unique(self, unique: impl AsRef<[u8]>) -> Job {
        self.map(|j| j.unique(unique))
    }

    /// See [`JobBuilder::at`].
    pub fn at(self, when: impl Into<Epoch>) -> Job {
        self.map(|j| j.at(when))
    }

    /// See [`JobBuilder::schedule`].
    pub fn schedule(self, cron: &str) -> Job {
        self.map(|j| j.schedule(cron))
    }

    /// See [`JobBuilder::retries`].
    pub fn retries(self, n: u32) -> Job {
        self.map(|j| j.retries(n))
    }

    /// See [`JobBuilder::timeout`].
    pub fn timeout(self, limit: Duration) -> Job {
        self.map(|j| j.timeout(limit))
    }

    /// Runs the job in the foreground and waits for its result; see [`JobBuilder::run`].
    pub fn run(self) -> Result<Bytes> {
        self.rt.block_on(self.inner.run())
    }

    /// Runs the job in the foreground like [`Job::run`], but asks `keep_going` before the
    /// submit and then every `poll` (at least 1 ms) while waiting, on the calling thread. When
    /// it answers `false` the job is abandoned: the wait ends with [`Error::Cancelled`], the
    /// client stops following the job (its connection stays usable: later packets for the job
    /// are dropped), and the server may still run it. For callers that must notice an outside
    /// event, such as a database statement being killed.
    ///
    /// ```no_run
    /// # let client = gearbox_client::blocking::Client::new("localhost")?;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::time::Duration;
    /// let stop = AtomicBool::new(false); // set by another thread
    /// let out = client
    ///     .job("slow", "x")
    ///     .run_while(Duration::from_millis(100), || !stop.load(Ordering::Relaxed));
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn run_while(self, poll: Duration, mut keep_going: impl FnMut() -> bool) -> Result<Bytes> {
        let poll = poll.max(Duration::from_millis(1));
        let run = self.inner.run();
        self.rt.block_on(async move {
            tokio::pin!(run);
            let mut ticks = tokio::time::interval(poll);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    biased;
                    // The first tick is immediate: a caller that already gave up submits nothing.
                    _ = ticks.tick() => if !keep_going() {
                        return Err(Error::Cancelled);
                    },
                    out = &mut run => return out,
                }
            }
        })
    }

    /// Submits the job in the background and returns its handle; see
    /// [`JobBuilder::background`].
    pub fn background(self) -> Result<Bytes> {
        self.rt.block_on(self.inner.background())
    }
}

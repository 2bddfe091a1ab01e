//! The blocking worker: the async [`crate::worker::Worker`] on a private runtime, with plain
//! `Fn(&Job) -> Result<..>` handlers run on blocking threads.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::runtime::Runtime;

use crate::worker::{self, ExceptionMode, JobError, StopReason};
use crate::{Error, Result, ServerAddr};

mod job;
pub use job::Job;

/// Builds a blocking [`Worker`]: the settings and defaults of
/// [`crate::worker::WorkerBuilder`], with blocking handlers.
///
/// ```
/// use gearbox_client::blocking::worker::{Job, Worker};
/// use gearbox_client::worker::JobError;
///
/// let worker = Worker::builder()
///     .servers("127.0.0.1:4730")
///     .concurrency(2)
///     .register("upper", |job: &Job| Ok::<_, JobError>(job.payload_str()?.to_uppercase()))
///     .build()?;
/// # Ok::<(), gearbox_client::Error>(())
/// ```
#[derive(Default)]
pub struct WorkerBuilder {
    inner: worker::WorkerBuilder,
}

impl WorkerBuilder {
    /// See [`crate::worker::WorkerBuilder::servers`].
    ///
    /// ```
    /// let b = gearbox_client::blocking::worker::Worker::builder().servers("gm1,gm2:4731");
    /// ```
    pub fn servers(self, list: &str) -> Self {
        self.map(|b| b.servers(list))
    }

    /// See [`crate::worker::WorkerBuilder::server`].
    ///
    /// ```
    /// use gearbox_client::ServerAddr;
    /// let b = gearbox_client::blocking::worker::Worker::builder().server(ServerAddr::new("gm1", 4730));
    /// ```
    pub fn server(self, addr: ServerAddr) -> Self {
        self.map(|b| b.server(addr))
    }

    /// See [`crate::worker::WorkerBuilder::client_id`].
    ///
    /// ```
    /// let b = gearbox_client::blocking::worker::Worker::builder().client_id("script-1");
    /// ```
    pub fn client_id(self, id: impl Into<Bytes>) -> Self {
        self.map(|b| b.client_id(id))
    }

    /// Jobs at once across all servers, each on its own blocking thread (default 1).
    ///
    /// ```
    /// let b = gearbox_client::blocking::worker::Worker::builder().concurrency(4);
    /// ```
    pub fn concurrency(self, jobs: usize) -> Self {
        self.map(|b| b.concurrency(jobs))
    }

    /// Registers a blocking `handler` for `function`; a panic fails the job (WORK_FAIL).
    ///
    /// ```
    /// use gearbox_client::{blocking::worker::{Job, Worker}, worker::JobError};
    /// let b = Worker::builder().register("len", |job: &Job| {
    ///     Ok::<_, JobError>(job.payload().len().to_string())
    /// });
    /// ```
    pub fn register<F, T, E>(self, function: &str, handler: F) -> Self
    where
        F: Fn(&Job) -> std::result::Result<T, E> + Send + Sync + 'static,
        T: Into<Bytes>,
        E: Into<JobError>,
    {
        let h = wrap(handler);
        self.map(|b| b.register(function, h))
    }

    /// Registers a blocking `handler` with a time limit (CAN_DO_TIMEOUT); see
    /// [`crate::worker::WorkerBuilder::register_with_timeout`].
    ///
    /// ```
    /// use gearbox_client::{blocking::worker::{Job, Worker}, worker::JobError};
    /// use std::time::Duration;
    /// let b = Worker::builder().register_with_timeout("ping", Duration::from_secs(5),
    ///     |_job: &Job| Ok::<_, JobError>("pong"));
    /// ```
    pub fn register_with_timeout<F, T, E>(
        self,
        function: &str,
        timeout: Duration,
        handler: F,
    ) -> Self
    where
        F: Fn(&Job) -> std::result::Result<T, E> + Send + Sync + 'static,
        T: Into<Bytes>,
        E: Into<JobError>,
    {
        let h = wrap(handler);
        self.map(|b| b.register_with_timeout(function, timeout, h))
    }

    /// See [`crate::worker::WorkerBuilder::reconnect_backoff`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = gearbox_client::blocking::worker::Worker::builder()
    ///     .reconnect_backoff(Duration::from_millis(50), Duration::from_secs(2));
    /// ```
    pub fn reconnect_backoff(self, min: Duration, max: Duration) -> Self {
        self.map(|b| b.reconnect_backoff(min, max))
    }

    /// See [`crate::worker::WorkerBuilder::shutdown_timeout`]. A blocking handler cannot be
    /// cancelled: one still running at the timeout is abandoned (its result is not reported)
    /// but its thread runs on until the handler returns.
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = gearbox_client::blocking::worker::Worker::builder().shutdown_timeout(Duration::from_secs(5));
    /// ```
    pub fn shutdown_timeout(self, timeout: Duration) -> Self {
        self.map(|b| b.shutdown_timeout(timeout))
    }

    /// See [`crate::worker::WorkerBuilder::give_up_after`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = gearbox_client::blocking::worker::Worker::builder().give_up_after(Duration::from_secs(30));
    /// ```
    pub fn give_up_after(self, after: Duration) -> Self {
        self.map(|b| b.give_up_after(after))
    }

    /// See [`crate::worker::WorkerBuilder::exception_mode`].
    ///
    /// ```
    /// use gearbox_client::worker::ExceptionMode;
    /// let b = gearbox_client::blocking::worker::Worker::builder()
    ///     .exception_mode(ExceptionMode::WarningThenFail);
    /// ```
    pub fn exception_mode(self, mode: ExceptionMode) -> Self {
        self.map(|b| b.exception_mode(mode))
    }

    /// See [`crate::worker::WorkerBuilder::tls`].
    pub fn tls(self, tls: crate::TlsConfig) -> Self {
        self.map(|b| b.tls(tls))
    }

    /// Runs `hook` on a blocking thread every `every`; see
    /// [`crate::worker::WorkerBuilder::periodic`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = gearbox_client::blocking::worker::Worker::builder()
    ///     .periodic(Duration::from_secs(60), || println!("still alive"));
    /// ```
    pub fn periodic<F>(self, every: Duration, hook: F) -> Self
    where
        F: Fn() + Send + Sync + 'static,
    {
        let hook = Arc::new(hook);
        self.map(|b| {
            b.periodic(every, move || {
                let hook = hook.clone();
                async move {
                    if let Err(e) = tokio::task::spawn_blocking(move || hook()).await {
                        if e.is_panic() {
                            // Let the async side log it like any panicking hook.
                            std::panic::resume_unwind(e.into_panic());
                        }
                    }
                }
            })
        })
    }

    /// Checks the settings and starts the worker's private runtime (nothing connects before
    /// a `run_*` call).
    ///
    /// ```
    /// use gearbox_client::{blocking::worker::Worker, Error};
    /// let err = Worker::builder().servers("gm1").build().unwrap_err();
    /// assert!(matches!(err, Error::InvalidArgument(_))); // no function registered
    /// ```
    pub fn build(self) -> Result<Worker> {
        let inner = self.inner.build()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        Ok(Worker {
            inner: Some(inner),
            runtime: Some(runtime),
        })
    }

    fn map(self, f: impl FnOnce(worker::WorkerBuilder) -> worker::WorkerBuilder) -> Self {
        WorkerBuilder {
            inner: f(self.inner),
        }
    }
}

/// Turns a blocking handler into an async one that runs it on a blocking thread.
fn wrap<F, T, E>(handler: F) -> impl worker::Handler
where
    F: Fn(&Job) -> std::result::Result<T, E> + Send + Sync + 'static,
    T: Into<Bytes>,
    E: Into<JobError>,
{
    let handler = Arc::new(handler);
    move |job: worker::Job| {
        let handler = handler.clone();
        async move {
            let job = Job::new(job);
            let run = move || handler(&job).map(Into::into).map_err(Into::into);
            match tokio::task::spawn_blocking(run).await {
                Ok(r) => r,
                // The async side catches it and fails the job.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => Err::<Bytes, JobError>(JobError::Fail),
            }
        }
    }
}

/// A Gearman worker for programs without an async runtime. It owns a private runtime (one
/// thread for the connections, a blocking thread per running job); do not use it inside an
/// async runtime (use [`crate::worker::Worker`] there).
///
/// ```no_run
/// use gearbox_client::{blocking::worker::{Job, Worker}, worker::JobError};
///
/// let worker = Worker::builder()
///     .servers("127.0.0.1:4730")
///     .register("reverse", |job: &Job| {
///         Ok::<_, JobError>(job.payload().iter().rev().copied().collect::<Vec<u8>>())
///     })
///     .build()?;
/// let reason = worker.run_until_signal()?; // Ctrl-C or SIGTERM
/// println!("{reason}");
/// # Ok::<(), gearbox_client::Error>(())
/// ```
pub struct Worker {
    inner: Option<worker::Worker>,
    runtime: Option<Runtime>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blocking::Worker")
            .field("worker", &self.inner)
            .finish()
    }
}

impl Worker {
    /// Starts building a blocking worker.
    ///
    /// ```
    /// let b = gearbox_client::blocking::worker::Worker::builder();
    /// ```
    pub fn builder() -> WorkerBuilder {
        WorkerBuilder::default()
    }

    /// Serves jobs until SIGINT (Ctrl-C) or, on Unix, SIGTERM; then shuts down gracefully.
    ///
    /// ```no_run
    /// # fn demo(worker: gearbox_client::blocking::worker::Worker) -> gearbox_client::Result<()> {
    /// let reason = worker.run_until_signal()?;
    /// # Ok(()) }
    /// ```
    pub fn run_until_signal(self) -> Result<StopReason> {
        self.run_with(signal())
    }

    /// Serves jobs until a message arrives on `stop` or every sender of it is dropped; then
    /// shuts down gracefully. Another thread holds the sender.
    ///
    /// ```no_run
    /// # fn demo(worker: gearbox_client::blocking::worker::Worker) -> gearbox_client::Result<()> {
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// std::thread::spawn(move || {
    ///     std::thread::sleep(std::time::Duration::from_secs(60));
    ///     let _ = tx.send(());
    /// });
    /// let reason = worker.run_until(rx)?;
    /// # Ok(()) }
    /// ```
    pub fn run_until(self, stop: std::sync::mpsc::Receiver<()>) -> Result<StopReason> {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // Blocks on a std channel, so it gets its own thread; it ends with the channel.
        std::thread::spawn(move || {
            let _ = stop.recv();
            let _ = tx.send(());
        });
        self.run_with(rx)
    }

    fn run_with(mut self, shutdown: impl std::future::Future) -> Result<StopReason> {
        let (Some(worker), Some(runtime)) = (self.inner.take(), self.runtime.take()) else {
            return Err(Error::Shutdown);
        };
        let reason = runtime.block_on(worker.run(shutdown));
        // Abandoned blocking handlers cannot be stopped: do not wait for them.
        runtime.shutdown_background();
        reason
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Safe to drop anywhere, even inside another runtime.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Resolves on SIGINT, or SIGTERM on Unix.
async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the worker")
            }
        }
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::error!(error = %e, "cannot watch Ctrl-C; the worker runs until killed");
        std::future::pending::<()>().await;
    }
}

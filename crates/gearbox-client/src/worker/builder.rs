//! [`WorkerBuilder`]: servers, functions and settings of a [`Worker`], each with a documented
//! default.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;

use super::handler::{ExceptionMode, Handler};
use super::Worker;
use crate::servers::{parse_servers, servers_from_env};
use crate::{Error, Result, ServerAddr, TlsConfig};

/// Default for [`WorkerBuilder::concurrency`]: one job at a time.
pub const DEFAULT_CONCURRENCY: usize = 1;
/// Default first delay of [`WorkerBuilder::reconnect_backoff`].
pub const DEFAULT_RECONNECT_MIN: Duration = Duration::from_millis(100);
/// Default longest delay of [`WorkerBuilder::reconnect_backoff`].
pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(10);
/// Default for [`WorkerBuilder::shutdown_timeout`].
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest function name gearmand accepts.
const MAX_FUNCTION: usize = 512;
/// Longest client id gearmand accepts.
const MAX_CLIENT_ID: usize = 254;
/// Largest CAN_DO_TIMEOUT: gearmand reads it into a C `int` of milliseconds.
const MAX_TIMEOUT_MS: u128 = i32::MAX as u128;

/// One registered function.
pub(crate) struct Registration {
    /// Function name.
    pub name: Arc<str>,
    /// CAN_DO_TIMEOUT in milliseconds, if any.
    pub timeout_ms: Option<u64>,
    /// The handler.
    pub handler: Arc<dyn Handler>,
}

/// A hook run every `every`.
pub(crate) struct Periodic {
    pub every: Duration,
    pub hook: Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>,
}

/// Everything a running worker needs, fixed at [`WorkerBuilder::build`].
pub(crate) struct Settings {
    pub servers: Vec<ServerAddr>,
    pub client_id: Option<Bytes>,
    pub concurrency: usize,
    /// Keyed by function name; ordered, so registration packets go out in a stable order.
    pub functions: BTreeMap<Bytes, Registration>,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub shutdown_timeout: Duration,
    pub give_up_after: Option<Duration>,
    pub periodic: Vec<Periodic>,
    pub exception_mode: ExceptionMode,
    pub tls: Option<TlsConfig>,
}

/// Builds a [`Worker`]. Start with [`Worker::builder`].
///
/// | setting | default |
/// |---|---|
/// | [`servers`](Self::servers) / [`server`](Self::server) | `GEARMAN_SERVERS`; none set is an error |
/// | [`client_id`](Self::client_id) | none (the server shows `-`) |
/// | [`concurrency`](Self::concurrency) | 1 job at a time, across all servers |
/// | [`reconnect_backoff`](Self::reconnect_backoff) | 100 ms, doubling up to 10 s |
/// | [`shutdown_timeout`](Self::shutdown_timeout) | 30 s |
/// | [`give_up_after`](Self::give_up_after) | never: reconnect forever |
/// | [`exception_mode`](Self::exception_mode) | WORK_EXCEPTION |
/// | [`tls`](Self::tls) | off: plain TCP |
///
/// Mistakes (a bad server list, an invalid function name) are reported by
/// [`build`](Self::build), so the calls chain.
///
/// ```
/// use gearbox_client::worker::{Job, JobError, Worker};
/// use std::time::Duration;
///
/// let worker = Worker::builder()
///     .servers("127.0.0.1:4730,127.0.0.1:4731")
///     .client_id("resizer-1")
///     .concurrency(4)
///     .register("reverse", |job: Job| async move {
///         Ok::<_, JobError>(job.payload().iter().rev().copied().collect::<Vec<u8>>())
///     })
///     .register_with_timeout("slow", Duration::from_secs(60), |_job: Job| async {
///         Ok::<_, JobError>("done")
///     })
///     .build()?;
/// # Ok::<(), gearbox_client::Error>(())
/// ```
pub struct WorkerBuilder {
    servers: Vec<ServerAddr>,
    client_id: Option<Bytes>,
    concurrency: usize,
    functions: BTreeMap<Bytes, Registration>,
    reconnect_min: Duration,
    reconnect_max: Duration,
    shutdown_timeout: Duration,
    give_up_after: Option<Duration>,
    periodic: Vec<Periodic>,
    exception_mode: ExceptionMode,
    tls: Option<TlsConfig>,
    /// The first mistake made while building, reported by `build`.
    error: Option<Error>,
}

impl Default for WorkerBuilder {
    fn default() -> Self {
        WorkerBuilder {
            servers: Vec::new(),
            client_id: None,
            concurrency: DEFAULT_CONCURRENCY,
            functions: BTreeMap::new(),
            reconnect_min: DEFAULT_RECONNECT_MIN,
            reconnect_max: DEFAULT_RECONNECT_MAX,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            give_up_after: None,
            periodic: Vec::new(),
            exception_mode: ExceptionMode::Exception,
            tls: None,
            error: None,
        }
    }
}

impl WorkerBuilder {
    /// A builder with the defaults above; same as [`Worker::builder`].
    ///
    /// ```
    /// let b = gearbox_client::worker::WorkerBuilder::new();
    /// ```
    pub fn new() -> WorkerBuilder {
        WorkerBuilder::default()
    }

    /// Adds the servers of a `host[:port],host[:port]` list (default port 4730). Without any
    /// server, `GEARMAN_SERVERS` is used.
    ///
    /// ```
    /// let b = gearbox_client::worker::Worker::builder().servers("gm1,gm2:4731");
    /// ```
    pub fn servers(mut self, list: &str) -> Self {
        match parse_servers(list) {
            Ok(l) => self.servers.extend(l),
            Err(e) => self.fail(e),
        }
        self
    }

    /// Adds one server.
    ///
    /// ```
    /// use gearbox_client::ServerAddr;
    /// let b = gearbox_client::worker::Worker::builder().server(ServerAddr::new("gm1", 4730));
    /// ```
    pub fn server(mut self, addr: ServerAddr) -> Self {
        self.servers.push(addr);
        self
    }

    /// Connects to every server over TLS with these settings (CA, client certificate,
    /// server name). A failed handshake ([`Error::Tls`]) is logged and retried with the
    /// reconnect back-off, like any unreachable server.
    ///
    /// ```no_run
    /// use gearbox_client::TlsConfig;
    /// let tls = TlsConfig::builder().ca_file("ca.pem").build()?;
    /// let b = gearbox_client::worker::Worker::builder().servers("gm1").tls(tls);
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the id the servers show for this worker (SET_CLIENT_ID, at most 254 bytes).
    ///
    /// ```
    /// let b = gearbox_client::worker::Worker::builder().client_id("thumbnailer-3");
    /// ```
    pub fn client_id(mut self, id: impl Into<Bytes>) -> Self {
        let id = id.into();
        if id.is_empty() || id.len() > MAX_CLIENT_ID {
            self.fail(Error::InvalidArgument(format!(
                "client id must be 1 to {MAX_CLIENT_ID} bytes, got {}",
                id.len()
            )));
        }
        self.client_id = Some(id);
        self
    }

    /// How many jobs may run at once, in total across all servers (at least 1). The worker
    /// opens this many connections to each server, each running one job at a time (see the
    /// [module docs](super) for why).
    ///
    /// ```
    /// let b = gearbox_client::worker::Worker::builder().concurrency(8);
    /// ```
    pub fn concurrency(mut self, jobs: usize) -> Self {
        if jobs == 0 {
            self.fail(Error::InvalidArgument(
                "concurrency must be at least 1 job".into(),
            ));
        }
        self.concurrency = jobs;
        self
    }

    /// Registers `handler` for `function` (CAN_DO). Registering a name again replaces the
    /// earlier handler.
    ///
    /// ```
    /// use gearbox_client::worker::{Job, JobError, Worker};
    ///
    /// async fn upper(job: Job) -> Result<String, JobError> {
    ///     Ok(job.payload_str()?.to_uppercase())
    /// }
    /// let b = Worker::builder().register("upper", upper);
    /// ```
    pub fn register(self, function: &str, handler: impl Handler) -> Self {
        self.add(function, None, Arc::new(handler))
    }

    /// Registers `handler` for `function` with a time limit (CAN_DO_TIMEOUT, sent as ASCII
    /// whole seconds, rounded up, as Perl's, PHP's and Python's workers send it: gearboxd reads
    /// seconds by default; gearmand 1.1.20, and gearboxd with `--can-do-timeout-unit
    /// milliseconds`, read the number as milliseconds). What the server does when a job
    /// overruns it is its choice: gearbox fails the job by default (`timeout_action`), gearmand
    /// re-queues it and ignores the late result.
    ///
    /// ```
    /// use gearbox_client::worker::{Job, JobError, Worker};
    /// use std::time::Duration;
    ///
    /// let b = Worker::builder().register_with_timeout("render", Duration::from_secs(30),
    ///     |job: Job| async move { Ok::<_, JobError>(job.payload().clone()) });
    /// ```
    pub fn register_with_timeout(
        self,
        function: &str,
        timeout: Duration,
        handler: impl Handler,
    ) -> Self {
        // Round up: a timeout of 0.5 ms is 1 ms, not "no timeout".
        let ms = timeout.as_nanos().div_ceil(1_000_000);
        let mut b = self;
        if ms == 0 || ms > MAX_TIMEOUT_MS {
            b.fail(Error::InvalidArgument(format!(
                "timeout of {function:?} must be from 1 ms to {MAX_TIMEOUT_MS} ms, got {timeout:?}"
            )));
        }
        let ms = u64::try_from(ms).unwrap_or(u64::MAX);
        b.add(function, Some(ms), Arc::new(handler))
    }

    /// Sets the delay before reconnecting to a server after a failed connection attempt or a
    /// lost connection: `min` at first, doubling up to `max`, back to `min` after a
    /// successful connection.
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = gearbox_client::worker::Worker::builder()
    ///     .reconnect_backoff(Duration::from_millis(50), Duration::from_secs(5));
    /// ```
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        if min.is_zero() || min > max {
            self.fail(Error::InvalidArgument(format!(
                "reconnect back-off needs 0 < min <= max, got {min:?}..{max:?}"
            )));
        }
        self.reconnect_min = min;
        self.reconnect_max = max;
        self
    }

    /// Sets how long running jobs may take to finish once shutdown was requested; jobs still
    /// running then are abandoned (see [`StopReason`](super::StopReason)).
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = gearbox_client::worker::Worker::builder().shutdown_timeout(Duration::from_secs(5));
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Stops the worker with [`StopReason::ServersUnreachable`](super::StopReason) when no
    /// server could be reached for `after`; by default it reconnects forever. Useful for
    /// scripts and one-shot workers.
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = gearbox_client::worker::Worker::builder().give_up_after(Duration::from_secs(60));
    /// ```
    pub fn give_up_after(mut self, after: Duration) -> Self {
        self.give_up_after = Some(after);
        self
    }

    /// Sets how a handler's [`JobError::Exception`](super::JobError) is sent: WORK_EXCEPTION
    /// (default), or WORK_WARNING + WORK_FAIL for gearmand 1.1.x with libgearman clients; see
    /// [`ExceptionMode`].
    ///
    /// ```
    /// use gearbox_client::worker::{ExceptionMode, Worker};
    /// let b = Worker::builder().exception_mode(ExceptionMode::WarningThenFail);
    /// ```
    pub fn exception_mode(mut self, mode: ExceptionMode) -> Self {
        self.exception_mode = mode;
        self
    }

    /// Runs `hook` every `every` while the worker runs, for other work (metrics, cache
    /// refreshes). The first run is one period after start; a run that overruns delays the
    /// next; a panicking run is logged and the next one still happens. Hooks do not count
    /// against [`concurrency`](Self::concurrency).
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = gearbox_client::worker::Worker::builder()
    ///     .periodic(Duration::from_secs(10), || async { println!("still alive") });
    /// ```
    pub fn periodic<F, Fut>(mut self, every: Duration, hook: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if every.is_zero() {
            self.fail(Error::InvalidArgument(
                "a periodic hook needs a period above zero".into(),
            ));
            return self;
        }
        self.periodic.push(Periodic {
            every,
            hook: Arc::new(move || hook().boxed()),
        });
        self
    }

    /// Checks the settings and builds the worker. Fails with [`Error::NoServers`] when no
    /// server was given and `GEARMAN_SERVERS` is unset, and with [`Error::InvalidArgument`]
    /// for any other mistake (no function registered, a bad name or setting).
    ///
    /// ```
    /// use gearbox_client::{worker::Worker, Error};
    ///
    /// let err = Worker::builder().servers("gm1").build().unwrap_err();
    /// assert!(matches!(err, Error::InvalidArgument(_))); // no function registered
    /// ```
    pub fn build(mut self) -> Result<Worker> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.servers.is_empty() {
            self.servers = servers_from_env().ok_or(Error::NoServers)??;
        }
        let mut seen = std::collections::HashSet::new();
        self.servers.retain(|s| seen.insert(s.clone()));
        if self.functions.is_empty() {
            return Err(Error::InvalidArgument(
                "no function registered: call .register(name, handler) before .build()".into(),
            ));
        }
        Ok(Worker::new(Settings {
            servers: self.servers,
            client_id: self.client_id,
            concurrency: self.concurrency,
            functions: self.functions,
            reconnect_min: self.reconnect_min,
            reconnect_max: self.reconnect_max,
            shutdown_timeout: self.shutdown_timeout,
            give_up_after: self.give_up_after,
            periodic: self.periodic,
            exception_mode: self.exception_mode,
            tls: self.tls,
        }))
    }

    fn add(mut self, function: &str, timeout_ms: Option<u64>, handler: Arc<dyn Handler>) -> Self {
        if function.is_empty() || function.len() > MAX_FUNCTION || function.contains('\0') {
            self.fail(Error::InvalidArgument(format!(
                "function name {function:?} must be 1 to {MAX_FUNCTION} bytes without NUL"
            )));
            return self;
        }
        let name: Arc<str> = function.into();
        self.functions.insert(
            Bytes::copy_from_slice(function.as_bytes()),
            Registration {
                name,
                timeout_ms,
                handler,
            },
        );
        self
    }

    /// Remembers the first mistake for `build`.
    fn fail(&mut self, e: Error) {
        self.error.get_or_insert(e);
    }
}

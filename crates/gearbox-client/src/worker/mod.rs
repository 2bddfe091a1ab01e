//! Gearman workers: register functions, take jobs from every server, run them, shut down
//! gracefully.
//!
//! ```no_run
//! use gearbox_client::worker::{Job, JobError, Worker};
//!
//! # async fn demo() -> gearbox_client::Result<()> {
//! let worker = Worker::builder()
//!     .servers("127.0.0.1:4730")
//!     .concurrency(4)
//!     .register("upper", |job: Job| async move {
//!         job.send_status(1, 2).await?;
//!         Ok::<_, JobError>(job.payload_str()?.to_uppercase())
//!     })
//!     .build()?;
//! let stopped = worker.run(tokio::signal::ctrl_c()).await?;
//! println!("{stopped}");
//! # Ok(()) }
//! ```
//!
//! ## How it runs
//!
//! - **Slots**: the worker opens [`concurrency`](WorkerBuilder::concurrency) connections to
//!   every server, each running one job at a time (as libgearman workers do). Each registers
//!   every function (CAN_DO, or CAN_DO_TIMEOUT with ASCII milliseconds), sets the client id,
//!   and checks the server answers an ECHO. Then it loops: GRAB_JOB_UNIQ; NO_JOB -> PRE_SLEEP
//!   and wait for NOOP; JOB_ASSIGN_UNIQ -> run the job, send its result, grab again.
//! - **Concurrency** is a semaphore shared by all slots of all servers, with one permit per
//!   job that may run at once. A slot asks for a job only while holding a free permit, and
//!   the job keeps it until its result is queued; slots waiting for a permit queue fairly. So
//!   at most `concurrency` jobs run in total, and one busy server can use all of them while
//!   the others are idle.
//! - **Why one job per connection**: gearmand (1.1.20) keeps one CAN_DO_TIMEOUT timer per
//!   worker connection, so a second job grabbed on the same connection runs without a
//!   timeout, and a PRE_SLEEP sent while a job runs cancels its timer. One job per
//!   connection keeps timeouts working there and is what every server expects. The cost is
//!   `concurrency x servers` connections, and a new job wakes (NOOP) every sleeping slot of a
//!   server, most of which then get NO_JOB (gearmand's `--worker-wakeup` bounds that).
//! - **Handlers** run as their own Tokio tasks; a panic is caught and fails the job
//!   (WORK_FAIL), and the worker goes on.
//! - **Reconnects** follow a lost connection with exponential back-off
//!   ([`WorkerBuilder::reconnect_backoff`]). A job running when its connection died cannot
//!   report its result (the handle belongs to that connection): it is logged, and the server
//!   re-queues the job or fails it.
//! - **Refusals**: a server whose access rules refuse a registered function (ERROR
//!   PERMISSION_DENIED during the handshake) is logged as an error and not retried; when
//!   every server refuses, `run` returns [`StopReason::PermissionDenied`].
//! - **Shutdown**: when the future given to [`Worker::run`] resolves, connections stop asking
//!   for jobs (a grab already sent is answered, and a job it brings is run). Abilities are not
//!   dropped with CANT_DO / RESET_ABILITIES, because gearmand re-queues the running jobs of a
//!   worker that does so. Running jobs get [`WorkerBuilder::shutdown_timeout`] to finish; the
//!   rest are cancelled and their connections closed, so the server re-queues them. `run`
//!   returns a [`StopReason`] with the counts.
//!
//! ## Layout
//!
//! - [`builder`]: [`WorkerBuilder`] and its defaults.
//! - [`job`]: [`Job`], what a handler receives.
//! - [`handler`]: [`Handler`], [`JobError`], [`ExceptionMode`].
//! - [`stop`]: [`StopReason`], why `run` returned.
//! - `session`, `connection`, `jobs`, `exec`, `periodic`, `health`: one slot's loop, one
//!   connection's handshake and writer, a slot's running jobs, running one job, periodic
//!   hooks, giving up.

pub mod builder;
mod connection;
mod exec;
pub mod handler;
mod health;
pub mod job;
mod jobs;
mod periodic;
mod session;
pub mod stop;

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use builder::WorkerBuilder;
pub use handler::{ExceptionMode, Handler, HandlerFuture, JobError};
pub use job::Job;
pub use stop::StopReason;

use builder::Settings;
use health::Health;
use session::{Session, Shared};

/// A Gearman worker: functions registered with handlers, served from every configured
/// server until [`run`](Worker::run)'s shutdown future resolves. Build one with
/// [`Worker::builder`].
///
/// ```no_run
/// use gearbox_client::worker::{Job, JobError, Worker};
///
/// # async fn demo() -> gearbox_client::Result<()> {
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let worker = Worker::builder()
///     .servers("127.0.0.1:4730")
///     .register("echo", |job: Job| async move { Ok::<_, JobError>(job.payload().clone()) })
///     .build()?;
/// let running = tokio::spawn(worker.run(stopped));
/// // ... later:
/// stop.send(()).unwrap();
/// let reason = running.await.unwrap()?;
/// # Ok(()) }
/// ```
pub struct Worker {
    settings: Arc<Settings>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.settings;
        f.debug_struct("Worker")
            .field("servers", &s.servers)
            .field(
                "functions",
                &s.functions.values().map(|r| &r.name).collect::<Vec<_>>(),
            )
            .field("concurrency", &s.concurrency)
            .finish_non_exhaustive()
    }
}

/// Why [`Worker::run`] stopped on its own.
enum Ended {
    Unreachable((std::time::Duration, String)),
    Refused(String),
}

impl Worker {
    /// Starts building a worker; see [`WorkerBuilder`] for the settings and their defaults.
    ///
    /// ```
    /// use gearbox_client::worker::{Job, JobError, Worker};
    ///
    /// let worker = Worker::builder()
    ///     .servers("127.0.0.1")
    ///     .register("noop", |_job: Job| async { Ok::<_, JobError>("") })
    ///     .build()?;
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn builder() -> WorkerBuilder {
        WorkerBuilder::new()
    }

    pub(crate) fn new(settings: Settings) -> Worker {
        Worker {
            settings: Arc::new(settings),
        }
    }

    /// The function names this worker registers, in the order it sends them.
    ///
    /// ```
    /// use gearbox_client::worker::{Job, JobError, Worker};
    ///
    /// let worker = Worker::builder()
    ///     .servers("127.0.0.1")
    ///     .register("b", |_job: Job| async { Ok::<_, JobError>("") })
    ///     .register("a", |_job: Job| async { Ok::<_, JobError>("") })
    ///     .build()?;
    /// assert_eq!(worker.functions().collect::<Vec<_>>(), ["a", "b"]);
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn functions(&self) -> impl Iterator<Item = &str> {
        self.settings.functions.values().map(|r| &*r.name)
    }

    /// Serves jobs from every server until `shutdown` resolves (its output is ignored), then
    /// shuts down gracefully and says why it stopped. It also stops by itself when every
    /// server stays unreachable for [`WorkerBuilder::give_up_after`], and when every server
    /// refuses its functions ([`StopReason::PermissionDenied`]; a refusing server is logged
    /// and not retried).
    ///
    /// Unreachable servers are retried with back-off, not reported as errors; see the
    /// [module docs](self) for the whole life cycle. Dropping the returned future cancels
    /// every running job at once.
    ///
    /// ```no_run
    /// # use gearbox_client::worker::{Job, JobError, Worker};
    /// # async fn demo(worker: Worker) -> gearbox_client::Result<()> {
    /// let reason = worker.run(tokio::signal::ctrl_c()).await?;
    /// tracing::info!(%reason, "worker stopped");
    /// # Ok(()) }
    /// ```
    pub async fn run(self, shutdown: impl Future) -> crate::Result<StopReason> {
        let settings = self.settings;
        let shared = Arc::new(Shared {
            permits: Arc::new(Semaphore::new(settings.concurrency)),
            health: Arc::new(Health::new(settings.servers.len() * settings.concurrency)),
            settings: settings.clone(),
        });
        let (stop_tx, stop_rx) = watch::channel(None);
        let mut sessions = JoinSet::new();
        for (s, addr) in settings.servers.iter().enumerate() {
            for slot in 0..settings.concurrency {
                let index = s * settings.concurrency + slot;
                let session =
                    Session::new(index, slot, addr.clone(), shared.clone(), stop_rx.clone());
                sessions.spawn(session.run());
            }
        }
        let mut hooks = JoinSet::new();
        for p in &settings.periodic {
            let p = builder::Periodic {
                every: p.every,
                hook: p.hook.clone(),
            };
            hooks.spawn(periodic::run(p, stop_rx.clone()));
        }
        tracing::info!(
            servers = settings.servers.len(),
            functions = settings.functions.len(),
            concurrency = settings.concurrency,
            "worker started"
        );

        let gave_up = tokio::select! {
            _ = shutdown => None,
            gave_up = shared.health.gave_up(settings.give_up_after) => Some(Ended::Unreachable(gave_up)),
            error = shared.health.all_refused() => Some(Ended::Refused(error)),
        };
        // Giving up: no connection is left to report results on, so nothing waits.
        let deadline = match gave_up {
            None => Instant::now() + settings.shutdown_timeout,
            Some(_) => Instant::now(),
        };
        tracing::info!(
            timeout_ms = u64::try_from(settings.shutdown_timeout.as_millis()).unwrap_or(u64::MAX),
            "worker stopping: no new jobs, waiting for running ones"
        );
        stop_tx.send_replace(Some(deadline));

        let (mut finished, mut abandoned) = (0, 0);
        while let Some(r) = sessions.join_next().await {
            match r {
                Ok(d) => {
                    finished += d.finished;
                    abandoned += d.abandoned;
                }
                Err(e) => tracing::error!(error = %e, "a server session task failed"),
            }
        }
        // Hooks get the same deadline; one still running then is cancelled.
        let _ = tokio::time::timeout_at(deadline, async {
            while hooks.join_next().await.is_some() {}
        })
        .await;
        hooks.shutdown().await;

        let reason = match gave_up {
            None => StopReason::Requested {
                finished,
                abandoned,
            },
            Some(Ended::Unreachable((down_for, last_error))) => StopReason::ServersUnreachable {
                down_for,
                last_error,
            },
            Some(Ended::Refused(error)) => StopReason::PermissionDenied { error },
        };
        tracing::info!(%reason, "worker stopped");
        Ok(reason)
    }
}

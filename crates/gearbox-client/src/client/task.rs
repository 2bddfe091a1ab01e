//! [`Task`]: a submitted foreground job as a stream of [`TaskEvent`]s, and the driver that
//! submits it, follows its WORK_* packets and retries it.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use gearbox_proto::{Request, Response};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::status::number;
use super::Client;
use crate::conn::{ConnEvent, Subscriber};
use crate::{Error, Result};

/// Something that happened to a [`Task`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskEvent {
    /// The server created the job (JOB_CREATED); comes again after each retry.
    Created {
        /// The job handle.
        handle: Bytes,
    },
    /// A chunk of data from the worker (WORK_DATA).
    Data(Bytes),
    /// A warning from the worker (WORK_WARNING).
    Warning(Bytes),
    /// Progress from the worker (WORK_STATUS).
    Status {
        /// Work done.
        numerator: u64,
        /// Work in total.
        denominator: u64,
    },
    /// The job finished with this result (WORK_COMPLETE). The last event.
    Complete(Bytes),
    /// The job failed (WORK_FAIL) and no retry is left. The last event.
    Fail,
    /// The worker raised an exception (WORK_EXCEPTION). The last event.
    Exception(Bytes),
    /// The previous attempt failed or lost its connection; attempt number `attempt`
    /// (2 for the first retry) is being submitted.
    Retry {
        /// The attempt starting now, counting the first submit as 1.
        attempt: u32,
    },
}

impl TaskEvent {
    /// Whether this event ends the task.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            TaskEvent::Complete(_) | TaskEvent::Fail | TaskEvent::Exception(_)
        )
    }
}

/// What the driver needs to submit one job, again and again.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub request: Request,
    pub unique: Bytes,
    pub retries: u32,
    pub timeout: Option<Duration>,
}

type Events = mpsc::UnboundedSender<Result<TaskEvent>>;

/// A foreground job in progress, made by [`JobBuilder::start`](super::JobBuilder::start).
/// Read its events with [`Task::next_event`] (or as a [`Stream`]), or just
/// [`Task::wait`] for the result. Dropping a task stops following the job (the server may
/// still run it).
///
/// ```no_run
/// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
/// use gearbox_client::TaskEvent;
/// let mut task = client.job("crawl", "https://example.com").start().await?;
/// println!("handle {:?}", task.handle());
/// while let Some(event) = task.next_event().await {
///     match event? {
///         TaskEvent::Status { numerator, denominator } => println!("{numerator}/{denominator}"),
///         TaskEvent::Data(chunk) => println!("got {} bytes", chunk.len()),
///         TaskEvent::Complete(result) => println!("done: {result:?}"),
///         other => println!("{other:?}"),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Task {
    handle: Bytes,
    unique: Bytes,
    attempts: u32,
    finished: bool,
    pending: VecDeque<Result<TaskEvent>>,
    events: mpsc::UnboundedReceiver<Result<TaskEvent>>,
    driver: JoinHandle<()>,
}

impl Task {
    /// Spawns the driver and waits for the first JOB_CREATED (or the error that ends it).
    pub(crate) async fn start(client: Client, spec: Spec) -> Result<Task> {
        let (tx, events) = mpsc::unbounded_channel();
        let unique = spec.unique.clone();
        let driver = tokio::spawn(drive(client, spec, false, tx));
        let mut task = Task {
            handle: Bytes::new(),
            unique,
            attempts: 1,
            finished: false,
            pending: VecDeque::new(),
            events,
            driver,
        };
        while let Some(ev) = task.events.recv().await {
            match ev {
                Ok(TaskEvent::Created { handle }) => {
                    task.handle = handle.clone();
                    task.pending.push_back(Ok(TaskEvent::Created { handle }));
                    return Ok(task);
                }
                Ok(ev) => {
                    task.observe(&ev);
                    task.pending.push_back(Ok(ev));
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Shutdown)
    }

    /// The handle of the current attempt's job.
    pub fn handle(&self) -> &Bytes {
        &self.handle
    }

    /// The unique id the job was submitted with (given or generated).
    pub fn unique(&self) -> &Bytes {
        &self.unique
    }

    /// Attempts so far (1 plus the retries seen in the events read).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The next event; `None` after the final one. An error (lost connection without retries
    /// left, [`Error::Timeout`], a server ERROR) also ends the task.
    pub async fn next_event(&mut self) -> Option<Result<TaskEvent>> {
        futures::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Waits for the result, skipping intermediate events: WORK_COMPLETE's data, or
    /// [`Error::JobFailed`], [`Error::JobException`] or the error that ended the task.
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// let task = client.job("sum", "1 2 3").start().await?;
    /// let total = task.wait().await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait(mut self) -> Result<Bytes> {
        while let Some(ev) = self.next_event().await {
            match ev? {
                TaskEvent::Complete(data) => return Ok(data),
                TaskEvent::Fail => {
                    return Err(Error::JobFailed {
                        attempts: self.attempts,
                    })
                }
                TaskEvent::Exception(data) => return Err(Error::JobException(data)),
                _ => {}
            }
        }
        Err(Error::Shutdown)
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<TaskEvent>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let ev = match self.pending.pop_front() {
            Some(ev) => ev,
            None => match self.events.poll_recv(cx) {
                Poll::Ready(Some(ev)) => ev,
                Poll::Ready(None) => {
                    self.finished = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            },
        };
        match &ev {
            Ok(e) => self.observe(e),
            Err(_) => self.finished = true,
        }
        Poll::Ready(Some(ev))
    }

    fn observe(&mut self, ev: &TaskEvent) {
        match ev {
            TaskEvent::Created { handle } => self.handle = handle.clone(),
            TaskEvent::Retry { attempt } => self.attempts = *attempt,
            e if e.is_final() => self.finished = true,
            _ => {}
        }
    }
}

impl Stream for Task {
    type Item = Result<TaskEvent>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_event(cx)
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Submits a background job (with retries on lost connections) and returns its handle.
pub(crate) async fn submit_background(client: &Client, spec: &Spec) -> Result<Bytes> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    drive(client.clone(), spec.clone(), true, tx).await;
    while let Ok(ev) = rx.try_recv() {
        if let TaskEvent::Created { handle } = ev? {
            return Ok(handle);
        }
    }
    Err(Error::Shutdown)
}

/// Runs every attempt within the task's timeout; sends the events, or the error that ends it.
async fn drive(client: Client, spec: Spec, background: bool, tx: Events) {
    let attempts = attempts(&client, &spec, background, &tx);
    let outcome = match spec.timeout {
        Some(limit) => tokio::time::timeout(limit, attempts)
            .await
            .unwrap_or(Err(Error::Timeout(limit))),
        None => attempts.await,
    };
    if let Err(e) = outcome {
        tracing::debug!(unique = ?spec.unique, error = %e, "task ended with an error");
        let _ = tx.send(Err(e));
    }
}

/// How one attempt ended.
enum Ended {
    /// With a final event (already sent), or created in the background.
    Done,
    /// WORK_FAIL: retry or report.
    Failed,
    /// A lost or unreachable connection: retry or report.
    Lost(Error),
}

async fn attempts(client: &Client, spec: &Spec, background: bool, tx: &Events) -> Result<()> {
    let mut attempt = 1;
    loop {
        let ended = once(client, spec, background, tx).await?;
        let (retry, give_up) = match ended {
            Ended::Done => return Ok(()),
            Ended::Failed => ("job failed", Ok(TaskEvent::Fail)),
            Ended::Lost(e) => ("connection lost", Err(e)),
        };
        if attempt > spec.retries {
            return match give_up {
                Ok(ev) => {
                    let _ = tx.send(Ok(ev));
                    Ok(())
                }
                Err(e) => Err(e),
            };
        }
        attempt += 1;
        tracing::info!(unique = ?spec.unique, attempt, reason = retry, "retrying job");
        let _ = tx.send(Ok(TaskEvent::Retry { attempt }));
    }
}

/// One submit and, in the foreground, the job's events up to its end.
async fn once(client: &Client, spec: &Spec, background: bool, tx: &Events) -> Result<Ended> {
    let pool = &client.inner.pool;
    let start = super::unique::server_index(&spec.unique, pool.len());
    let conn = match pool.conn_from(start).await {
        Ok(c) => c,
        Err(e @ Error::Unreachable { .. }) => return Ok(Ended::Lost(e)),
        Err(e) => return Err(e),
    };
    let (subscriber, mut work) = match background {
        true => (None, None),
        false => {
            let (s, rx) = Subscriber::new();
            (Some(s), Some(rx))
        }
    };
    let (handle, _route) = match conn.submit(spec.request.clone(), subscriber).await {
        Ok(created) => created,
        Err(e @ Error::Disconnected { .. }) => return Ok(Ended::Lost(e)),
        Err(e) => return Err(e),
    };
    tracing::debug!(server = %conn.server(), handle = ?handle, unique = ?spec.unique, "job created");
    let _ = tx.send(Ok(TaskEvent::Created { handle }));
    let Some(work) = work.as_mut() else {
        return Ok(Ended::Done);
    };
    while let Some(ev) = work.recv().await {
        let event = match ev {
            ConnEvent::Lost(e) => return Ok(Ended::Lost(e)),
            ConnEvent::Work(resp) => match resp {
                Response::WorkData { data, .. } => TaskEvent::Data(data),
                Response::WorkWarning { data, .. } => TaskEvent::Warning(data),
                Response::WorkStatus {
                    numerator,
                    denominator,
                    ..
                } => TaskEvent::Status {
                    numerator: number(&numerator),
                    denominator: number(&denominator),
                },
                Response::WorkComplete { data, .. } => TaskEvent::Complete(data),
                Response::WorkException { data, .. } => TaskEvent::Exception(data),
                Response::WorkFail { .. } => return Ok(Ended::Failed),
                _ => continue,
            },
        };
        let done = event.is_final();
        let _ = tx.send(Ok(event));
        if done {
            return Ok(Ended::Done);
        }
    }
    // Only a closing connection drops a subscriber, and it says so first; be safe anyway.
    Ok(Ended::Lost(Error::Disconnected {
        server: conn.server().to_string(),
        reason: "the connection stopped delivering this job's packets".into(),
    }))
}

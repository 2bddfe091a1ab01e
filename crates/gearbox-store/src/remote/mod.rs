//! The writer task shared by the stores that talk to a database server (PostgreSQL, MySQL).
//!
//! Every request reaches the task over one channel, so requests are served in the order they
//! were made. Consecutive commit requests are drained into one group, applied in one
//! transaction by the [`Backend`] (group commit): while one transaction commits, the next
//! ones queue up and then share the following one. Every caller of a group is answered after
//! its COMMIT.
//!
//! When the connection is lost the task drops it and reconnects with exponential back-off
//! (also while idle). Requests made meanwhile fail at once with [`StoreError::Unavailable`]
//! unless a reconnection attempt is due, in which case they wait for that one attempt. An
//! outage is logged once when it starts and once when it ends.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::{Batch, BoxFuture, StoreError, StoredJob};

mod task;

use task::Writer;

/// First wait before reconnecting after a loss; doubled after each failed attempt.
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// The longest wait between two reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Makes a new handle for each imported gearmand job.
pub type HandleMaker = Box<dyn FnMut() -> Bytes + Send>;

/// Where the answer to a request goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// What a database server store does on its connection; the writer task does the rest.
pub trait Backend: Send + 'static {
    /// A live connection.
    type Conn: Send;

    /// Connects, creates our table if missing and checks it.
    fn connect(&mut self) -> impl Future<Output = Result<Self::Conn, StoreError>> + Send;

    /// Whether the driver already knows the connection is gone (checked before each use).
    fn is_closed(&self, conn: &Self::Conn) -> bool {
        let _ = conn;
        false
    }

    /// Applies the net effect of `batches`, in order, in one transaction.
    fn apply(
        &mut self,
        conn: &mut Self::Conn,
        batches: &[Batch],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every stored job in replay order.
    fn load(
        &mut self,
        conn: &mut Self::Conn,
    ) -> impl Future<Output = Result<Vec<StoredJob>, StoreError>> + Send;

    /// Checks a gearmand table name before anything else happens (before connecting).
    fn check_table(&self, table: &str) -> Result<(), StoreError> {
        let _ = table;
        Ok(())
    }

    /// Moves the rows of a gearmand queue table into ours in one transaction: `Some(count)`
    /// once committed, `None` when there is no such table (and no transaction).
    fn import(
        &mut self,
        conn: &mut Self::Conn,
        table: &str,
        new_handle: &mut (dyn FnMut() -> Bytes + Send),
    ) -> impl Future<Output = Result<Option<usize>, StoreError>> + Send;

    /// After a failed [`Backend::apply`] or [`Backend::import`] that left the connection up:
    /// ends the transaction. `false` drops the connection (nothing half done may linger).
    fn rollback(&mut self, conn: &mut Self::Conn) -> impl Future<Output = bool> + Send {
        let _ = conn;
        std::future::ready(true)
    }

    /// Closes a connection that is no longer wanted.
    fn disconnect(&mut self, conn: Self::Conn) -> impl Future<Output = ()> + Send {
        drop(conn);
        std::future::ready(())
    }
}

/// What a store has done since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteStats {
    /// Successful transactions (one per group commit, plus imports).
    pub transactions: u64,
    /// Batches committed.
    pub batches: u64,
    /// Jobs written.
    pub jobs_persisted: u64,
    /// Removals applied.
    pub jobs_removed: u64,
    /// Groups of commits that failed.
    pub failed_transactions: u64,
    /// Successful connections.
    pub connects: u64,
}

/// What the store asks of its writer task.
pub(crate) enum Request {
    Commit {
        batch: Batch,
        reply: Reply<()>,
    },
    Load {
        reply: Reply<Vec<StoredJob>>,
    },
    Import {
        table: String,
        new_handle: HandleMaker,
        reply: Reply<usize>,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

/// Counters shared between the handle and the writer task.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub transactions: AtomicU64,
    pub batches: AtomicU64,
    pub persisted: AtomicU64,
    pub removed: AtomicU64,
    pub failures: AtomicU64,
    pub connects: AtomicU64,
}

/// The handle of a running writer task: queues requests and reads the counters.
///
/// The task stops when the handle is dropped (after serving what was already queued) or
/// closed.
#[derive(Debug)]
pub struct Remote {
    requests: mpsc::UnboundedSender<Request>,
    counters: Arc<Counters>,
}

impl Remote {
    /// Connects once (that first connection must succeed) and spawns the writer task on the
    /// current tokio runtime. `location` names the server in logs, without password.
    pub async fn start<B: Backend>(backend: B, location: String) -> Result<Self, StoreError> {
        let counters = Arc::new(Counters::default());
        let mut writer = Writer {
            backend,
            location,
            counters: counters.clone(),
            conn: None,
            failing: false,
            backoff: MIN_BACKOFF,
            next_attempt: Instant::now(),
            last_error: None,
        };
        writer.connect().await?;
        let (requests, inbox) = mpsc::unbounded_channel();
        tokio::spawn(writer.run(inbox));
        Ok(Remote { requests, counters })
    }

    /// Every stored job in replay order.
    pub fn load(&self) -> BoxFuture<'static, Vec<StoredJob>> {
        self.request(|reply| Request::Load { reply })
    }

    /// Applies a batch; answered after the transaction that carries it commits.
    pub fn commit(&self, batch: Batch) -> BoxFuture<'static, ()> {
        self.request(|reply| Request::Commit { batch, reply })
    }

    /// Moves the rows of a gearmand queue table into ours; how many moved.
    pub fn import(&self, table: String, new_handle: HandleMaker) -> BoxFuture<'static, usize> {
        self.request(|reply| Request::Import {
            table,
            new_handle,
            reply,
        })
    }

    /// Finishes the requests already queued, closes the connection and stops the writer.
    /// Later operations fail with [`StoreError::Closed`]. Closing twice is fine.
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.requests.send(Request::Close { reply }).is_ok() {
            let _ = done.await;
        }
    }

    /// The counters since the store was created.
    pub fn stats(&self) -> RemoteStats {
        let c = &self.counters;
        RemoteStats {
            transactions: c.transactions.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            jobs_persisted: c.persisted.load(Ordering::Relaxed),
            jobs_removed: c.removed.load(Ordering::Relaxed),
            failed_transactions: c.failures.load(Ordering::Relaxed),
            connects: c.connects.load(Ordering::Relaxed),
        }
    }

    /// Queues a request now and returns the future of its answer.
    fn request<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> Request,
    ) -> BoxFuture<'static, T> {
        let (reply, answer) = oneshot::channel();
        let sent = self.requests.send(make(reply));
        Box::pin(async move {
            sent.map_err(|_| StoreError::Closed)?;
            answer.await.map_err(|_| StoreError::Closed)?
        })
    }
}

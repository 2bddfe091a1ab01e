//! The one writer every database store runs on: a task that owns the connection and serves
//! the store's requests in order, through a [`Backend`] that knows the database.
//!
//! A backend says how to connect, how to apply one [`Batch`] in one transaction, how to read
//! the jobs back and how to import gearmand's queue table; the [`Driver`] does the rest, once
//! for every store:
//!
//! - **Order.** Every request reaches the task over one channel, queued when the method is
//!   called, so operations are applied in the order they were made.
//! - **One transaction per batch.** Each [`Driver::commit`] is one call of
//!   [`Backend::apply`]. Group commit is not done here: gearbox-server's persister gathers
//!   every write made since its last commit into one batch, so a store sees one batch per
//!   commit and a second grouping layer would only add latency.
//! - **Reconnection.** When the connection is lost the task drops it and reconnects with
//!   exponential back-off (also while idle). An operation that finds a connection that had
//!   been working broken reconnects at once and runs again, once (applying a batch twice is
//!   the same as applying it once: see [`Batch`]); while the server stays unreachable,
//!   requests fail at once with [`StoreError::Unavailable`] unless a reconnection attempt is
//!   due, in which case they wait for that one attempt.
//! - **Logging and counters.** An outage is logged once when it starts and once when it ends;
//!   [`StoreStats`] counts what was done.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::stats::Counters;
use crate::{Batch, BoxFuture, HandleMaker, Store, StoreError, StoreStats, StoredJob};

#[path = "driver_task.rs"]
mod task;

use task::Writer;

/// How long to wait between reconnection attempts: `first` after a loss, doubled after each
/// failed attempt up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    /// 100 ms doubling up to 2 s.
    fn default() -> Self {
        Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_secs(2),
        }
    }
}

/// What a database store does on its connection; the [`Driver`] does the rest.
pub trait Backend: Send + 'static {
    /// The store's short name ([`Store::name`]), such as `sqlite`.
    const NAME: &'static str;

    /// A live connection.
    type Conn: Send;

    /// A store-specific request (e.g. the SQLite store's size limit), carrying its own reply
    /// channel; `()` when there are none.
    type Control: Send;

    /// Connects (or opens the file), creates our table if missing and checks it.
    fn connect(&mut self) -> impl Future<Output = Result<Self::Conn, StoreError>> + Send;

    /// Whether the driver already knows the connection is gone (checked before each use).
    fn is_closed(&self, conn: &Self::Conn) -> bool {
        let _ = conn;
        false
    }

    /// Applies `batch` in one transaction: all of it or nothing. The batch is shared so that
    /// the driver can run it again after a reconnection, and a blocking backend can move it to
    /// another thread.
    fn apply(
        &mut self,
        conn: &mut Self::Conn,
        batch: Arc<Batch>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every stored job in replay order.
    fn load(
        &mut self,
        conn: &mut Self::Conn,
    ) -> impl Future<Output = Result<Vec<StoredJob>, StoreError>> + Send;

    /// Why `job` cannot be stored as it is (a field the database cannot hold), or `None`.
    /// A batch with such a job fails at once with the error, writing nothing.
    fn refuse(job: &StoredJob) -> Option<StoreError> {
        let _ = job;
        None
    }

    /// Checks a gearmand table name before anything else happens (before connecting).
    fn check_table(&self, table: &str) -> Result<(), StoreError> {
        let _ = table;
        Ok(())
    }

    /// Moves the rows of a gearmand queue table into ours in one transaction: `Some(count)`
    /// once committed, `None` when there is no such table (and no transaction). Stores with
    /// no gearmand format to import keep this default.
    fn import(
        &mut self,
        conn: &mut Self::Conn,
        table: &str,
        new_handle: &mut HandleMaker,
    ) -> impl Future<Output = Imported> + Send {
        let _ = (conn, table, new_handle);
        std::future::ready(Ok(None))
    }

    /// Serves a [`Backend::Control`] request.
    fn control(
        &mut self,
        conn: &mut Self::Conn,
        request: Self::Control,
    ) -> impl Future<Output = ()> + Send {
        let _ = (conn, request);
        std::future::ready(())
    }

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

/// What [`Backend::import`] gives: `Some(count)` once committed, `None` when there is no such
/// table.
pub type Imported = Result<Option<usize>, StoreError>;

/// Where the answer to a request goes.
type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// What a store asks of its writer task.
enum Request<C> {
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
    Control(C),
    Close {
        reply: oneshot::Sender<()>,
    },
}

/// The handle of a running writer task: queues requests and reads the counters.
///
/// The task stops when the handle is dropped (after serving what was already queued) or
/// closed.
pub struct Driver<B: Backend> {
    requests: mpsc::UnboundedSender<Request<B::Control>>,
    counters: Arc<Counters>,
    location: String,
}

impl<B: Backend> std::fmt::Debug for Driver<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Driver<B> {
    /// Connects once (that first connection must succeed, so that a wrong address, password
    /// or table is reported at start-up) and spawns the writer task on the current tokio
    /// runtime. `location` names the store in logs and errors, without password.
    pub async fn start(
        backend: B,
        location: impl Into<String>,
        backoff: Backoff,
    ) -> Result<Self, StoreError> {
        let location = location.into();
        let counters = Arc::new(Counters::default());
        let mut writer = Writer::new(backend, location.clone(), counters.clone(), backoff);
        writer.connect().await?;
        tracing::info!(store = %location, kind = B::NAME, "job store opened");
        let (requests, inbox) = mpsc::unbounded_channel();
        tokio::spawn(writer.run(inbox));
        Ok(Driver {
            requests,
            counters,
            location,
        })
    }

    /// Every stored job in replay order.
    pub fn load(&self) -> BoxFuture<'static, Vec<StoredJob>> {
        self.request(|reply| Request::Load { reply })
    }

    /// Applies a batch; answered once its transaction has committed. A batch with a job the
    /// backend refuses ([`Backend::refuse`]) fails at once, writing nothing.
    pub fn commit(&self, batch: Batch) -> BoxFuture<'static, ()> {
        if let Some(err) = batch.persist.iter().find_map(B::refuse) {
            return Box::pin(std::future::ready(Err(err)));
        }
        self.request(|reply| Request::Commit { batch, reply })
    }

    /// Moves the rows of a gearmand queue table into ours; how many moved (0: no table).
    pub fn import(&self, table: &str, new_handle: HandleMaker) -> BoxFuture<'static, usize> {
        let table = table.to_owned();
        self.request(|reply| Request::Import {
            table,
            new_handle,
            reply,
        })
    }

    /// Queues a store-specific request, in order with the others; `false` once the task has
    /// stopped.
    pub fn control(&self, request: B::Control) -> bool {
        self.requests.send(Request::Control(request)).is_ok()
    }

    /// Finishes the requests already queued, closes the connection and stops the writer.
    /// Later operations fail with [`StoreError::Closed`]. Closing twice is fine.
    pub fn close(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        let (reply, done) = oneshot::channel();
        let sent = self.requests.send(Request::Close { reply }).is_ok();
        Box::pin(async move {
            if sent {
                let _ = done.await;
            }
        })
    }

    /// The counters since the store was started.
    pub fn stats(&self) -> StoreStats {
        self.counters.snapshot()
    }

    /// The store's location, as given to [`Driver::start`].
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Queues a request now and returns the future of its answer.
    fn request<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> Request<B::Control>,
    ) -> BoxFuture<'static, T> {
        let (reply, answer) = oneshot::channel();
        let sent = self.requests.send(make(reply));
        Box::pin(async move {
            sent.map_err(|_| StoreError::Closed)?;
            answer.await.map_err(|_| StoreError::Closed)?
        })
    }
}

/// A store whose work is all done by a [`Driver`]: implementing this (saying where the driver
/// is) gives the whole [`Store`].
pub trait DriverStore: Send + Sync + 'static {
    /// The store's backend.
    type Backend: Backend;

    /// The driver that does the work.
    fn driver(&self) -> &Driver<Self::Backend>;
}

impl<T: DriverStore> Store for T {
    fn name(&self) -> &str {
        T::Backend::NAME
    }

    fn location(&self) -> &str {
        self.driver().location()
    }

    fn load(&self) -> BoxFuture<'_, Vec<StoredJob>> {
        self.driver().load()
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, ()> {
        self.driver().commit(batch)
    }

    fn import_gearmand(&self, table: &str, new_handle: HandleMaker) -> BoxFuture<'_, usize> {
        self.driver().import(table, new_handle)
    }

    fn close(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.driver().close()
    }

    fn stats(&self) -> StoreStats {
        self.driver().stats()
    }
}

//! The storage interface of gearbox: what a job store is, and what every store shares.
//!
//! The server core never touches a database: it emits "persist job" and "remove job" effects,
//! gearbox-server's persister gathers every such write made since its last commit into one
//! [`Batch`] (that is the one place where commits are grouped) and hands it to a [`Store`],
//! and JOB_CREATED goes out only once [`Store::commit`] has returned `Ok`. At start-up
//! [`Store::load`] gives back every stored job, in the order it was first written, with its
//! original handle.
//!
//! This crate has no database driver in it. The stores live in their own crates, so that a
//! program links only the drivers it uses: `gearbox-store-sqlite` (the default, embedded),
//! `gearbox-store-postgres`, `gearbox-store-mysql` and `gearbox-store-redis`.
//!
//! # Layout
//!
//! - [`job`]: the data: [`StoredJob`], [`Batch`] (and its [`NetEffect`]) and the
//!   [`Durability`] modes.
//! - [`error`]: [`StoreError`], the one error type, cloneable so that every waiter on a
//!   failed commit gets it.
//! - [`stats`]: [`StoreStats`], the same counters for every store.
//! - [`cluster`]: [`cluster::ClusterStore`], a store several servers share, each claiming
//!   and releasing jobs, with heartbeats and takeover.
//! - [`driver`]: the writer task every database store runs on: a [`driver::Backend`] says how
//!   to talk to the database, the [`driver::Driver`] serves requests in order, reconnects
//!   with back-off and logs outages once.
//! - [`memory`]: [`MemoryStore`], gearmand's `builtin` queue (and a retaining variant for
//!   tests of replay).
//! - [`sql`]: what the SQL stores share: table names, identifier checks, gearmand's columns
//!   and priority numbers.
//! - `tls` (feature `tls`): the rustls client configuration and PEM files of a TLS connection
//!   to a database server, and how much of its certificate is checked.
//!
//! # Lifecycle
//!
//! A store is opened by its crate's constructor (which checks the database, so that a wrong
//! address or file is reported at start-up), then everything else goes through the trait:
//! [`Store::load`] once, [`Store::import_gearmand`] to take over gearmand's queue table,
//! [`Store::commit`] for every batch, [`Store::close`] at shutdown.

#![warn(missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

pub mod cluster;
pub mod driver;
pub mod error;
pub mod job;
pub mod memory;
pub mod sql;
pub mod stats;
#[cfg(feature = "tls")]
pub mod tls;

pub use error::StoreError;
pub use job::{Batch, Durability, NetEffect, StoredJob};
pub use memory::MemoryStore;
pub use stats::StoreStats;

/// The future returned by every [`Store`] operation.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Makes a new handle for each job imported from gearmand's queue table.
pub type HandleMaker = Box<dyn FnMut() -> Bytes + Send>;

/// A place to keep background jobs across restarts.
///
/// Implementations queue a request when the method is called, not when the returned future is
/// first polled: commits called in some order are applied in that order, even if their futures
/// are awaited in another. Each commit is one transaction.
pub trait Store: Send + Sync + 'static {
    /// A short name for logs and the admin protocol, such as `builtin` or `sqlite`.
    fn name(&self) -> &str;

    /// Where the jobs are (a file, or a server and database), without password.
    fn location(&self) -> &str;

    /// Whether committed jobs come back from [`Store::load`] after a restart. When false
    /// (gearmand's `builtin` queue) the server neither persists jobs nor waits for a commit
    /// before acknowledging one.
    fn is_durable(&self) -> bool {
        true
    }

    /// Every stored job, in the order each was first persisted, for replay at start-up.
    fn load(&self) -> BoxFuture<'_, Vec<StoredJob>>;

    /// Applies a batch atomically: every write and removal in it, or none of them.
    ///
    /// `Ok` means the batch is as durable as the store's [`Durability`] promises, so the jobs
    /// in it may be acknowledged.
    fn commit(&self, batch: Batch) -> BoxFuture<'_, ()>;

    /// Moves every job of gearmand's queue table `table` (in the same database) into ours, in
    /// one transaction that also empties gearmand's table; how many moved. Each job gets a
    /// handle from `new_handle`, which must not return a handle already stored (the import
    /// then fails and changes nothing). A missing table moves none; a table without
    /// gearmand's columns is [`StoreError::NotGearmandTable`]. The Redis store reads `table` as
    /// gearmand's key prefix; stores with no gearmand format (memory) move none.
    fn import_gearmand(&self, table: &str, new_handle: HandleMaker) -> BoxFuture<'_, usize> {
        let _ = (table, new_handle);
        Box::pin(std::future::ready(Ok(0)))
    }

    /// Finishes the requests already queued and closes the store; later operations fail with
    /// [`StoreError::Closed`]. Closing twice is fine.
    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;

    /// The counters since the store was opened.
    fn stats(&self) -> StoreStats;

    /// This store as a cluster store, when it is one (several servers share it).
    fn as_cluster(self: Arc<Self>) -> Option<Arc<dyn cluster::ClusterStore>> {
        None
    }
}

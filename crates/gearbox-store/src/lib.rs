//! Durable storage for gearbox's background jobs.
//!
//! The server core never touches a database: it emits "persist job" and "remove job" effects,
//! the network layer gathers them into a [`Batch`] and hands it to a [`Store`], and JOB_CREATED
//! goes out only once [`Store::commit`] has returned `Ok`. At start-up [`Store::load`] gives
//! back every stored job, in the order it was first written, with its original handle.
//!
//! # Layout
//!
//! - [`job`]: the data: [`StoredJob`], [`Batch`] and the [`Durability`] modes.
//! - [`error`]: [`StoreError`], the one error type, cloneable so that every caller of a failed
//!   group commit gets it.
//! - [`memory`]: [`MemoryStore`], the `builtin` queue that keeps nothing across restarts.
//! - [`remote`]: the writer task shared by the stores on a database server (PostgreSQL,
//!   MySQL): group commit, reconnection with back-off, outage logging, counters.
//! - [`sqlite`]: [`SqliteStore`], the default durable store: one writer thread doing group
//!   commit, and the import of a gearmand `gearman_queue` table.
//! - `migrations/`: the SQL that creates our table, embedded at compile time.
//!
//! # Operations
//!
//! `commit` carries both writes and removals (`complete`). `claim` and `release` are the lease
//! operations for a later cluster mode in which several servers share one database: a server
//! claims a job before running it and releases it when it gives the job back. Single-server
//! stores keep the default no-op implementations.

#![warn(missing_docs)]

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

pub mod error;
pub mod job;
pub mod memory;
pub mod remote;
pub mod sqlite;

pub use error::StoreError;
pub use job::{Batch, Durability, StoredJob};
pub use memory::MemoryStore;
pub use sqlite::{SqliteStore, StoreStats, DEFAULT_GEARMAND_TABLE, DEFAULT_TABLE};

/// The future returned by every [`Store`] operation.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A place to keep background jobs across restarts.
///
/// Implementations queue a request when the method is called, not when the returned future is
/// first polled: commits called in some order are applied in that order, even if their
/// futures are awaited in another.
pub trait Store: Send + Sync + 'static {
    /// A short name for logs and the admin protocol, such as `builtin` or `sqlite`.
    fn name(&self) -> &str;

    /// Whether a commit reaches durable storage. When false (the memory store) the server
    /// need not wait for a commit before acknowledging a job.
    fn is_durable(&self) -> bool {
        true
    }

    /// Every stored job, in the order each was first persisted, for replay at start-up.
    fn load(&self) -> BoxFuture<'_, Vec<StoredJob>>;

    /// Applies a batch atomically: every write and removal in it, or none of them.
    ///
    /// `Ok` means the batch is as durable as the store's [`Durability`] promises, so the
    /// jobs in it may be acknowledged.
    fn commit(&self, batch: Batch) -> BoxFuture<'_, ()>;

    /// Lease operation: takes the job for this server before running it. `Ok(false)` means
    /// another server holds it. Single-server stores always grant it.
    fn claim(&self, handle: Bytes) -> BoxFuture<'_, bool> {
        let _ = handle;
        Box::pin(std::future::ready(Ok(true)))
    }

    /// Lease operation: gives back a job claimed with [`Store::claim`] without completing it
    /// (its worker failed or disconnected and it goes back to the queue). A no-op by default.
    fn release(&self, handle: Bytes) -> BoxFuture<'_, ()> {
        let _ = handle;
        Box::pin(std::future::ready(Ok(())))
    }
}

//! What a store has done: [`StoreStats`], the same counters for every store.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::Batch;

/// What a store has done since it was opened, for tests, logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Successful transactions: one per commit that wrote something, plus imports.
    pub transactions: u64,
    /// Jobs written (imported ones included).
    pub jobs_persisted: u64,
    /// Removals applied (including handles that were not stored).
    pub jobs_removed: u64,
    /// Commits that failed (nothing of their batch was written), including those refused
    /// while the database was unreachable.
    pub failed_transactions: u64,
    /// Successful connections: 1 once opened, plus one per reconnection (0 for stores with no
    /// connection, such as the memory store).
    pub connects: u64,
}

/// The live counters behind [`StoreStats`], shared between a store's handle and its writer.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    transactions: AtomicU64,
    persisted: AtomicU64,
    removed: AtomicU64,
    failures: AtomicU64,
    connects: AtomicU64,
}

impl Counters {
    /// A batch was committed.
    pub(crate) fn committed(&self, batch: &Batch) {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.persisted
            .fetch_add(batch.persist.len() as u64, Ordering::Relaxed);
        self.removed
            .fetch_add(batch.complete.len() as u64, Ordering::Relaxed);
    }

    /// A gearmand table was imported.
    pub(crate) fn imported(&self, jobs: usize) {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.persisted.fetch_add(jobs as u64, Ordering::Relaxed);
    }

    /// A commit failed.
    pub(crate) fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was made.
    pub(crate) fn connected(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub(crate) fn snapshot(&self) -> StoreStats {
        StoreStats {
            transactions: self.transactions.load(Ordering::Relaxed),
            jobs_persisted: self.persisted.load(Ordering::Relaxed),
            jobs_removed: self.removed.load(Ordering::Relaxed),
            failed_transactions: self.failures.load(Ordering::Relaxed),
            connects: self.connects.load(Ordering::Relaxed),
        }
    }
}

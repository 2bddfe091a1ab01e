//! The `builtin` queue: nothing is kept across restarts.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::stats::Counters;
use crate::{Batch, BoxFuture, Store, StoreError, StoreStats, StoredJob};

/// A store that keeps nothing across restarts: every commit succeeds at once.
///
/// [`MemoryStore::new`] is gearmand's `builtin` queue: [`Store::load`] returns nothing and
/// [`Store::is_durable`] is false, so the server does not persist jobs at all.
/// [`MemoryStore::retaining`] keeps the committed jobs in memory for the store's lifetime and
/// counts as durable, so a test can stop a server and start another one on the same store to
/// exercise replay.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// `Some` when committed jobs are kept, shared with the stores made by
    /// [`MemoryStore::reopen`]. A std `Mutex`: held only to update a map, never across an
    /// await.
    retained: Option<Arc<Mutex<Retained>>>,
    counters: Counters,
    closed: AtomicBool,
}

#[derive(Debug, Default)]
struct Retained {
    next_seq: u64,
    seq_of: HashMap<Bytes, u64>,
    jobs: BTreeMap<u64, StoredJob>,
}

impl MemoryStore {
    /// The `builtin` queue: commits are no-ops and `load` returns nothing.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// A memory store whose `load` returns the jobs committed so far (for tests of replay).
    pub fn retaining() -> Self {
        MemoryStore {
            retained: Some(Arc::new(Mutex::new(Retained::default()))),
            ..MemoryStore::default()
        }
    }

    /// A new, open store on the same retained jobs, as a restarted server opens the same
    /// database again (for tests of replay; counters start at zero).
    pub fn reopen(&self) -> MemoryStore {
        MemoryStore {
            retained: self.retained.clone(),
            ..MemoryStore::default()
        }
    }

    /// Number of batches committed so far.
    pub fn commits(&self) -> u64 {
        self.counters.snapshot().transactions
    }

    fn apply(&self, batch: Batch) {
        self.counters.committed(&batch);
        let Some(retained) = &self.retained else {
            return;
        };
        let mut r = retained.lock().unwrap_or_else(|e| e.into_inner());
        for job in batch.persist {
            let seq = match r.seq_of.get(&job.handle) {
                Some(&seq) => seq,
                None => {
                    let seq = r.next_seq;
                    r.next_seq += 1;
                    r.seq_of.insert(job.handle.clone(), seq);
                    seq
                }
            };
            r.jobs.insert(seq, job);
        }
        for handle in batch.complete {
            if let Some(seq) = r.seq_of.remove(&handle) {
                r.jobs.remove(&seq);
            }
        }
    }
}

impl Store for MemoryStore {
    fn name(&self) -> &str {
        "builtin"
    }

    fn location(&self) -> &str {
        "memory"
    }

    fn is_durable(&self) -> bool {
        self.retained.is_some()
    }

    fn load(&self) -> BoxFuture<'_, Vec<StoredJob>> {
        if self.closed.load(Ordering::Relaxed) {
            return Box::pin(std::future::ready(Err(StoreError::Closed)));
        }
        let jobs = match &self.retained {
            Some(retained) => {
                let r = retained.lock().unwrap_or_else(|e| e.into_inner());
                r.jobs.values().cloned().collect()
            }
            None => Vec::new(),
        };
        Box::pin(std::future::ready(Ok(jobs)))
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, ()> {
        if self.closed.load(Ordering::Relaxed) {
            return Box::pin(std::future::ready(Err(StoreError::Closed)));
        }
        self.apply(batch);
        Box::pin(std::future::ready(Ok(())))
    }

    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.closed.store(true, Ordering::Relaxed);
        Box::pin(std::future::ready(()))
    }

    fn stats(&self) -> StoreStats {
        self.counters.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<T>(f: BoxFuture<'_, T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
            .unwrap()
    }

    #[test]
    fn builtin_keeps_nothing() {
        let store = MemoryStore::new();
        block(store.commit(Batch::persist(StoredJob::new("H:a:1", "f", "x"))));
        assert!(block(store.load()).is_empty());
        assert_eq!(store.commits(), 1);
        assert!(!store.is_durable());
    }

    #[test]
    fn retaining_replays_in_order_and_removes() {
        let store = MemoryStore::retaining();
        for n in 0..3 {
            let job = StoredJob::new(format!("H:a:{n}"), "f", "x");
            block(store.commit(Batch::persist(job)));
        }
        // Rewriting a job keeps its place.
        block(store.commit(Batch::persist(StoredJob::new("H:a:0", "f", "y"))));
        block(store.commit(Batch::complete("H:a:1")));
        block(store.commit(Batch::complete("H:a:9")));
        let jobs = block(store.load());
        let handles: Vec<_> = jobs.iter().map(|j| j.handle.clone()).collect();
        assert_eq!(handles, [&b"H:a:0"[..], &b"H:a:2"[..]]);
        assert_eq!(jobs[0].data, &b"y"[..]);
    }
}

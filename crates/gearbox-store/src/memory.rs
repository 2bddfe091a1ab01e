//! The `builtin` queue: nothing is kept across restarts.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

use crate::{Batch, BoxFuture, Store, StoredJob};

/// A store that keeps nothing across restarts: every commit succeeds at once.
///
/// [`MemoryStore::new`] is gearmand's `builtin` queue: [`Store::load`] returns nothing.
/// [`MemoryStore::retaining`] keeps the committed jobs in memory for the store's lifetime, so
/// a test can stop a server and start another one on the same store to exercise replay.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// `Some` when committed jobs are kept. A std `Mutex`: held only to update a map, never
    /// across an await.
    retained: Option<Mutex<Retained>>,
    /// Number of commits, for tests.
    commits: AtomicU64,
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
            retained: Some(Mutex::new(Retained::default())),
            commits: AtomicU64::new(0),
        }
    }

    /// Number of batches committed so far.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    fn apply(&self, batch: Batch) {
        self.commits.fetch_add(1, Ordering::Relaxed);
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

    fn is_durable(&self) -> bool {
        false
    }

    fn load(&self) -> BoxFuture<'_, Vec<StoredJob>> {
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
        self.apply(batch);
        Box::pin(std::future::ready(Ok(())))
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
        assert!(block(store.claim(Bytes::from_static(b"H:a:1"))));
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

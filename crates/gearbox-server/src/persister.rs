//! The one task that talks to the store, and gearbox's one group-commit layer: it drains every
//! store operation queued since its last commit (from every connection) into one [`Batch`],
//! commits it as one transaction, and tells the core the outcome so acknowledgements go out
//! only for what the store holds. While a commit runs, the next operations queue up and share
//! the following commit, so the number of transactions adapts to the store's speed. The
//! stores themselves apply each batch they get in its own transaction and do no grouping.
//!
//! A failing store is logged once when it starts failing and once when it recovers, not once
//! per job. Removals of finished jobs that failed are kept and retried with the next batch (or
//! after [`RETRY_AFTER`]); a crash before they succeed only makes those jobs run again.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gearbox_store::cluster::{ClusterStore, Coalesced};
use gearbox_store::{Batch, Store, StoreError, StoredJob};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::ServerMetrics;

/// Most operations in one transaction.
const MAX_BATCH: usize = 10_000;
/// How soon failed removals are tried again when nothing else arrives.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// One request to the persister.
#[derive(Debug)]
pub enum StoreOp {
    /// Keep this job (a background submit waits for it).
    Persist(StoredJob),
    /// Remove this finished job.
    Complete(Bytes),
    /// Answer once everything queued before has been committed (shutdown).
    Flush(oneshot::Sender<()>),
}

/// What the persister reports after each commit that carried persists. The caller feeds
/// `coalesced` to `Core::cluster_coalesced`, then the rest to `Core::committed`.
#[derive(Debug)]
pub struct Report {
    /// The handles it tried to persist, except those in `coalesced`.
    pub handles: Vec<Bytes>,
    /// How the commit went.
    pub result: Result<(), StoreError>,
    /// Cluster mode: jobs not written because their unique id was already in the cluster.
    pub coalesced: Vec<Coalesced>,
}

/// Runs until every sender is dropped. `report` is called after each commit that carried
/// persists. A commit taking longer than `commit_timeout` is reported as failed. Each commit's
/// latency, size and outcome go to `metrics`, which also counts the operations taken off the
/// queue (senders count them in: see [`ServerMetrics::store_pending`]). A cluster store
/// commits with [`ClusterStore::commit_cluster`], so that unique ids coalesce across members.
pub async fn run(
    store: Arc<dyn Store>,
    cluster: Option<Arc<dyn ClusterStore>>,
    commit_timeout: Duration,
    mut rx: mpsc::UnboundedReceiver<StoreOp>,
    metrics: Arc<ServerMetrics>,
    report: impl Fn(Report) + Send + 'static,
) {
    let mut failing = false;
    let mut retry_completes: Vec<Bytes> = Vec::new();
    loop {
        let mut next = if retry_completes.is_empty() {
            match rx.recv().await {
                Some(op) => Some(op),
                None => return,
            }
        } else {
            match tokio::time::timeout(RETRY_AFTER, rx.recv()).await {
                Ok(Some(op)) => Some(op),
                Ok(None) => return,
                // Nothing new: try the failed removals again on their own.
                Err(_) => None,
            }
        };
        let mut batch = Batch {
            persist: Vec::new(),
            complete: std::mem::take(&mut retry_completes),
        };
        let mut flushes = Vec::new();
        let mut taken = 0;
        while let Some(op) = next.take() {
            taken += 1;
            match op {
                StoreOp::Persist(job) => batch.persist.push(job),
                StoreOp::Complete(h) => batch.complete.push(h),
                StoreOp::Flush(done) => flushes.push(done),
            }
            if batch.persist.len() + batch.complete.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        let handles: Vec<Bytes> = batch.persist.iter().map(|j| j.handle.clone()).collect();
        let completes = batch.complete.clone();
        // Only once the batch is closed: whatever is pending now goes into the next commit.
        metrics.store_pending.fetch_sub(taken, Ordering::Relaxed);
        let operations = (batch.persist.len() + batch.complete.len()) as u64;
        let started = tokio::time::Instant::now();
        let (result, coalesced) = if batch.is_empty() {
            (Ok(()), Vec::new())
        } else {
            // A store that does not answer in time counts as failing: the submitters get an
            // error, never a JOB_CREATED the store may not honour. (If the late commit does
            // land, the job only runs again after a restart: at least once, never lost.)
            let commit = async {
                match &cluster {
                    Some(cluster) => cluster.commit_cluster(batch).await,
                    None => store.commit(batch).await.map(|()| Vec::new()),
                }
            };
            match tokio::time::timeout(commit_timeout, commit).await {
                Ok(Ok(coalesced)) => (Ok(()), coalesced),
                Ok(Err(e)) => (Err(e), Vec::new()),
                Err(_) => {
                    let location = store.location().to_owned();
                    let millis = commit_timeout.as_millis() as u64;
                    (Err(StoreError::TimedOut { location, millis }), Vec::new())
                }
            }
        };
        if operations > 0 {
            let micros = started.elapsed().as_micros().try_into().unwrap_or(u64::MAX);
            metrics.store_commit(operations, micros, result.is_ok(), crate::net::now_ms());
        }
        match &result {
            Ok(()) if failing => {
                failing = false;
                tracing::warn!(
                    store = store.name(),
                    "store recovered; accepting background jobs again"
                );
            }
            Err(e) if !failing => {
                failing = true;
                tracing::error!(store = store.name(), error = %e, "store commit failed; background submits get QUEUE_ERROR until it recovers");
            }
            _ => {}
        }
        if result.is_err() {
            retry_completes = completes;
        }
        if !handles.is_empty() {
            let handles = if coalesced.is_empty() {
                handles
            } else {
                let gone: std::collections::HashSet<&[u8]> =
                    coalesced.iter().map(|c| &c.handle[..]).collect();
                handles
                    .into_iter()
                    .filter(|h| !gone.contains(&h[..]))
                    .collect()
            };
            report(Report {
                handles,
                result,
                coalesced,
            });
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

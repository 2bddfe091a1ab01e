//! The cluster task: keeps this member's share of the shared queue balanced.
//!
//! It wakes when the core reports a change in a function's balance of ready workers and
//! queued jobs (`Outbox::cluster_changed`), when another member freed jobs (the store's
//! notification), at every heartbeat and at every poll. Each round it
//!
//! 1. heartbeats when one is due, publishing the core's load (which also frees the jobs of
//!    dead members), then reads the cluster's view for the cluster admin commands;
//! 2. asks the core for a [`ClusterPass`](crate::core::cluster::ClusterPass) and frees the
//!    jobs the core gave up (kept and tried again while the store is unreachable: the store
//!    still lists them as ours, so nothing is lost, only delayed);
//! 3. claims free jobs for the workers waiting here and hands them to the core.
//!
//! A function whose last claim found fewer free jobs than wanted is not asked for again
//! until another member frees jobs or the next poll, so that a worker finishing a job does
//! not cost a query when the shared queue is empty.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gearbox_store::cluster::{ClusterStore, Want};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::output::Touched;
use super::{now_ms, Shared};
use crate::core::cluster::BridgeDemand;
use crate::core::Outbox;
use crate::metrics;

/// Free jobs waiting for a time or a schedule (a dead member's timers) taken per poll.
const TIMED_PER_POLL: u32 = 100;

/// The cluster view (members, their loads, free jobs) is read at every this many heartbeats:
/// counting a deep shared queue is not free.
const VIEW_EVERY: u32 = 5;

/// The other members, as the bridges need them: id and Gearman address.
pub(super) type Members = Vec<(String, String)>;

/// Runs until `stop` is cancelled.
pub(super) async fn run(
    shared: Arc<Shared>,
    store: Arc<dyn ClusterStore>,
    demand: watch::Sender<BridgeDemand>,
    members: watch::Sender<Members>,
    stop: CancellationToken,
) {
    let member = store.member().clone();
    let poll = Duration::from_millis(shared.config.cluster_poll_ms.max(10));
    let wake = store.wake();
    let mut next_beat = Instant::now();
    let mut next_poll = Instant::now() + poll;
    let mut recheck: Option<Instant> = None;
    let mut beats: u32 = 0;
    let mut unreleased: Vec<Bytes> = Vec::new();
    let mut dry: HashSet<Bytes> = HashSet::new();
    let metrics = shared.metrics.clone();
    let counters = &metrics.cluster;
    counters.enabled.store(true, Ordering::Relaxed);
    loop {
        let next = recheck.map_or(next_beat.min(next_poll), |r| {
            r.min(next_beat).min(next_poll)
        });
        let mut all = tokio::select! {
            _ = stop.cancelled() => break,
            _ = shared.cluster_kick.notified() => false,
            _ = wake.notified() => true,
            _ = tokio::time::sleep_until(next) => false,
        };
        let now = Instant::now();
        if now >= next_beat {
            next_beat = now + member.heartbeat;
            let status = shared.lock().core.cluster_status();
            match store.heartbeat(status).await {
                Ok(beat) => {
                    if counters.heartbeat_worked() {
                        tracing::warn!(member = %member.id, "the cluster's database is reachable again; heartbeats resumed");
                    }
                    metrics::add(&counters.taken_over, beat.freed);
                    if beat.was_dead {
                        metrics::add(&counters.declared_dead, 1);
                        let dropped = shared.lock().core.cluster_forget_held();
                        tracing::error!(
                            member = %member.id,
                            dropped,
                            "this server had been declared dead by the cluster (heartbeats \
                             stalled); its queued jobs were freed for the others"
                        );
                    }
                    all |= beat.freed > 0 || beat.was_dead;
                    // The cluster-wide admin views, and the members the bridges go to.
                    if beats.is_multiple_of(VIEW_EVERY) {
                        match store.view().await {
                            Ok(view) => {
                                let others: Members = view
                                    .members
                                    .iter()
                                    .filter(|m| m.id != member.id)
                                    .map(|m| (m.id.clone(), m.address.clone()))
                                    .collect();
                                members.send_if_modified(|m| {
                                    let changed = *m != others;
                                    *m = others;
                                    changed
                                });
                                shared
                                    .lock()
                                    .core
                                    .set_cluster_view(&member.id, view, now_ms());
                            }
                            Err(error) => {
                                tracing::debug!(%error, "could not read the cluster view")
                            }
                        }
                    }
                    beats = beats.wrapping_add(1);
                }
                Err(error) => {
                    if counters.heartbeat_failed() {
                        tracing::error!(member = %member.id, %error, "cluster heartbeat failed: the \
                            shared database is unreachable; background submits fail until it is \
                            back, and the other members take this server's jobs over if it lasts");
                    }
                }
            }
        }
        let polled = now >= next_poll;
        if polled {
            next_poll = now + poll;
            all = true;
        }
        if all {
            dry.clear();
        }
        let (pass, ready, draining) = {
            let mut st = shared.lock();
            let pass = st.core.cluster_pass(all, now_ms());
            (pass, st.core.bridge_demand(), st.core.is_draining())
        };
        recheck = pass.recheck_at.map(|at| {
            Instant::now() + Duration::from_millis(at.ms_since(now_ms()).saturating_add(1))
        });
        demand.send_if_modified(|d| {
            let changed = *d != ready;
            *d = ready;
            changed
        });
        unreleased.extend(pass.release);
        if !unreleased.is_empty() {
            match store.release(unreleased.clone()).await {
                Ok(()) => {
                    metrics::add(&counters.released, unreleased.len() as u64);
                    unreleased.clear();
                }
                Err(error) => {
                    tracing::debug!(%error, jobs = unreleased.len(), "could not free jobs; will retry")
                }
            }
        }
        let wants: Vec<Want> = pass
            .wants
            .into_iter()
            .filter(|w| !dry.contains(&w.function))
            .collect();
        // Free timers only exist after a member died or left: looked for at each poll, by a
        // member that is not on its way out.
        let timed = if polled && !draining {
            TIMED_PER_POLL
        } else {
            0
        };
        if wants.is_empty() && timed == 0 {
            continue;
        }
        match store.claim(wants.clone(), timed).await {
            Ok(jobs) => {
                for w in &wants {
                    let got = jobs.iter().filter(|j| j.function == w.function).count();
                    if got < w.count as usize {
                        dry.insert(w.function.clone());
                    }
                }
                if !jobs.is_empty() {
                    metrics::add(&counters.claimed, jobs.len() as u64);
                    tracing::debug!(jobs = jobs.len(), "claimed jobs from the shared queue");
                    let mut out = Outbox::default();
                    let mut touched = Touched::default();
                    let mut st = shared.lock();
                    st.core.cluster_adopt(jobs, now_ms(), &mut out);
                    shared.apply(&mut st, &mut out, &mut touched);
                    drop(st);
                    touched.flush();
                }
            }
            Err(error) => tracing::debug!(%error, "claim failed; will retry"),
        }
    }
}

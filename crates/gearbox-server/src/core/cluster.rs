//! The core's side of cluster mode: which jobs this server should hold, which it should give
//! back to the shared queue, and taking in the jobs it claimed.
//!
//! A member holds a queued job only for a worker that is ready for it: one that asked for a
//! job and got NO_JOB, or went to sleep, and has not taken a job since (`Conn::wants_work`).
//! Per function, the queued jobs beyond the ready workers are released (given back to the
//! shared queue for any member to claim), and the ready workers beyond the queued jobs are
//! wants (claimed from the shared queue). Both are computed from the same two numbers, so a
//! job is never released by the pass that claimed it.
//!
//! The core does no I/O here either: the network layer's cluster task asks for a
//! [`ClusterPass`], talks to the store, and feeds the claimed jobs back with
//! [`Core::cluster_adopt`].

use std::collections::HashSet;

use bytes::Bytes;
use gearbox_store::cluster::{Coalesced, Want};
use gearbox_store::StoredJob;

use super::functions::FnId;
use super::ids::{ConnId, JobId};
use super::state::{JobKind, JobState};
use super::time::UnixMillis;
use super::{Core, Outbox};

/// The start of the client id a member's bridge connections announce themselves with (see
/// `Conn::peer`); the member's id follows.
pub const PEER_CLIENT_ID_PREFIX: &[u8] = b"gearbox-cluster-peer:";

/// Queued jobs a member holds per worker of their function (so that a worker that finishes
/// a job finds the next one here, not in the database).
pub const HOLD_PER_WORKER: usize = 2;

/// How long a held job may wait while none of its function's workers here is ready, in
/// milliseconds, before it is given back to the shared queue for the other members.
pub const HOLD_MS: u64 = 100;

/// Cluster bookkeeping: the functions whose balance changed since the last pass.
#[derive(Debug, Default)]
pub(super) struct ClusterBook {
    pub(super) dirty: HashSet<FnId>,
}

/// See [`Core::bridge_demand`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeDemand {
    /// Functions with at least one ready worker here.
    pub functions: std::collections::BTreeSet<Bytes>,
    /// Ready workers here.
    pub ready: usize,
}

/// What one pass found: jobs to give back and jobs to claim.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ClusterPass {
    /// Handles of the jobs taken out of this core, to free in the shared queue.
    pub release: Vec<Bytes>,
    /// Free jobs to claim per function.
    pub wants: Vec<Want>,
    /// When held jobs may have waited too long: run a pass again then.
    pub recheck_at: Option<UnixMillis>,
}

impl Core {
    /// Whether this core is a cluster member.
    pub fn is_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// Notes that `function`'s balance of ready workers and queued jobs may have changed; the
    /// outbox asks for a cluster pass.
    pub(super) fn cluster_touch(&mut self, function: FnId, out: &mut Outbox) {
        if let Some(book) = &mut self.cluster {
            book.dirty.insert(function);
            out.cluster_changed = true;
        }
    }

    /// [`Core::cluster_touch`] for every function `conn` registered.
    pub(super) fn cluster_touch_conn(&mut self, conn: ConnId, out: &mut Outbox) {
        if self.cluster.is_none() {
            return;
        }
        let functions: Vec<FnId> = match self.conns.get(&conn) {
            Some(c) => c.abilities.iter().map(|a| a.function).collect(),
            None => return,
        };
        for f in functions {
            self.cluster_touch(f, out);
        }
    }

    /// Workers of `function` ready for a job (other members' bridges are not workers).
    fn ready_workers(&self, function: FnId) -> usize {
        self.functions[function]
            .workers
            .iter()
            .filter(|w| self.conns.get(w).is_some_and(|c| c.wants_work && !c.peer))
            .count()
    }

    /// What this member's bridges may take from the others: the functions its own workers
    /// are ready for, and how many such workers there are. Nothing while draining.
    pub fn bridge_demand(&self) -> BridgeDemand {
        let mut demand = BridgeDemand::default();
        if self.cluster.is_none() || self.draining {
            return demand;
        }
        for c in self.conns.values() {
            if c.wants_work && !c.peer && !c.abilities.is_empty() {
                demand.ready += 1;
                for a in &c.abilities {
                    demand
                        .functions
                        .insert(self.functions[a.function].name.clone());
                }
            }
        }
        demand
    }

    /// The first job at priority `p` of `function` a bridge may take: a foreground job with
    /// a client of this member (not one another bridge brought here); out of its queue.
    pub(super) fn pick_for_peer(&mut self, function: FnId, p: usize) -> Option<JobId> {
        let (jobs, conns) = (&self.jobs, &self.conns);
        let queue = &mut self.functions[function].queues[p];
        let pos = queue.iter().position(|id| {
            let job = &jobs[id];
            !job.background
                && job
                    .clients()
                    .iter()
                    .any(|c| conns.get(c).is_some_and(|c| !c.peer))
        })?;
        queue.remove(pos)
    }

    /// Balances the functions touched since the last pass (every function when `all`), at
    /// `now`:
    ///
    /// - a member holds at most [`HOLD_PER_WORKER`] queued jobs per worker of a function; the
    ///   jobs beyond leave the core (lowest priority and newest first) and are listed for
    ///   release;
    /// - while none of those workers is ready, a held job that has waited [`HOLD_MS`] is
    ///   released too (a worker elsewhere may be idle); the pass says when to look again;
    /// - while one is ready, the jobs the workers could hold beyond those queued are wants,
    ///   so that a claim brings a batch and the next jobs wait here, not in the database.
    ///
    /// Only jobs the shared queue can run anywhere are released: stored background jobs with
    /// no foreground client attached and no submitter waiting, and not SCHED jobs (whose
    /// schedule stays with the member that holds them). While draining, every such queued
    /// job is released and nothing is wanted.
    pub fn cluster_pass(&mut self, all: bool, now: UnixMillis) -> ClusterPass {
        let Some(book) = &mut self.cluster else {
            return ClusterPass::default();
        };
        let touched: Vec<FnId> = if all {
            book.dirty.clear();
            self.functions.ids().collect()
        } else {
            book.dirty.drain().collect()
        };
        let mut pass = ClusterPass::default();
        let mut recheck = Vec::new();
        for function in touched {
            let (workers, ready) = if self.draining {
                (0, 0)
            } else {
                (self.real_workers(function), self.ready_workers(function))
            };
            let capacity = workers * HOLD_PER_WORKER;
            let queued = self.functions[function].queued();
            if queued > capacity {
                self.release_from(function, queued - capacity, None, &mut pass.release);
            }
            let queued = self.functions[function].queued();
            if ready == 0 && queued > 0 {
                let cutoff = UnixMillis::from_millis(now.as_millis().saturating_sub(HOLD_MS));
                self.release_from(function, queued, Some(cutoff), &mut pass.release);
                if let Some(oldest) = self.oldest_queued(function) {
                    let due = oldest.plus_ms(HOLD_MS);
                    pass.recheck_at = Some(pass.recheck_at.map_or(due, |d| d.min(due)));
                    recheck.push(function);
                }
            } else if ready > 0 && capacity > queued {
                pass.wants.push(Want {
                    function: self.functions[function].name.clone(),
                    count: u32::try_from(capacity - queued).unwrap_or(u32::MAX),
                });
            }
        }
        if let Some(book) = &mut self.cluster {
            book.dirty.extend(recheck);
        }
        pass
    }

    /// Workers of `function` (other members' bridges are not workers).
    fn real_workers(&self, function: FnId) -> usize {
        self.functions[function]
            .workers
            .iter()
            .filter(|w| self.conns.get(w).is_some_and(|c| !c.peer))
            .count()
    }

    /// When the longest-waiting queued job of `function` that could be released entered
    /// its queue.
    fn oldest_queued(&self, function: FnId) -> Option<UnixMillis> {
        self.functions[function]
            .queues
            .iter()
            .flatten()
            .filter(|id| self.releasable(**id))
            .map(|id| self.jobs[id].since)
            .min()
    }

    /// Takes up to `count` releasable jobs out of `function`'s queues, lowest priority and
    /// newest first; with `queued_by`, only jobs queued at or before that moment.
    fn release_from(
        &mut self,
        function: FnId,
        count: usize,
        queued_by: Option<UnixMillis>,
        handles: &mut Vec<Bytes>,
    ) {
        let mut picked: Vec<JobId> = Vec::new();
        for p in (0..3).rev() {
            for &id in self.functions[function].queues[p].iter().rev() {
                if picked.len() == count {
                    break;
                }
                let old_enough = queued_by.is_none_or(|t| self.jobs[&id].since <= t);
                if old_enough && self.releasable(id) {
                    picked.push(id);
                }
            }
        }
        if picked.is_empty() {
            return;
        }
        let set: HashSet<JobId> = picked.iter().copied().collect();
        for q in &mut self.functions[function].queues {
            q.retain(|id| !set.contains(id));
        }
        for id in picked {
            handles.push(self.forget(id));
        }
    }

    fn releasable(&self, id: JobId) -> bool {
        let job = &self.jobs[&id];
        job.background
            && job.persisted
            && job.clients().is_empty()
            && job.acks().is_empty()
            && !matches!(job.kind(), JobKind::Sched(_))
    }

    /// Drops a job that is out of every queue and timer without removing it from the store
    /// (another member may hold it now, or will); its handle.
    fn forget(&mut self, id: JobId) -> Bytes {
        let handle = self.handle_of(id);
        if let Some(job) = self.jobs.get_mut(&id) {
            job.persisted = false;
        }
        let mut sink = Outbox::default();
        self.drop_job(id, &mut sink);
        debug_assert!(
            sink.effects.is_empty(),
            "a forgotten job has no one to answer"
        );
        handle
    }

    /// Takes in jobs claimed from the shared queue: each is queued (or waits for its time)
    /// as a replayed job is, with its original handle. A claimed job whose unique id a job
    /// of this core already has is kept apart (the store's unique index makes that a job
    /// still being written here, which the store will report as coalesced).
    pub fn cluster_adopt(&mut self, jobs: Vec<StoredJob>, now: UnixMillis, out: &mut Outbox) {
        for job in jobs {
            let function = self.functions.intern(&job.function);
            self.cluster_touch(function, out);
            self.restore_as(job, now, out, false);
        }
    }

    /// The store found that these jobs' unique ids were already in the cluster: their
    /// submitters get the existing job's handle, and the copies here are dropped (a copy a
    /// foreground client is attached to runs here as well: at least once).
    pub fn cluster_coalesced(&mut self, coalesced: &[Coalesced], out: &mut Outbox) {
        for c in coalesced {
            let Some(id) = self.job_by_handle(&c.handle) else {
                continue;
            };
            let job = self
                .jobs
                .get_mut(&id)
                .expect("handle index points at a job");
            for conn in job.take_acks() {
                out.send(
                    conn,
                    gearbox_proto::Response::JobCreated {
                        handle: c.existing.clone(),
                    },
                );
            }
            job.persisted = false;
            if job.clients().is_empty() && job.state == JobState::Persisting {
                self.drop_job(id, out);
            }
        }
    }

    /// This member had been declared dead (its heartbeats stalled): the store freed every job
    /// it held, and other members may have claimed them. The queued and waiting ones are
    /// dropped here (running ones finish; their results still reach their clients).
    pub fn cluster_forget_held(&mut self) -> usize {
        if self.cluster.is_none() {
            return 0;
        }
        let held: Vec<JobId> = self
            .jobs
            .values()
            .filter(|j| {
                j.persisted && matches!(j.state, JobState::Queued | JobState::Waiting { .. })
            })
            .map(|j| j.id)
            .collect();
        for &id in &held {
            self.unqueue(id);
            self.forget(id);
        }
        held.len()
    }
}

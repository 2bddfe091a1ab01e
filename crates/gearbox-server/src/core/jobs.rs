//! Job life cycle: submit, wake workers, grab, finish, re-queue, cancel.

use bytes::Bytes;
use gearbox_proto::{ErrorCode, Priority, Response};

use super::ids::{ConnId, JobId};
use super::lookup::handle_for;
use super::state::{Job, JobKind, JobState};
use super::table::UniqueKey;
use super::time::UnixMillis;
use super::{Core, Outbox, TimerKind};

/// The ERROR text for a function name (or client id) with a line break.
pub(super) const CONTROL_IN_NAME: &str =
    "names may not contain a line break (CR or LF): the admin protocol prints them one per line";

/// Whether `name` has a line break, which would forge lines in the admin replies that print
/// it (and end gearadmin's read early at a forged `.`). A tab is allowed: Perl's
/// Gearman::Client and Gearman::Worker join their `prefix` to function names with one.
pub(super) fn has_control(name: &[u8]) -> bool {
    name.iter().any(|b| *b == b'\n' || *b == b'\r')
}

/// Which GRAB_JOB variant a worker sent; decides the assignment packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Grab {
    /// GRAB_JOB: JOB_ASSIGN.
    Plain,
    /// GRAB_JOB_UNIQ: JOB_ASSIGN_UNIQ.
    Uniq,
    /// GRAB_JOB_ALL: JOB_ASSIGN_ALL for reduce jobs, JOB_ASSIGN_UNIQ otherwise.
    All,
}

/// How a job ended, for counters and for SCHED re-arming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Completed,
    Failed,
    Exception,
    Cancelled,
}

/// A job as submitted, before the core gives it an id and a handle.
#[derive(Debug)]
pub(super) struct NewJob {
    pub function: Bytes,
    pub unique: Bytes,
    pub data: Bytes,
    pub priority: Priority,
    pub background: bool,
    pub kind: JobKind,
}

impl NewJob {
    /// A background job at normal priority (EPOCH and SCHED jobs are always such).
    pub fn background(function: Bytes, unique: Bytes, data: Bytes, kind: JobKind) -> NewJob {
        NewJob {
            function,
            unique,
            data,
            priority: Priority::Normal,
            background: true,
            kind,
        }
    }
}

impl Core {
    pub(super) fn submit(&mut self, conn: ConnId, new: NewJob, now: UnixMillis, out: &mut Outbox) {
        let NewJob {
            function,
            unique,
            data,
            priority,
            background,
            kind,
        } = new;
        if function.len() > self.config.max_function {
            out.error(conn, ErrorCode::ArgumentTooLarge, "function name too long");
            return;
        }
        let reducer = match &kind {
            JobKind::Reduce { reducer } => reducer.as_ref(),
            _ => &[],
        };
        if has_control(&function) || has_control(reducer) {
            out.error(conn, ErrorCode::InvalidArguments, CONTROL_IN_NAME);
            return;
        }
        if unique.len() > self.config.max_unique {
            out.error(conn, ErrorCode::ArgumentTooLarge, "Unique value too large");
            return;
        }
        if self.draining {
            out.error(
                conn,
                ErrorCode::Shutdown,
                "server is shutting down, not accepting jobs",
            );
            return;
        }
        let hash = UniqueKey::of(&unique, &data).map(|key| {
            let hash = self.uniques.hash(&function, key);
            let found = self
                .functions
                .id(&function)
                .and_then(|f| self.find_unique(hash, f, key));
            (hash, found)
        });
        if let Some((_, Some(id))) = hash {
            let job = self
                .jobs
                .get_mut(&id)
                .expect("unique index points at a job");
            // A background duplicate was promised this job: it must run even if every
            // foreground client leaves, so the job is no longer droppable as abandoned.
            job.background |= background;
            if !background {
                // Attached once per submission, as gearmand does: a libgearman client that
                // submits the same unique twice on one connection waits for two results.
                job.clients_mut().push(conn);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.attached.insert(id);
                }
            }
            self.log_job(id, "joined", Some(conn));
            if background && self.must_wait_for_store(id) {
                // Acknowledged only once the store holds it.
                self.persist(id, conn, out);
                return;
            }
            let handle = self.handle_of(id);
            out.send(conn, Response::JobCreated { handle });
            return;
        }
        if let JobKind::Sched(s) = &kind {
            if s.next_after(now).is_none() {
                let text = format!("schedule {:?} never fires", s.text);
                out.error(conn, ErrorCode::InvalidArguments, text);
                return;
            }
        }
        let function = self.functions.intern(&function);
        let f = &mut self.functions[function];
        let limit = f.max_queue[priority.index()];
        if limit > 0 && f.total() >= limit as usize {
            f.stats.rejected += 1;
            out.error(conn, ErrorCode::QueueError, "Job queue is full");
            return;
        }
        f.stats.submitted += 1;
        f.jobs += 1;
        let id = self.next_job_id();
        let due = match &kind {
            JobKind::Epoch(at) => Some(*at).filter(|d| *d > now),
            JobKind::Sched(s) => s.next_after(now),
            _ => None,
        };
        let mut job = Job::new(id, function, &unique, data, priority, kind);
        job.background = background;
        job.since = now;
        if !background {
            job.clients_mut().push(conn);
        }
        if let Some((hash, _)) = hash {
            self.uniques.insert(hash, id);
            job.unique_hash = hash;
        }
        self.jobs.insert(job);
        self.log_job(id, "submitted", Some(conn));
        if !background {
            self.conn_mut(conn).attached.insert(id);
        }
        if background && self.config.persistent {
            self.jobs.get_mut(&id).expect("just inserted").state = JobState::Persisting;
            self.persist(id, conn, out);
            return;
        }
        out.send(
            conn,
            Response::JobCreated {
                handle: self.handle_of(id),
            },
        );
        match due {
            Some(due) => self.wait_until(id, due, out),
            None => self.enqueue(id, false, now, out),
        }
    }

    /// Puts a job in its queue (at the front for a retry) and wakes sleeping workers.
    pub(super) fn enqueue(&mut self, id: JobId, front: bool, now: UnixMillis, out: &mut Outbox) {
        let job = self.jobs.get_mut(&id).expect("job exists");
        job.state = JobState::Queued;
        job.since = now;
        let (function, p) = (job.function, job.priority.index());
        self.log_job(id, if front { "requeued" } else { "queued" }, None);
        self.cluster_touch(function, out);
        let f = &mut self.functions[function];
        if front {
            f.queues[p].push_front(id);
        } else {
            f.queues[p].push_back(id);
        }
        let limit = if self.config.worker_wakeup == 0 {
            usize::MAX
        } else {
            self.config.worker_wakeup
        };
        let mut woken = 0;
        for w in &f.workers {
            if woken == limit {
                break;
            }
            if let Some(c) = self.conns.get_mut(w) {
                if c.sleeping {
                    c.sleeping = false;
                    out.send(*w, Response::Noop);
                    woken += 1;
                }
            }
        }
    }

    /// Picks the next job for a worker: highest priority across all its functions, FIFO within
    /// a priority, round-robin between functions of equal priority.
    fn pick(&mut self, conn: ConnId, out: &mut Outbox) -> Option<JobId> {
        let c = self.conns.get(&conn)?;
        let (n, rr, peer) = (c.abilities.len(), c.rr, c.peer);
        for p in 0..3 {
            for i in 0..n {
                let idx = (rr + i) % n;
                let function = self.conns[&conn].abilities[idx].function;
                if peer {
                    if let Some(id) = self.pick_for_peer(function, p) {
                        self.conns.get_mut(&conn)?.rr = idx + 1;
                        return Some(id);
                    }
                    continue;
                }
                while let Some(id) = self.functions[function].queues[p].pop_front() {
                    let job = &self.jobs[&id];
                    if !job.background && job.clients().is_empty() {
                        // Every client left before a worker took it: dropped, as gearmand does.
                        self.drop_job(id, out);
                        continue;
                    }
                    self.conns.get_mut(&conn)?.rr = idx + 1;
                    return Some(id);
                }
            }
        }
        None
    }

    pub(super) fn grab(&mut self, conn: ConnId, grab: Grab, now: UnixMillis, out: &mut Outbox) {
        // Asking for work means awake, NOOP or not (gearmand): a stale sleeping flag would
        // draw NOOPs meant for workers that really sleep (and use up `worker_wakeup`).
        self.conn_mut(conn).sleeping = false;
        let Some(id) = self.pick(conn, out) else {
            out.send(conn, Response::NoJob);
            if !std::mem::replace(&mut self.conn_mut(conn).wants_work, true) {
                self.cluster_touch_conn(conn, out);
            }
            return;
        };
        if std::mem::replace(&mut self.conn_mut(conn).wants_work, false) {
            self.cluster_touch_conn(conn, out);
        }
        let c = self
            .conns
            .get_mut(&conn)
            .expect("connection checked by caller");
        c.running.insert(id);
        let job = self.jobs.get_mut(&id).expect("picked job exists");
        let deadline = c
            .ability(job.function)
            .and_then(|a| a.timeout_ms)
            .map(|t| now.plus_ms(t));
        job.state = JobState::Running {
            worker: conn,
            deadline,
        };
        let wait = now.ms_since(job.since);
        job.since = now;
        let (fid, unique, data) = (job.function, job.unique_bytes(), job.data_bytes());
        let handle = handle_for(&self.config.handle_prefix, job);
        let reducer = match job.kind() {
            JobKind::Reduce { reducer } => Some(reducer.clone()),
            _ => None,
        };
        if let Some(d) = deadline {
            self.timers.insert((d, id, TimerKind::Timeout));
            out.timers_changed = true;
        }
        self.arm_warnings(id, now, out);
        self.log_job(id, "assigned", Some(conn));
        let f = &mut self.functions[fid];
        f.running += 1;
        f.stats.queue_wait.observe(wait);
        let function = f.name.clone();
        let r = match (grab, reducer) {
            (Grab::Plain, _) => Response::JobAssign {
                handle,
                function,
                data,
            },
            (Grab::All, Some(reducer)) => Response::JobAssignAll {
                handle,
                function,
                unique,
                reducer,
                data,
            },
            (Grab::Uniq | Grab::All, _) => Response::JobAssignUniq {
                handle,
                function,
                unique,
                data,
            },
        };
        out.send(conn, r);
    }

    /// The next internal job id (also the number in new handles).
    pub(super) fn next_job_id(&mut self) -> JobId {
        let id = self.next_job;
        self.next_job = id.next();
        id
    }

    /// Removes a job from every index (it must already be out of its queue), and from the store
    /// if it is stored. Submitters still waiting for the store are answered: the job existed
    /// and is over, so nothing they were promised can be lost.
    pub(super) fn drop_job(&mut self, id: JobId, out: &mut Outbox) -> Option<Job> {
        let job = self.jobs.remove(&id)?;
        if job.persisted || !job.acks().is_empty() {
            let handle = handle_for(&self.config.handle_prefix, &job);
            for &conn in job.acks() {
                out.send(
                    conn,
                    Response::JobCreated {
                        handle: handle.clone(),
                    },
                );
            }
            if job.persisted {
                out.effects.push(super::Effect::Complete(handle));
            }
        }
        if let Some(own) = job.own_handle() {
            self.foreign.remove(own);
        }
        let f = &mut self.functions[job.function];
        f.jobs = f.jobs.saturating_sub(1);
        if job.unique_hash != 0 {
            // The hash it was filed under: no rehashing, and no read of the unique id itself
            // (another cache miss on a deep queue).
            self.uniques.remove(job.unique_hash, id);
        }
        for cl in job.clients() {
            if let Some(c) = self.conns.get_mut(cl) {
                c.attached.remove(&id);
            }
        }
        Some(job)
    }

    /// Takes a running job off its worker and updates counters.
    fn stop_running(&mut self, id: JobId, now: UnixMillis) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if let JobState::Running { worker, deadline } = job.state {
            job.state = JobState::Queued;
            // Drop its CAN_DO_TIMEOUT timer now, so finished jobs leave nothing behind.
            if let Some(d) = deadline {
                self.timers.remove(&(d, id, TimerKind::Timeout));
            }
            let (run, since) = (now.ms_since(job.since), job.since);
            let function = job.function;
            self.disarm_slow_warning(id, since);
            self.disarm_stuck_warning(id, since);
            if let Some(c) = self.conns.get_mut(&worker) {
                c.running.remove(&id);
            }
            let f = &mut self.functions[function];
            f.running = f.running.saturating_sub(1);
            f.stats.run_time.observe(run);
        }
    }

    /// A job is over. SCHED jobs are re-armed for their next time; others are dropped.
    pub(super) fn finish(
        &mut self,
        id: JobId,
        outcome: Outcome,
        now: UnixMillis,
        out: &mut Outbox,
    ) {
        self.stop_running(id, now);
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        let stats = &mut self.functions[job.function].stats;
        match outcome {
            Outcome::Completed => stats.completed += 1,
            Outcome::Failed | Outcome::Cancelled => stats.failed += 1,
            Outcome::Exception => stats.exceptions += 1,
        }
        let next = match (self.jobs[&id].kind(), outcome) {
            (_, Outcome::Cancelled) => None,
            (JobKind::Sched(s), _) => s.next_after(now),
            _ => None,
        };
        match next {
            Some(due) => {
                let job = self.jobs.get_mut(&id).expect("job exists");
                job.set_retries(0);
                job.clear_status();
                // Its clients already got this run's final packet: they are done with it.
                for cl in job.take_clients() {
                    if let Some(c) = self.conns.get_mut(&cl) {
                        c.attached.remove(&id);
                    }
                }
                self.wait_until(id, due, out);
            }
            None => {
                self.drop_job(id, out);
            }
        }
    }

    /// Sends WORK_FAIL to every client of a job and ends it as failed.
    pub(super) fn fail_job(
        &mut self,
        id: JobId,
        outcome: Outcome,
        now: UnixMillis,
        out: &mut Outbox,
    ) {
        let event = match outcome {
            Outcome::Cancelled => "cancelled",
            _ => "failed",
        };
        self.log_job(id, event, None);
        if let Some(job) = self.jobs.get(&id) {
            let handle = handle_for(&self.config.handle_prefix, job);
            for &cl in job.clients() {
                out.send(
                    cl,
                    Response::WorkFail {
                        handle: handle.clone(),
                    },
                );
            }
        }
        self.finish(id, outcome, now, out);
    }

    /// A running job lost its worker (disconnect or timeout): re-queue it and count a retry,
    /// or fail it past the retry limit.
    pub(super) fn worker_lost(&mut self, id: JobId, now: UnixMillis, out: &mut Outbox) {
        self.stop_running(id, now);
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        job.set_retries(job.retries() + 1);
        job.clear_status();
        let over = self
            .config
            .job_retries
            .is_some_and(|limit| job.retries() >= limit);
        let function = job.function;
        if over {
            self.fail_job(id, Outcome::Failed, now, out);
        } else {
            self.functions[function].stats.retried += 1;
            self.enqueue(id, true, now, out);
        }
    }

    /// Drops queued foreground jobs whose every client has left: nobody waits for their
    /// result, so no worker should run them (gearmand leaves them queued and counted until a
    /// worker takes them). One pass over each queue they are in.
    pub(super) fn drop_abandoned(&mut self, jobs: Vec<JobId>, out: &mut Outbox) {
        if jobs.is_empty() {
            return;
        }
        let gone: std::collections::HashSet<JobId> = jobs.iter().copied().collect();
        let mut queues: Vec<(super::functions::FnId, usize)> = jobs
            .iter()
            .map(|id| (self.jobs[id].function, self.jobs[id].priority.index()))
            .collect();
        queues.sort_unstable();
        queues.dedup();
        for (function, p) in queues {
            self.functions[function].queues[p].retain(|id| !gone.contains(id));
        }
        for id in jobs {
            self.log_job(id, "abandoned", None);
            self.drop_job(id, out);
        }
    }

    /// Admin `cancel job`: clients get WORK_FAIL, the job is removed. Returns false if unknown.
    pub(super) fn cancel(&mut self, handle: &[u8], now: UnixMillis, out: &mut Outbox) -> bool {
        let Some(id) = self.job_by_handle(handle) else {
            return false;
        };
        self.unqueue(id);
        self.fail_job(id, Outcome::Cancelled, now, out);
        true
    }

    /// Takes a queued job out of its queue, or a waiting one off its timer; a running or
    /// persisting job is left as it is.
    pub(super) fn unqueue(&mut self, id: JobId) {
        let job = &self.jobs[&id];
        let (function, p) = (job.function, job.priority.index());
        match job.state {
            JobState::Queued => {
                let f = &mut self.functions[function];
                if let Some(pos) = f.queues[p].iter().position(|j| *j == id) {
                    f.queues[p].remove(pos);
                }
            }
            JobState::Waiting { due } => {
                self.timers.remove(&(due, id, TimerKind::Due));
                let f = &mut self.functions[function];
                f.waiting = f.waiting.saturating_sub(1);
            }
            JobState::Running { .. } | JobState::Persisting => {}
        }
    }
}

//! Durability in the core: background jobs wait for the store before JOB_CREATED, finished
//! jobs leave the store, stored jobs are replayed at start-up.
//!
//! The core only emits [`Effect::Persist`] and [`Effect::Complete`] and is told the outcome
//! with [`Core::committed`]; the network layer talks to the store (batched, see `net`).

use bytes::Bytes;
use gearbox_proto::{parse_handle, ErrorCode, Response};
use gearbox_store::{StoreError, StoredJob};

use super::cron::Schedule;
use super::ids::{ConnId, JobId};
use super::log::Lossy;
use super::state::{Job, JobKind, JobState};
use super::table::UniqueKey;
use super::time::UnixMillis;
use super::{Core, Effect, Outbox};

/// The store's record of a job.
fn record_of(job: &Job, function: Bytes, handle: Bytes) -> StoredJob {
    let (when_to_run, schedule, reducer) = match job.kind() {
        JobKind::Plain => (0, None, None),
        JobKind::Epoch(at) => (at.as_secs(), None, None),
        JobKind::Sched(s) => (0, Some(s.text.clone()), None),
        JobKind::Reduce { reducer } => (0, None, Some(reducer.clone())),
    };
    StoredJob {
        handle,
        function,
        unique: job.unique_bytes(),
        priority: job.priority,
        data: job.data_bytes(),
        when_to_run,
        schedule,
        reducer,
    }
}

/// The kind of job a stored record describes; `None` if its schedule no longer parses.
fn kind_of(record: &StoredJob) -> Option<JobKind> {
    if let Some(text) = &record.schedule {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let fields: [&str; 5] = fields.try_into().ok()?;
        let fields = fields.map(|f| Bytes::copy_from_slice(f.as_bytes()));
        return Schedule::parse(&fields)
            .ok()
            .map(|s| JobKind::Sched(Box::new(s)));
    }
    Some(match (&record.reducer, record.when_to_run) {
        (Some(reducer), _) => JobKind::Reduce {
            reducer: reducer.clone(),
        },
        (None, 0) => JobKind::Plain,
        (None, secs) => JobKind::Epoch(UnixMillis::from_secs(secs)),
    })
}

impl Core {
    /// Asks the store to keep `id` (a background job) and parks `conn` until it has.
    pub(super) fn persist(&mut self, id: JobId, conn: ConnId, out: &mut Outbox) {
        let handle = self.handle_of(id);
        let job = self.jobs.get_mut(&id).expect("job exists");
        // Someone already waits for a commit of this job: share it.
        let in_flight = !job.acks().is_empty();
        if !conn.is_in(job.acks()) {
            job.acks_mut().push(conn);
        }
        if !in_flight {
            let function = self.functions[job.function].name.clone();
            out.effects
                .push(Effect::Persist(Box::new(record_of(job, function, handle))));
        }
    }

    /// Whether a background submit for this existing job must wait for the store.
    pub(super) fn must_wait_for_store(&self, id: JobId) -> bool {
        let job = &self.jobs[&id];
        self.config.persistent && (!job.persisted || !job.acks().is_empty())
    }

    /// The store committed (or failed to commit) the jobs with these handles.
    ///
    /// On success the waiting submitters get JOB_CREATED and new jobs enter their queues; a job
    /// that ended while its commit was in flight is removed from the store again. On failure
    /// the submitters get `ERROR QUEUE_ERROR` and jobs that only existed for them are dropped:
    /// nothing is acknowledged that the store does not hold.
    pub fn committed(
        &mut self,
        handles: &[Bytes],
        result: Result<(), &StoreError>,
        now: UnixMillis,
        out: &mut Outbox,
    ) {
        for handle in handles {
            let Some(id) = self.job_by_handle(handle) else {
                if result.is_ok() {
                    out.effects.push(Effect::Complete(handle.clone()));
                }
                continue;
            };
            let job = self
                .jobs
                .get_mut(&id)
                .expect("handle index points at a job");
            let acks = job.take_acks();
            let new = job.state == JobState::Persisting;
            match result {
                Ok(()) => {
                    job.persisted = true;
                    for conn in acks {
                        out.send(
                            conn,
                            Response::JobCreated {
                                handle: handle.clone(),
                            },
                        );
                    }
                    if new {
                        self.schedule(id, now, out);
                    }
                }
                Err(error) => {
                    let text = format!("could not store the job: {error}");
                    for conn in acks {
                        out.error(conn, ErrorCode::QueueError, text.clone());
                    }
                    if new {
                        for &client in self.jobs[&id].clients() {
                            out.send(
                                client,
                                Response::WorkFail {
                                    handle: handle.clone(),
                                },
                            );
                        }
                        self.drop_job(id, out);
                    }
                }
            }
        }
    }

    /// Puts a new or replayed job where it belongs: waiting for its time or in its queue.
    fn schedule(&mut self, id: JobId, now: UnixMillis, out: &mut Outbox) {
        let due = match self.jobs[&id].kind() {
            JobKind::Epoch(at) => Some(*at).filter(|d| *d > now),
            JobKind::Sched(s) => Some(s.next_after(now).unwrap_or(UnixMillis::NEVER)),
            _ => None,
        };
        match due {
            Some(due) => self.wait_until(id, due, out),
            None => self.enqueue(id, false, now, out),
        }
    }

    /// Replays a stored job at start-up, with its original handle.
    ///
    /// A record that duplicates a job already replayed (same function and unique id) is
    /// removed from the store; one whose schedule no longer parses is kept in the store and
    /// skipped, with a warning.
    pub fn restore(&mut self, record: StoredJob, now: UnixMillis, out: &mut Outbox) {
        self.restore_as(record, now, out, true);
    }

    /// [`Core::restore`]; without `dedupe`, a record whose unique id a held job already has
    /// is taken in anyway, outside the unique index (cluster claims: see `cluster`).
    pub(super) fn restore_as(
        &mut self,
        record: StoredJob,
        now: UnixMillis,
        out: &mut Outbox,
        dedupe: bool,
    ) {
        let Some(kind) = kind_of(&record) else {
            tracing::warn!(
                handle = %Lossy(&record.handle),
                function = %Lossy(&record.function),
                unique = %Lossy(&record.unique),
                schedule = record.schedule.as_deref(),
                "stored job has an invalid schedule; skipped"
            );
            return;
        };
        if self.job_by_handle(&record.handle).is_some() {
            return;
        }
        let hash = UniqueKey::of(&record.unique, &record.data).map(|key| {
            let hash = self.uniques.hash(&record.function, key);
            let found = self
                .functions
                .id(&record.function)
                .and_then(|f| self.find_unique(hash, f, key));
            (hash, found)
        });
        let hash = match hash {
            Some((_, Some(_))) if dedupe => {
                out.effects.push(Effect::Complete(record.handle));
                return;
            }
            Some((_, Some(_))) => None,
            other => other,
        };
        // Our own handles keep their number as the job id, so new handles continue after the
        // highest one replayed. Any other handle (another prefix, a number not in canonical
        // form, a number taken, or the last one, which leaves none to continue with) is kept
        // as the job's own.
        let number = parse_handle(&record.handle, self.config.handle_prefix.as_bytes())
            .filter(|n| *n < u64::MAX)
            .map(JobId::new)
            .filter(|id| !self.jobs.contains_key(id));
        let id = match number {
            Some(id) => {
                self.next_job = self.next_job.max(id.next());
                id
            }
            None => self.next_job_id(),
        };
        let function = self.functions.intern(&record.function);
        self.functions[function].jobs += 1;
        let mut job = Job::new(
            id,
            function,
            &record.unique,
            record.data,
            record.priority,
            kind,
        );
        job.background = true;
        job.state = JobState::Persisting;
        job.persisted = true;
        job.since = now;
        if number.is_none() {
            // A canonical handle is the one its number formats to: only others are foreign.
            self.foreign.insert(record.handle.clone(), id);
            job.set_own_handle(record.handle);
        }
        if let Some((hash, _)) = hash {
            self.uniques.insert(hash, id);
            job.unique_hash = hash;
        }
        self.jobs.insert(job);
        self.schedule(id, now, out);
    }
}

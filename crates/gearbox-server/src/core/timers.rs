//! Timers: EPOCH and SCHED jobs waiting for their time, and CAN_DO_TIMEOUT deadlines of
//! running jobs. The core never reads the clock: the caller passes the time in and asks
//! [`Core::next_deadline`] when to call [`Core::tick`] next.

use super::jobs::Outcome;
use super::state::{JobId, JobState};
use super::{Core, Outbox, TimeoutAction, TimerKind};

impl Core {
    /// Parks a job until `due_ms`.
    pub(super) fn wait_until(&mut self, id: JobId, due_ms: u64, out: &mut Outbox) {
        let job = self.jobs.get_mut(&id).expect("job exists");
        job.state = JobState::Waiting { due_ms };
        self.functions[job.function].waiting += 1;
        if due_ms != u64::MAX {
            self.timers.insert((due_ms, id, TimerKind::Due));
            out.timers_changed = true;
        }
    }

    /// The earliest pending timer, UNIX milliseconds.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.first().map(|t| t.0)
    }

    /// Fires every timer due at `now_ms`: EPOCH/SCHED jobs enter their queues (waking workers),
    /// and running jobs past their CAN_DO_TIMEOUT are failed or re-queued.
    pub fn tick(&mut self, now_ms: u64, out: &mut Outbox) {
        while let Some(&(due, id, kind)) = self.timers.first() {
            if due > now_ms {
                break;
            }
            self.timers.pop_first();
            let Some(job) = self.jobs.get(&id) else {
                continue;
            };
            let (state, function) = (job.state, job.function);
            match (kind, state) {
                (TimerKind::Due, JobState::Waiting { due_ms }) if due_ms == due => {
                    let f = &mut self.functions[function];
                    f.waiting = f.waiting.saturating_sub(1);
                    self.enqueue(id, false, now_ms, out);
                }
                (
                    TimerKind::Timeout,
                    JobState::Running {
                        worker,
                        deadline_ms: Some(d),
                    },
                ) if d.get() == due => {
                    self.functions[function].stats.timed_out += 1;
                    let handle = self.handle_of(id);
                    tracing::info!(handle = ?handle, conn = worker, "job exceeded CAN_DO_TIMEOUT");
                    match self.config.timeout_action {
                        TimeoutAction::Fail => self.fail_job(id, Outcome::Failed, now_ms, out),
                        TimeoutAction::Requeue => self.worker_lost(id, now_ms, out),
                    }
                }
                _ => {}
            }
        }
    }
}

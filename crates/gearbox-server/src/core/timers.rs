//! Timers: EPOCH and SCHED jobs waiting for their time, and CAN_DO_TIMEOUT deadlines and
//! slow-job warnings of running jobs. The core never reads the clock: the caller passes the time in and asks
//! [`Core::next_deadline`] when to call [`Core::tick`] next.

use super::ids::JobId;
use super::jobs::Outcome;
use super::log::Lossy;
use super::state::JobState;
use super::time::UnixMillis;
use super::{Core, Outbox, TimeoutAction, TimerKind};

impl Core {
    /// Parks a job until `due` (for good if that is [`UnixMillis::NEVER`]).
    pub(super) fn wait_until(&mut self, id: JobId, due: UnixMillis, out: &mut Outbox) {
        let job = self.jobs.get_mut(&id).expect("job exists");
        job.state = JobState::Waiting { due };
        self.functions[job.function].waiting += 1;
        self.log_job(id, "waiting", None);
        if due != UnixMillis::NEVER {
            self.timers.insert((due, id, TimerKind::Due));
            out.timers_changed = true;
        }
    }

    /// The earliest pending timer.
    pub fn next_deadline(&self) -> Option<UnixMillis> {
        self.timers.first().map(|t| t.0)
    }

    /// Fires every timer due at `now`: EPOCH/SCHED jobs enter their queues (waking workers),
    /// and running jobs past their CAN_DO_TIMEOUT are failed or re-queued.
    pub fn tick(&mut self, now: UnixMillis, out: &mut Outbox) {
        while let Some(&(due, id, kind)) = self.timers.first() {
            if due > now {
                break;
            }
            self.timers.pop_first();
            let Some(job) = self.jobs.get(&id) else {
                continue;
            };
            let (state, function) = (job.state, job.function);
            match (kind, state) {
                (TimerKind::Due, JobState::Waiting { due: d }) if d == due => {
                    let f = &mut self.functions[function];
                    f.waiting = f.waiting.saturating_sub(1);
                    self.enqueue(id, false, now, out);
                }
                (
                    TimerKind::Timeout,
                    JobState::Running {
                        worker,
                        deadline: Some(d),
                    },
                ) if d == due => {
                    self.functions[function].stats.timed_out += 1;
                    let handle = self.handle_of(id);
                    tracing::info!(
                        handle = %Lossy(&handle),
                        function = %Lossy(&self.functions[function].name),
                        worker = worker.get(),
                        action = ?self.config.timeout_action,
                        "job exceeded CAN_DO_TIMEOUT"
                    );
                    match self.config.timeout_action {
                        TimeoutAction::Fail => {
                            if let Some(c) = self.conns.get_mut(&worker) {
                                c.note_timed_out(handle);
                            }
                            self.fail_job(id, Outcome::Failed, now, out)
                        }
                        TimeoutAction::Requeue => self.worker_lost(id, now, out),
                    }
                }
                (TimerKind::Slow, JobState::Running { .. }) => self.warn_slow(id, now),
                (TimerKind::Stuck, JobState::Running { .. }) => self.check_stuck(id, now, out),
                _ => {}
            }
        }
    }
}

//! Job-lifecycle log lines and the slow-job and stuck-worker warnings. Each line carries the job's handle,
//! function and unique as structured fields (bytes shown as lossy UTF-8), built only when the
//! level is enabled, so a quiet server pays one level check per step.

use std::fmt;

use super::ids::{ConnId, JobId};
use super::lookup::handle_for;
use super::state::JobState;
use super::time::UnixMillis;
use super::{Core, Outbox, TimerKind};

/// Bytes from the wire shown as text (invalid UTF-8 replaced), for log fields.
pub(super) struct Lossy<'a>(pub &'a [u8]);

impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.0))
    }
}

impl Core {
    /// Logs step `event` ("submitted", "queued", "assigned", ...) of job `id` at debug, with
    /// `conn` the connection that caused it (submitter or worker), if any.
    #[inline]
    pub(super) fn log_job(&self, id: JobId, event: &'static str, conn: Option<ConnId>) {
        if tracing::level_enabled!(tracing::Level::DEBUG) {
            self.log_job_now(id, event, conn);
        }
    }

    /// [`Core::log_job`] once the level is known to be on: out of line, off the hot path.
    #[cold]
    #[inline(never)]
    fn log_job_now(&self, id: JobId, event: &'static str, conn: Option<ConnId>) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        tracing::debug!(
            event,
            handle = %Lossy(&handle_for(&self.config.handle_prefix, job)),
            function = %Lossy(&self.functions[job.function].name),
            unique = %Lossy(&job.unique_bytes()),
            conn = conn.map(ConnId::get),
            background = job.background,
            "job {event}"
        );
    }

    /// Arms the slow-job and stuck-worker checks of job `id`, just assigned at `now` (each
    /// only if its threshold is not 0).
    pub(super) fn arm_warnings(&mut self, id: JobId, now: UnixMillis, out: &mut Outbox) {
        for (kind, threshold) in [
            (TimerKind::Slow, self.config.slow_job_warning_ms),
            (TimerKind::Stuck, self.config.stuck_worker_warning_ms),
        ] {
            if threshold > 0 {
                self.timers.insert((now.plus_ms(threshold), id, kind));
                out.timers_changed = true;
            }
        }
    }

    /// Disarms the slow-job warning of job `id`, assigned at `since`, as it stops running.
    pub(super) fn disarm_slow_warning(&mut self, id: JobId, since: UnixMillis) {
        if self.config.slow_job_warning_ms > 0 {
            let due = since.plus_ms(self.config.slow_job_warning_ms);
            self.timers.remove(&(due, id, TimerKind::Slow));
        }
    }

    /// The slow-job timer of job `id` fired at `now`: one warning, if it still runs.
    pub(super) fn warn_slow(&self, id: JobId, now: UnixMillis) {
        let message = "slow job: still running past the slow-job warning threshold";
        self.warn_running(id, now, message, self.config.slow_job_warning_ms, None);
    }

    /// Disarms the stuck-worker check of job `id`, assigned at `since`, as it stops running.
    pub(super) fn disarm_stuck_warning(&mut self, id: JobId, since: UnixMillis) {
        let threshold = self.config.stuck_worker_warning_ms;
        if threshold == 0 {
            return;
        }
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let due = job.stuck_due().unwrap_or(since.plus_ms(threshold));
        job.clear_run_marks();
        self.timers.remove(&(due, id, TimerKind::Stuck));
    }

    /// The worker of job `id` sent WORK_STATUS, WORK_DATA or WORK_WARNING for it at `now`.
    /// Only noted: the timer moves lazily, when it fires.
    pub(super) fn note_progress(&mut self, id: JobId, now: UnixMillis) {
        if self.config.stuck_worker_warning_ms > 0 {
            if let Some(job) = self.jobs.get_mut(&id) {
                job.set_heard(now);
            }
        }
    }

    /// The stuck-worker timer of job `id` fired at `now`: if the worker sent something since
    /// the timer was set, it moves to a threshold after that; otherwise one warning.
    pub(super) fn check_stuck(&mut self, id: JobId, now: UnixMillis, out: &mut Outbox) {
        let threshold = self.config.stuck_worker_warning_ms;
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let last = job.heard().unwrap_or(job.since);
        let due = last.plus_ms(threshold);
        if due > now {
            job.set_stuck_due(due);
            self.timers.insert((due, id, TimerKind::Stuck));
            out.timers_changed = true;
            return;
        }
        let message = "stuck worker: nothing from it about its job past the stuck-worker threshold";
        self.warn_running(id, now, message, threshold, Some(now.ms_since(last)));
    }

    /// One warning about running job `id`, with the job, its worker and the threshold
    /// passed; `silent_ms`: how long the worker has said nothing about it.
    fn warn_running(
        &self,
        id: JobId,
        now: UnixMillis,
        message: &'static str,
        threshold_ms: u64,
        silent_ms: Option<u64>,
    ) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        let JobState::Running { worker, .. } = job.state else {
            return;
        };
        let peer = self.conns.get(&worker).map(|c| c.info.peer_ip.as_str());
        tracing::warn!(
            handle = %Lossy(&handle_for(&self.config.handle_prefix, job)),
            function = %Lossy(&self.functions[job.function].name),
            unique = %Lossy(&job.unique_bytes()),
            worker = worker.get(),
            peer,
            running_ms = now.ms_since(job.since),
            silent_ms,
            threshold_ms,
            "{message}"
        );
    }
}

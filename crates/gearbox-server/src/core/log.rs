//! Job-lifecycle log lines and the slow-job warning. Each line carries the job's handle,
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
    pub(super) fn log_job(&self, id: JobId, event: &'static str, conn: Option<ConnId>) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
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

    /// Arms the slow-job warning of job `id`, just assigned at `now` (nothing if it is off).
    pub(super) fn arm_slow_warning(&mut self, id: JobId, now: UnixMillis, out: &mut Outbox) {
        if self.config.slow_job_warning_ms > 0 {
            let due = now.plus_ms(self.config.slow_job_warning_ms);
            self.timers.insert((due, id, TimerKind::Slow));
            out.timers_changed = true;
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
            threshold_ms = self.config.slow_job_warning_ms,
            "slow job: still running past the slow-job warning threshold"
        );
    }
}

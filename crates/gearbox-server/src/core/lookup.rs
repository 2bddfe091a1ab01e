//! Finding jobs and names: a job's handle (derived from its id, not stored), the job a handle
//! or a unique id names.

use bytes::Bytes;
use gearbox_proto::{format_handle, parse_handle};

use super::functions::FnId;
use super::ids::JobId;
use super::state::Job;
use super::table::UniqueKey;
use super::Core;

/// The handle of `job`: the one it was replayed with, or the one derived from its id.
pub(super) fn handle_for(prefix: &str, job: &Job) -> Bytes {
    match job.own_handle() {
        Some(h) => h.clone(),
        None => format_handle(prefix.as_bytes(), job.id.get()),
    }
}

impl Core {
    /// The handle of job `id` (which must exist).
    pub(super) fn handle_of(&self, id: JobId) -> Bytes {
        handle_for(&self.config.handle_prefix, &self.jobs[&id])
    }

    /// The job with this handle.
    pub(super) fn job_by_handle(&self, handle: &[u8]) -> Option<JobId> {
        // Replayed jobs with handles of their own are rare: skip hashing the handle.
        if !self.foreign.is_empty() {
            if let Some(&id) = self.foreign.get(handle) {
                return Some(id);
            }
        }
        let id = JobId::new(parse_handle(handle, self.config.handle_prefix.as_bytes())?);
        // A replayed job with a handle of its own does not answer to its derived one.
        self.jobs
            .get(&id)
            .filter(|j| j.own_handle().is_none())
            .map(|_| id)
    }

    /// The job of `function` coalescing on `key`, filed under `hash`.
    pub(super) fn find_unique(
        &self,
        hash: u64,
        function: FnId,
        key: UniqueKey<'_>,
    ) -> Option<JobId> {
        self.uniques.find(hash, |id| {
            self.jobs
                .get(&id)
                .is_some_and(|j| j.function == function && UniqueKey::of_job(j) == Some(key))
        })
    }
}

//! Finding jobs and names: a job's handle (derived from its id, not stored), the job a handle
//! or a unique id names.

use bytes::Bytes;

use super::functions::FnId;
use super::state::{Job, JobId};
use super::table::UniqueKey;
use super::Core;

/// The handle `<prefix>:<id>`, in an exact-size buffer.
pub(super) fn format_handle(prefix: &str, id: JobId) -> Bytes {
    // Not `write!`: it costs more than the rest of the handle, made for every JOB_CREATED
    // and JOB_ASSIGN.
    let mut buf = [0u8; 20];
    let digits = gearbox_proto::fmt_u64(&mut buf, id);
    let mut v = Vec::with_capacity(prefix.len() + 1 + digits.len());
    v.extend_from_slice(prefix.as_bytes());
    v.push(b':');
    v.extend_from_slice(digits);
    Bytes::from(v)
}

/// The id in a handle of the form [`format_handle`] makes (and only that exact form: no
/// leading zeros or signs), or `None`.
pub(super) fn parse_handle(prefix: &str, handle: &[u8]) -> Option<JobId> {
    let digits = handle.strip_prefix(prefix.as_bytes())?.strip_prefix(b":")?;
    let canonical = matches!(digits.first(), Some(b'1'..=b'9'))
        && digits.len() <= 20
        && digits.iter().all(u8::is_ascii_digit);
    if !canonical {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The handle of `job`: the one it was replayed with, or the one derived from its id.
pub(super) fn handle_for(prefix: &str, job: &Job) -> Bytes {
    match job.own_handle() {
        Some(h) => h.clone(),
        None => format_handle(prefix, job.id),
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
        let id = parse_handle(&self.config.handle_prefix, handle)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_in_canonical_form_only() {
        let h = format_handle("H:x", 42);
        assert_eq!(&h[..], b"H:x:42");
        assert_eq!(h.len(), 6);
        for id in [0, 1, 9, 10, 99, 100, 12_345, u64::MAX / 7, u64::MAX] {
            assert_eq!(format_handle("H:x", id), format!("H:x:{id}").as_bytes());
        }
        assert_eq!(parse_handle("H:x", &h), Some(42));
        assert_eq!(
            parse_handle("H:x", &format_handle("H:x", u64::MAX)),
            Some(u64::MAX)
        );
        for bad in [
            &b"H:x:042"[..],
            b"H:x:+42",
            b"H:x:0",
            b"H:x:",
            b"H:x42",
            b"H:y:42",
            b"H:x:4 2",
            b"H:x:99999999999999999999",
        ] {
            assert_eq!(parse_handle("H:x", bad), None, "{bad:?}");
        }
    }
}

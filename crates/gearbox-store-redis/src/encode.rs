//! Key names, and jobs to and from Redis hash fields.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use gearbox_proto::Priority;
use gearbox_store::{StoreError, StoredJob};

/// The keys under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    /// `<prefix>job:`, to which a handle is appended.
    job_prefix: Arc<[u8]>,
    /// `<prefix>jobs`: the sorted set of handles in replay order.
    pub jobs: Arc<[u8]>,
    /// `<prefix>seq`: the insertion sequence counter.
    pub seq: Arc<[u8]>,
}

impl Keys {
    pub(crate) fn new(prefix: &[u8]) -> Self {
        let with = |suffix: &[u8]| -> Arc<[u8]> { [prefix, suffix].concat().into() };
        Keys {
            job_prefix: with(b"job:"),
            jobs: with(b"jobs"),
            seq: with(b"seq"),
        }
    }

    /// `<prefix>job:<handle>`.
    pub(crate) fn job(&self, handle: &[u8]) -> Vec<u8> {
        [&self.job_prefix[..], handle].concat()
    }

    /// Whether `key` is one of ours.
    pub(crate) fn is_ours(&self, key: &[u8]) -> bool {
        key.starts_with(&self.job_prefix) || key == &self.jobs[..] || key == &self.seq[..]
    }
}

/// The hash fields of a job, as `HSET` arguments (field, value, field, value...).
pub(crate) fn fields(job: &StoredJob) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![
        ("function", job.function.to_vec()),
        ("unique", job.unique.to_vec()),
        ("priority", job.priority.index().to_string().into_bytes()),
        ("data", job.data.to_vec()),
        ("when_to_run", job.when_to_run.to_string().into_bytes()),
    ];
    if let Some(schedule) = &job.schedule {
        out.push(("schedule", schedule.clone().into_bytes()));
    }
    if let Some(reducer) = &job.reducer {
        out.push(("reducer", reducer.to_vec()));
    }
    out
}

/// Rebuilds a job from its handle and the fields `HGETALL` returned.
pub(crate) fn decode(
    handle: Vec<u8>,
    mut fields: HashMap<Vec<u8>, Vec<u8>>,
) -> Result<StoredJob, StoreError> {
    let invalid = |reason: &str| StoreError::InvalidRow {
        handle: String::from_utf8_lossy(&handle).into_owned(),
        reason: reason.to_owned(),
    };
    let mut take = |name: &str| fields.remove(name.as_bytes());
    let function = take("function").ok_or_else(|| invalid("no function field"))?;
    let unique = take("unique").unwrap_or_default();
    let data = take("data").unwrap_or_default();
    let priority = match take("priority").as_deref() {
        Some(b"0") => Priority::High,
        Some(b"1") | None => Priority::Normal,
        Some(b"2") => Priority::Low,
        Some(_) => return Err(invalid("priority is not 0, 1 or 2")),
    };
    let when_to_run = match take("when_to_run") {
        None => 0,
        Some(v) => std::str::from_utf8(&v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("when_to_run is not a number of seconds"))?,
    };
    let schedule = take("schedule")
        .map(String::from_utf8)
        .transpose()
        .map_err(|_| invalid("schedule is not UTF-8"))?;
    let reducer = take("reducer").map(Bytes::from);
    Ok(StoredJob {
        handle: Bytes::from(handle),
        function: Bytes::from(function),
        unique: Bytes::from(unique),
        priority,
        data: Bytes::from(data),
        when_to_run,
        schedule,
        reducer,
    })
}

//! What is stored: one background job, and a batch of writes committed together.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use gearbox_proto::Priority;

/// A background job as it is kept in a store and replayed at start-up.
///
/// Every field the core needs to rebuild the job with its original handle, priority and
/// unique coalescing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJob {
    /// The job handle (`H:<host>:<n>`), the job's key in the store.
    pub handle: Bytes,
    /// The function name.
    pub function: Bytes,
    /// The unique id given by the client (empty: none). Arbitrary bytes.
    pub unique: Bytes,
    /// The job's priority.
    pub priority: Priority,
    /// The opaque payload (arbitrary bytes, NULs included).
    pub data: Bytes,
    /// When the job may run, in UNIX seconds; 0 means at once.
    pub when_to_run: u64,
    /// For SCHED jobs: the five cron fields, separated by spaces.
    pub schedule: Option<String>,
    /// For reduce jobs (SUBMIT_REDUCE_JOB_BACKGROUND): the reducer function.
    pub reducer: Option<Bytes>,
}

impl StoredJob {
    /// A job with no unique id, normal priority, due at once, no schedule and no reducer.
    pub fn new(
        handle: impl Into<Bytes>,
        function: impl Into<Bytes>,
        data: impl Into<Bytes>,
    ) -> Self {
        StoredJob {
            handle: handle.into(),
            function: function.into(),
            unique: Bytes::new(),
            priority: Priority::Normal,
            data: data.into(),
            when_to_run: 0,
            schedule: None,
            reducer: None,
        }
    }
}

/// Writes that are committed atomically: all of them or none.
///
/// Within a batch, `persist` is applied before `complete`, so a handle named in both ends up
/// removed. Persisting a handle that is already stored replaces its fields and keeps its place
/// in the replay order. Completing a handle that is not stored is not an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Jobs to write (new background jobs, or changed ones such as a re-armed SCHED job).
    pub persist: Vec<StoredJob>,
    /// Handles of jobs to remove: completed, failed, cancelled or out of retries.
    pub complete: Vec<Bytes>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    /// A batch that writes one job.
    pub fn persist(job: StoredJob) -> Self {
        Batch {
            persist: vec![job],
            complete: Vec::new(),
        }
    }

    /// A batch that removes one job.
    pub fn complete(handle: impl Into<Bytes>) -> Self {
        Batch {
            persist: Vec::new(),
            complete: vec![handle.into()],
        }
    }

    /// True when the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty() && self.complete.is_empty()
    }

    /// Number of writes (persists plus removals).
    pub fn len(&self) -> usize {
        self.persist.len() + self.complete.len()
    }

    /// What the batch amounts to, for stores that write it as one set of removals and one
    /// set of writes: every removed handle once (in the order first named), and the jobs to
    /// write (each handle once, with its last fields, in the order it was first persisted),
    /// leaving out those the batch also removes. Removing the first set and then writing the
    /// second has the effect of applying the batch.
    pub fn net_effect(&self) -> NetEffect<'_> {
        let removed_set: HashSet<&[u8]> = self.complete.iter().map(|h| &h[..]).collect();
        let mut seen = HashSet::with_capacity(self.complete.len());
        let removed = self
            .complete
            .iter()
            .filter(|h| seen.insert(&h[..]))
            .collect();
        let mut slot_of: HashMap<&[u8], usize> = HashMap::with_capacity(self.persist.len());
        let mut written: Vec<&StoredJob> = Vec::with_capacity(self.persist.len());
        for job in self
            .persist
            .iter()
            .filter(|j| !removed_set.contains(&j.handle[..]))
        {
            match slot_of.get(&job.handle[..]) {
                Some(&i) => written[i] = job,
                None => {
                    slot_of.insert(&job.handle[..], written.len());
                    written.push(job);
                }
            }
        }
        NetEffect { removed, written }
    }
}

/// The removals and writes a [`Batch`] amounts to: see [`Batch::net_effect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetEffect<'a> {
    /// Handles to remove, each once.
    pub removed: Vec<&'a Bytes>,
    /// Jobs to write, each handle once, none of them removed by the batch.
    pub written: Vec<&'a StoredJob>,
}

/// How hard a store tries to keep acknowledged jobs through crashes.
///
/// In every mode a commit is atomic and the database stays consistent after a crash of the
/// process; the modes differ in what an operating-system crash or a power loss can cost.
/// SQLite always runs in WAL mode; the `synchronous` setting differs.
///
/// With the `serde` feature it is a string in configuration files, read by the same
/// [`FromStr`](std::str::FromStr) as command lines (any case, `full` and `off` as aliases) and
/// written as [`Durability::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// Every commit is flushed to stable storage (fsync) before it is acknowledged: an
    /// acknowledged job survives a process crash, an OS crash and a power loss.
    /// SQLite: `synchronous=FULL`. The default.
    #[default]
    Fsync,
    /// Commits are written to the OS before they are acknowledged but flushed to disk only at
    /// checkpoints: an acknowledged job survives a crash of gearboxd (even SIGKILL); an OS
    /// crash or power loss may roll back the most recent commits, never corrupt the database.
    /// SQLite: `synchronous=NORMAL`.
    Normal,
    /// Nothing is ever flushed: an acknowledged job survives a crash of gearboxd, but an OS
    /// crash or power loss may lose recent jobs and may corrupt the database.
    /// SQLite: `synchronous=OFF`.
    None,
}

impl Durability {
    /// The name used on the command line and in configuration: `fsync`, `normal` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Fsync => "fsync",
            Durability::Normal => "normal",
            Durability::None => "none",
        }
    }
}

impl std::fmt::Display for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Durability {
    type Err = crate::StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "fsync" | "full" => Ok(Durability::Fsync),
            "normal" => Ok(Durability::Normal),
            "none" | "off" => Ok(Durability::None),
            _ => Err(crate::StoreError::UnknownDurability(s.to_owned())),
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Durability {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Durability {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handles<'a>(jobs: impl IntoIterator<Item = &'a StoredJob>) -> Vec<&'a [u8]> {
        jobs.into_iter().map(|j| &j.handle[..]).collect()
    }

    #[test]
    fn net_effect_is_applying_persists_then_removals() {
        let a1 = StoredJob::new("a", "f", "1");
        let a2 = StoredJob::new("a", "f", "2");
        let batch = Batch {
            persist: vec![
                a1,
                StoredJob::new("b", "f", ""),
                a2.clone(),
                StoredJob::new("c", "f", ""),
            ],
            complete: vec![Bytes::from("b"), Bytes::from("x"), Bytes::from("b")],
        };
        let net = batch.net_effect();
        assert_eq!(net.removed, [&Bytes::from("b"), &Bytes::from("x")]);
        // a: where it was first persisted, with its last fields; b is removed; c follows.
        assert_eq!(handles(net.written.iter().copied()), [&b"a"[..], b"c"]);
        assert_eq!(net.written[0].data, a2.data);
        assert_eq!(Batch::new().net_effect().written.len(), 0);
    }
}

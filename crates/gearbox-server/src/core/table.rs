//! Where jobs are kept: [`JobTable`] (the jobs themselves, by id) and [`UniqueIndex`] (which
//! job a function + unique id coalesces into).
//!
//! Both are laid out for queues of millions of jobs: the table is a slab of jobs plus an
//! id-to-slot map of 16-byte entries, and the unique index maps a keyed hash of the unique id
//! to the job id instead of holding copies of the names.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::ops::Index;

use super::ids::JobId;
use super::state::Job;

/// Hasher for keys that are either server-chosen sequential ids or already keyed hashes.
///
/// A `u64` keeps its low bits (the map's bucket index) and gets its top seven bits (the map's
/// tag byte) from a multiplication: ids handed out in sequence land in neighbouring buckets,
/// so a queue worked through in order walks the map's memory in order instead of missing the
/// cache on every lookup, while the tags still tell neighbours apart.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        const TAG_BITS: u64 = 0x7F << 57;
        let n = self.0 ^ n;
        self.0 = (n & !TAG_BITS) | (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) & TAG_BITS);
    }
}

/// Emptied tables bigger than this are freed (smaller ones are kept for reuse).
const SHRINK_ABOVE: usize = 4096;

/// A map keyed by server-chosen ids (`ConnId`, `JobId`) or by already keyed hashes
/// (`u64`): keys that hash as one `write_u64`, as [`IdHasher`] expects.
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
/// A set of server-chosen ids (see [`IdMap`]).
pub(crate) type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;
/// A map keyed by names that clients choose (functions, handles): a fast hash with a
/// per-process random seed, so a client cannot pick colliding names in advance.
pub(crate) type NameMap<V> = HashMap<bytes::Bytes, V, foldhash::fast::RandomState>;

/// Every job the core holds, by id.
#[derive(Debug, Default)]
pub struct JobTable {
    /// The jobs; `None` marks a free slot (listed in `free`).
    slots: Vec<Option<Job>>,
    /// Free slots, reused last-freed first.
    free: Vec<u32>,
    /// Slot of each job id.
    slot_of: IdMap<JobId, u32>,
}

impl JobTable {
    /// Number of jobs.
    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    /// Whether a job with this id is held.
    pub fn contains_key(&self, id: &JobId) -> bool {
        self.slot_of.contains_key(id)
    }

    /// The job with this id.
    pub fn get(&self, id: &JobId) -> Option<&Job> {
        let slot = *self.slot_of.get(id)?;
        self.slots[slot as usize].as_ref()
    }

    /// The job with this id, to change.
    pub fn get_mut(&mut self, id: &JobId) -> Option<&mut Job> {
        let slot = *self.slot_of.get(id)?;
        self.slots[slot as usize].as_mut()
    }

    /// Adds a job under its id, replacing any job with the same id.
    pub fn insert(&mut self, job: Job) {
        let slot = match self.slot_of.entry(job.id) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let slot = match self.free.pop() {
                    Some(s) => s,
                    None => {
                        self.slots.push(None);
                        u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 jobs")
                    }
                };
                *e.insert(slot)
            }
        };
        self.slots[slot as usize] = Some(job);
    }

    /// Takes the job with this id out.
    pub fn remove(&mut self, id: &JobId) -> Option<Job> {
        let slot = self.slot_of.remove(id)?;
        self.free.push(slot);
        let job = self.slots[slot as usize].take();
        if self.slot_of.is_empty() && self.slots.capacity() > SHRINK_ABOVE {
            // Nothing left: give the memory of a drained burst back.
            self.slots = Vec::new();
            self.free = Vec::new();
            self.slot_of = IdMap::default();
        }
        job
    }

    /// Every job, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &Job> {
        self.slots.iter().flatten()
    }

    /// Every job with its id, in no particular order.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (&JobId, &Job)> {
        self.values().map(|j| (&j.id, j))
    }
}

impl Index<&JobId> for JobTable {
    type Output = Job;

    fn index(&self, id: &JobId) -> &Job {
        self.get(id).expect("no job with this id")
    }
}

/// What a job coalesces on, besides its function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UniqueKey<'a> {
    /// An explicit unique id.
    Id(&'a [u8]),
    /// Unique id `-`: the payload is the unique id. Such jobs coalesce with each other by
    /// payload, never with an explicit unique id (as gearmand).
    Payload(&'a [u8]),
}

impl<'a> UniqueKey<'a> {
    /// The key of a job with this unique id and payload; `None` when it has no unique id.
    pub fn of(unique: &'a [u8], data: &'a [u8]) -> Option<UniqueKey<'a>> {
        match unique {
            b"" => None,
            b"-" => Some(UniqueKey::Payload(data)),
            u => Some(UniqueKey::Id(u)),
        }
    }

    /// The key of `job`.
    pub fn of_job(job: &'a Job) -> Option<UniqueKey<'a>> {
        UniqueKey::of(job.unique(), job.data())
    }

    /// Whether `wire` (a unique id as a client names it, e.g. in GET_STATUS_UNIQUE) is this
    /// key. A `-` job's key reads as its payload behind a NUL byte, which no unique id in a
    /// SUBMIT can contain.
    pub fn is(&self, wire: &[u8]) -> bool {
        match *self {
            UniqueKey::Id(u) => u == wire,
            UniqueKey::Payload(d) => wire.split_first() == Some((&0, d)),
        }
    }
}

/// Function + unique key to job id. Entries hold only a keyed 64-bit hash and the id; the
/// caller confirms a candidate against the job itself, and the rare jobs whose hash is taken
/// wait in an overflow list.
///
/// Removals wait in a short list and are carried out [`REMOVE_BATCH`] at a time: the index
/// is keyed by a random hash, so on a deep queue every removal misses the cache, and a loop
/// of independent removals lets the processor overlap those misses instead of stalling on
/// each one between packets. Until then a removed job's entry stays; [`find`](Self::find)
/// never returns it, as the caller confirms each candidate against the job itself.
#[derive(Debug, Default)]
pub struct UniqueIndex {
    keys: RandomState,
    first: IdMap<u64, JobId>,
    more: IdMap<u64, Vec<JobId>>,
    /// Removals not yet carried out.
    pending: Vec<(u64, JobId)>,
}

/// Removals carried out together (see [`UniqueIndex`]).
const REMOVE_BATCH: usize = 32;

impl UniqueIndex {
    /// The hash a function and key are filed under; never 0 (a job's "not filed").
    pub fn hash(&self, function: &[u8], key: UniqueKey<'_>) -> u64 {
        self.keys.hash_one((function, key)).max(1)
    }

    /// The job filed under `hash` for which `is_it` holds.
    pub fn find(&self, hash: u64, is_it: impl Fn(JobId) -> bool) -> Option<JobId> {
        let first = *self.first.get(&hash)?;
        if is_it(first) {
            return Some(first);
        }
        self.more.get(&hash)?.iter().copied().find(|&id| is_it(id))
    }

    /// Files `id` under `hash`.
    pub fn insert(&mut self, hash: u64, id: JobId) {
        match self.first.entry(hash) {
            Entry::Vacant(e) => {
                e.insert(id);
            }
            Entry::Occupied(_) => self.more.entry(hash).or_default().push(id),
        }
    }

    /// Removes `id` from under `hash` (soon: see [`UniqueIndex`]).
    pub fn remove(&mut self, hash: u64, id: JobId) {
        self.pending.push((hash, id));
        // An index about to empty is cleared at once, so its memory goes back when a
        // queue drains.
        if self.pending.len() >= REMOVE_BATCH || self.pending.len() >= self.first.len() {
            let mut pending = std::mem::take(&mut self.pending);
            for (hash, id) in pending.drain(..) {
                self.remove_now(hash, id);
            }
            self.pending = pending;
        }
    }

    /// Removes `id` from under `hash`; returns whether it was there.
    fn remove_now(&mut self, hash: u64, id: JobId) -> bool {
        if self.first.get(&hash) == Some(&id) {
            match self.more.get_mut(&hash) {
                Some(more) => {
                    let next = more.pop().expect("overflow lists are never empty");
                    if more.is_empty() {
                        self.more.remove(&hash);
                    }
                    self.first.insert(hash, next);
                }
                None => {
                    self.first.remove(&hash);
                }
            }
            if self.first.is_empty() && self.first.capacity() > SHRINK_ABOVE {
                self.first = IdMap::default();
            }
            return true;
        }
        let Some(more) = self.more.get_mut(&hash) else {
            return false;
        };
        let Some(pos) = more.iter().position(|&j| j == id) else {
            return false;
        };
        more.swap_remove(pos);
        if more.is_empty() {
            self.more.remove(&hash);
        }
        true
    }

    /// Number of jobs filed.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Every (hash, job id) filed and not removed.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (u64, JobId)> + '_ {
        let more = self
            .more
            .iter()
            .flat_map(|(&h, ids)| ids.iter().map(move |&id| (h, id)));
        self.first
            .iter()
            .map(|(&h, &id)| (h, id))
            .chain(more)
            .filter(|e| !self.pending.contains(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_hash_as_the_numbers_they_wrap() {
        use super::super::ids::ConnId;
        // The hasher is tuned for bare sequential numbers: the id types must look the same.
        let build = BuildHasherDefault::<IdHasher>::default();
        for n in [0, 1, 2, 1000, u64::MAX] {
            assert_eq!(build.hash_one(JobId::new(n)), build.hash_one(n));
            assert_eq!(build.hash_one(ConnId::new(n)), build.hash_one(n));
        }
    }

    #[test]
    fn colliding_hashes_keep_every_job() {
        let id = JobId::new;
        let mut ix = UniqueIndex::default();
        for n in 1..=3 {
            ix.insert(7, id(n));
        }
        assert_eq!(ix.len(), 3);
        assert_eq!(ix.find(7, |j| j == id(2)), Some(id(2)));
        assert!(ix.remove_now(7, id(1)));
        assert_eq!(ix.find(7, |j| j == id(3)), Some(id(3)));
        assert_eq!(ix.find(7, |j| j == id(1)), None);
        assert!(!ix.remove_now(7, id(1)));
        assert!(ix.remove_now(7, id(3)) && ix.remove_now(7, id(2)));
        assert_eq!((ix.len(), ix.more.len()), (0, 0));
    }

    #[test]
    fn removals_in_batches_keep_every_other_job_findable() {
        let id = JobId::new;
        let mut ix = UniqueIndex::default();
        let live = |gone: &[JobId]| {
            let gone = gone.to_vec();
            move |id: JobId| !gone.contains(&id)
        };
        // Jobs 1..=100 under hashes 0..10 (ten per hash), then half of them removed.
        for n in 1..=100 {
            ix.insert(n % 10, id(n));
        }
        let mut gone = Vec::new();
        for n in (1..=100).filter(|n| n % 2 == 0) {
            ix.remove(n % 10, id(n));
            gone.push(id(n));
            // A new job under the hash of one just removed is found, whether the removal
            // was carried out yet or not.
            let new = id(1000 + n);
            ix.insert(n % 10, new);
            assert_eq!(ix.find(n % 10, |j| j == new), Some(new));
            ix.remove(n % 10, new);
            gone.push(new);
        }
        let is_live = live(&gone);
        for n in 1..=100 {
            let found = ix.find(n % 10, |j| j == id(n) && is_live(j));
            assert_eq!(found, (n % 2 == 1).then_some(id(n)), "job {n}");
        }
        assert_eq!(ix.len(), 50);
        for n in (1..=100).filter(|n| n % 2 == 1) {
            ix.remove(n % 10, id(n));
        }
        assert_eq!((ix.len(), ix.first.len(), ix.more.len()), (0, 0, 0));
        assert!(ix.pending.is_empty(), "an emptied index is cleared at once");
    }

    #[test]
    fn a_job_stays_small() {
        // Queues hold millions of jobs: every byte here is a megabyte per million.
        assert!(std::mem::size_of::<Option<Job>>() <= 104);
    }

    #[test]
    fn dash_keys_read_as_nul_and_payload() {
        let k = UniqueKey::of(b"-", b"abc").expect("has a key");
        assert!(k.is(b"\0abc") && !k.is(b"abc") && !k.is(b"-"));
        assert_eq!(UniqueKey::of(b"", b"abc"), None);
        assert!(UniqueKey::of(b"u", b"abc").expect("has a key").is(b"u"));
    }
}

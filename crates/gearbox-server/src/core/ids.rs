//! The ids the core hands out and keys its maps by: [`ConnId`] and [`JobId`]. Each is its own
//! type, so one cannot be passed where the other (or a time, or a count) is meant.
//!
//! Both hash as the bare `u64` they wrap (the derived `Hash` writes it with one `write_u64`),
//! which is what the id-keyed maps' hasher is built for (see `table::IdHasher`).

use std::fmt;

/// A connection: numbered in order by the network layer from 1 and never reused (not a file
/// descriptor, which the system hands out again after a close).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    /// The first id handed out.
    pub const FIRST: ConnId = ConnId(1);

    /// The connection numbered `n`.
    pub const fn new(n: u64) -> ConnId {
        ConnId(n)
    }

    /// Its number (for logs and displays).
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The id after this one.
    pub const fn next(self) -> ConnId {
        ConnId(self.0 + 1)
    }

    /// Whether `ids` holds this id. Use it rather than `ids.contains(..)` where the list can
    /// be long (a job's clients): the standard library searches a slice of bare integers in
    /// vectorised chunks but a slice of a newtype one element at a time, a third slower per
    /// submit on a job with a thousand clients. This is the same chunked search.
    pub(crate) fn is_in(self, ids: &[ConnId]) -> bool {
        const LANES: usize = 8;
        let mut chunks = ids.chunks_exact(LANES);
        for chunk in &mut chunks {
            // No early exit within a chunk: branch-free, so the compiler vectorises it.
            if chunk.iter().fold(false, |found, id| found | (*id == self)) {
                return true;
            }
        }
        chunks.remainder().contains(&self)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A job, numbered in order by the core from 1; the number in the job's handle
/// (`<prefix>:<n>`) unless the job was replayed with a handle of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(u64);

impl JobId {
    /// The first id handed out.
    pub(crate) const FIRST: JobId = JobId(1);

    /// The job numbered `n` (the core hands the numbers out; 0 is never one).
    pub(crate) const fn new(n: u64) -> JobId {
        JobId(n)
    }

    /// Its number, as in its handle.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The id after this one.
    pub(crate) const fn next(self) -> JobId {
        JobId(self.0 + 1)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_in_finds_an_id_anywhere_in_a_list_of_any_length() {
        for len in 0..40u64 {
            let ids: Vec<ConnId> = (1..=len).map(ConnId::new).collect();
            for n in 0..=len + 1 {
                assert_eq!(
                    ConnId::new(n).is_in(&ids),
                    (1..=len).contains(&n),
                    "{n} in 1..={len}"
                );
            }
        }
    }
}

//! The encoding of a member's published load ([`MemberStatus`]) in the members table's
//! `status` column (`BYTEA`).
//!
//! Version 1, all integers big-endian:
//!
//! ```text
//! u8  version (1)
//! u64 connections
//! u64 workers
//! u32 number of functions, then for each:
//!     u32 name length, the name's bytes (any bytes), u64 queued, u64 running, u64 workers
//! ```
//!
//! A value that does not decode (another version, truncated) reads as an empty status: the
//! admin views then show the member with no load rather than failing.

use bytes::Bytes;
use gearbox_store::cluster::{FunctionLoad, MemberStatus};

/// The only version written.
const VERSION: u8 = 1;

/// `status` encoded for the `status` column.
pub(crate) fn encode(status: &MemberStatus) -> Vec<u8> {
    let size = 21
        + status
            .functions
            .iter()
            .map(|f| 28 + f.function.len())
            .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.push(VERSION);
    out.extend_from_slice(&status.connections.to_be_bytes());
    out.extend_from_slice(&status.workers.to_be_bytes());
    out.extend_from_slice(&(status.functions.len() as u32).to_be_bytes());
    for f in &status.functions {
        out.extend_from_slice(&(f.function.len() as u32).to_be_bytes());
        out.extend_from_slice(&f.function);
        for n in [f.queued, f.running, f.workers] {
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    out
}

/// The status in `bytes`; `None` when it is not a version 1 encoding.
pub(crate) fn decode(bytes: &[u8]) -> Option<MemberStatus> {
    let mut r = Reader(bytes);
    if r.take(1)? != [VERSION] {
        return None;
    }
    let connections = r.u64()?;
    let workers = r.u64()?;
    let count = r.u32()?;
    let mut functions = Vec::with_capacity((count as usize).min(1024));
    for _ in 0..count {
        let len = r.u32()? as usize;
        let function = Bytes::copy_from_slice(r.take(len)?);
        functions.push(FunctionLoad {
            function,
            queued: r.u64()?,
            running: r.u64()?,
            workers: r.u64()?,
        });
    }
    r.0.is_empty().then_some(MemberStatus {
        connections,
        workers,
        functions,
    })
}

/// A cursor over the encoded bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let status = MemberStatus {
            connections: 7,
            workers: 2,
            functions: vec![
                FunctionLoad {
                    function: Bytes::from_static(b"re\tverse\xff"),
                    queued: 3,
                    running: 1,
                    workers: 2,
                },
                FunctionLoad {
                    function: Bytes::new(),
                    queued: u64::MAX,
                    running: 0,
                    workers: 0,
                },
            ],
        };
        let bytes = encode(&status);
        assert_eq!(decode(&bytes), Some(status));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode(&[2]), None);
        assert_eq!(decode(&[]), None);
        assert_eq!(
            decode(&encode(&MemberStatus::default())),
            Some(MemberStatus::default())
        );
    }
}

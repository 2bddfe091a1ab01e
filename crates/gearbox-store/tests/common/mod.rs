//! Helpers shared by the SQLite store tests.

#![allow(dead_code)]

use bytes::Bytes;
use gearbox_proto::Priority;
use gearbox_store::{Durability, SqliteStore, StoredJob, DEFAULT_TABLE};
use tempfile::TempDir;

/// A fresh database in a throw-away directory; keep the `TempDir` alive while using it.
pub fn temp_store(durability: Durability) -> (TempDir, std::path::PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jobs.db");
    let store = SqliteStore::open(&path, DEFAULT_TABLE, durability).expect("open store");
    (dir, path, store)
}

/// A plain job `H:test:<n>` for function `f` with payload `data-<n>`.
pub fn job(n: usize) -> StoredJob {
    StoredJob::new(format!("H:test:{n}"), "f", format!("data-{n}"))
}

/// A job that uses every field, with bytes a text column would mangle.
pub fn full_job(n: usize) -> StoredJob {
    StoredJob {
        handle: Bytes::from(format!("H:host:{n}")),
        function: Bytes::from(format!("func\0{n}")),
        unique: Bytes::from(vec![0xff, 0x00, 0xfe, n as u8]),
        priority: Priority::ALL[n % 3],
        data: Bytes::from(vec![0u8, 1, 0, 255, 0, b'x', n as u8]),
        when_to_run: 1_700_000_000 + n as u64,
        schedule: n.is_multiple_of(2).then(|| format!("{} * * * 1-5", n % 60)),
        reducer: n
            .is_multiple_of(3)
            .then(|| Bytes::from(vec![b'r', 0, n as u8])),
    }
}

/// The handles of `jobs`, in order.
pub fn handles(jobs: &[StoredJob]) -> Vec<Bytes> {
    jobs.iter().map(|j| j.handle.clone()).collect()
}

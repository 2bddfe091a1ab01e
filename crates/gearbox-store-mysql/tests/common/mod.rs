//! Helpers for the MySQL store's tests: the throwaway MariaDB server comes from
//! [`gearbox_testkit::servers::mariadb`]; the jobs to store are built here.

#![allow(dead_code, unused_imports)] // each test file uses a different part

use bytes::Bytes;
use gearbox_proto::Priority;
use gearbox_store::StoredJob;
pub use gearbox_testkit::servers::mariadb::{MariaDb, DB};

/// Job `n`: handle `H:test:<n>`, a binary payload and the priority `n % 3`.
pub fn job(n: usize) -> StoredJob {
    StoredJob {
        handle: Bytes::from(format!("H:test:{n}")),
        function: Bytes::from_static(b"work"),
        unique: Bytes::from(format!("u{n}")),
        priority: Priority::ALL[n % 3],
        data: Bytes::from(vec![0, (n % 256) as u8, 0xff]),
        when_to_run: 0,
        schedule: None,
        reducer: None,
    }
}

/// The handles of `jobs`, as strings.
pub fn handles(jobs: &[StoredJob]) -> Vec<String> {
    jobs.iter()
        .map(|j| String::from_utf8_lossy(&j.handle).into_owned())
        .collect()
}

//! The store conformance suite: what every [`Store`] must do, written once and run against
//! each backend (memory, SQLite, PostgreSQL, MySQL/MariaDB, Redis) by
//! `tests/store_conformance.rs`.
//!
//! A backend takes part through a [`Harness`]: how to open a store on a namespace (a table, a
//! key prefix, a file), and, where the backend has them, how to take its database away and
//! bring it back, how to restart it, and how to lay out gearmand's queue table. Each case is
//! an `async fn` taking the harness; [`conformance_tests!`](crate::conformance_tests) turns
//! every case into a `#[tokio::test]` for one backend.
//!
//! - this file: [`Harness`], the job fixtures, and the macro.
//! - `cases`: the cases (round trip, large batches, concurrent commits, outages, restarts,
//!   gearmand import, bad input).
//! - `logs`: capturing a test's log lines, to check that an outage is logged once.

mod cases;
mod logs;

use std::sync::Arc;

use bytes::Bytes;
use gearbox_proto::Priority;
use gearbox_store::{Store, StoreError, StoredJob};

pub use cases::*;
pub use logs::CapturedLogs;

/// A row of gearmand's queue table: `unique_key`, `function_name`, `priority`, `data`,
/// `when_to_run`.
pub type GearmandRow = (&'static str, &'static str, i64, &'static [u8], i64);

/// One backend under test.
#[allow(async_fn_in_trait)]
pub trait Harness {
    /// Opens a store on `namespace` (a table name or key prefix). Stores opened on one
    /// namespace see the same jobs; on another, none.
    async fn try_open(&self, namespace: &str) -> Result<Arc<dyn Store>, StoreError>;

    /// [`Harness::try_open`] on a namespace that must work (letters, digits, underscores).
    async fn open(&self, namespace: &str) -> Arc<dyn Store> {
        match self.try_open(namespace).await {
            Ok(store) => store,
            Err(e) => panic!("cannot open the store on {namespace}: {e}"),
        }
    }

    /// Opens a store on a server address where nothing listens; `None` when the store has no
    /// server.
    async fn open_unreachable(&self) -> Option<Result<Arc<dyn Store>, StoreError>> {
        None
    }

    /// Jobs this store cannot keep as they are (a commit carrying one is refused as a whole).
    fn unstorable_jobs(&self) -> Vec<StoredJob> {
        Vec::new()
    }

    /// Takes the database away from `store` (stops the server, fills the disk). `false` when
    /// the backend has no outage to simulate.
    async fn break_store(&mut self, store: &Arc<dyn Store>) -> bool {
        let _ = store;
        false
    }

    /// Brings the database back after [`Harness::break_store`].
    async fn mend_store(&mut self, store: &Arc<dyn Store>) {
        let _ = store;
    }

    /// Whether `error` is what a commit gets during this backend's outage.
    fn is_outage_error(&self, error: &StoreError) -> bool {
        matches!(error, StoreError::Unavailable { .. })
    }

    /// Restarts the database server (while no request is running). `false` when there is
    /// no server to restart.
    async fn restart(&mut self) -> bool {
        false
    }

    /// Creates gearmand's queue table `table` (as gearmand's plugin for this database does)
    /// holding `rows`, in the database of namespace `namespace`. `false` when the backend has
    /// no gearmand table format.
    async fn seed_gearmand(&self, table: &str, rows: &[GearmandRow]) -> bool {
        let _ = (table, rows);
        false
    }

    /// The number of rows of table `table`.
    async fn count_rows(&self, table: &str) -> i64 {
        let _ = table;
        0
    }

    /// Creates a table `table` in none of the formats the store knows: a `unique_key` column
    /// but no `function_name` nor `seq`. `false` when the store has no tables.
    async fn seed_foreign_table(&self, table: &str) -> bool {
        let _ = table;
        false
    }
}

/// Job `n`: handle `H:test:<n>`, function `work`, unique `u<n>`, a binary payload and the
/// priority `n % 3`.
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

/// A job that uses every field, with bytes a text column would mangle (every store keeps
/// handles and schedules as text: those stay UTF-8 without NUL).
pub fn full_job() -> StoredJob {
    StoredJob {
        handle: Bytes::from_static(b"H:host:1"),
        function: Bytes::from_static(b"fn\x00with\xffbytes"),
        unique: Bytes::from_static(b"\x00\x01\xfe\xffbinary unique"),
        priority: Priority::Low,
        data: Bytes::from_static(b"\x00payload\x00\x00with NULs\xff"),
        when_to_run: 1_900_000_000,
        schedule: Some("*/5 * * * 1".into()),
        reducer: Some(Bytes::from_static(b"reduce\x00r")),
    }
}

/// The handles of `jobs`, as strings.
pub fn handles(jobs: &[StoredJob]) -> Vec<String> {
    jobs.iter()
        .map(|j| String::from_utf8_lossy(&j.handle).into_owned())
        .collect()
}

/// `H:test:<n>` for each `n`.
pub fn test_handles(ns: impl IntoIterator<Item = usize>) -> Vec<String> {
    ns.into_iter().map(|n| format!("H:test:{n}")).collect()
}

/// Defines one `#[tokio::test]` per conformance case for a backend: `$start` is an
/// expression giving `Option<impl Harness>` for a test name (`None`: skipped, with the reason
/// printed by the harness).
#[macro_export]
macro_rules! conformance_tests {
    ($backend:ident, $start:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;

            $crate::conformance_tests!(@case $start,
                round_trip, large_batches, concurrent_commits, outage, restart_while_idle,
                gearmand_import, bad_input);
        }
    };
    (@case $start:expr, $($case:ident),*) => {
        $(
            // A current-thread runtime: the store's writer task runs on the test's thread and
            // logs to the subscriber the outage case captures.
            #[tokio::test]
            async fn $case() {
                let start = $start;
                if let Some(mut harness) = start(stringify!($case)) {
                    $crate::conformance::$case(&mut harness).await;
                }
            }
        )*
    };
}

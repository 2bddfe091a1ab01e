//! The one error type of the storage layer.

use std::sync::Arc;

/// The underlying cause of a [`StoreError`], shared so that every caller of a failed group
/// commit receives its own copy of the same error.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while loading or writing jobs.
///
/// Cloneable: when one transaction carries the writes of many callers (the persister's group) and
/// fails, each of them gets the same error. Messages say what went wrong and what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The disk (or the database's size limit) is full; nothing of the failed batch was written.
    #[error("job store {location} is full: free disk space or raise the size limit; background jobs are refused until then")]
    DiskFull {
        /// The database file or server the error came from.
        location: String,
        /// The backend's own error.
        #[source]
        source: Cause,
    },
    /// Reading or writing the database failed at the operating-system level.
    #[error("I/O error on job store {location}: check the disk, the file system and the file's permissions")]
    Io {
        /// The database file or server the error came from.
        location: String,
        /// The backend's own error.
        #[source]
        source: Cause,
    },
    /// Another process holds a lock on the database for longer than the busy timeout.
    #[error("job store {location} is locked by another process: stop the other writer (one gearboxd per SQLite file) and retry")]
    Locked {
        /// The database file or server the error came from.
        location: String,
        /// The backend's own error.
        #[source]
        source: Cause,
    },
    /// The database (or its directory) cannot be written.
    #[error("job store {location} is read-only: make the database file and its directory writable by gearboxd")]
    ReadOnly {
        /// The database file or server the error came from.
        location: String,
        /// The backend's own error.
        #[source]
        source: Cause,
    },
    /// The database file is damaged or is not a database.
    #[error("job store {location} is corrupt or not a database: restore it from a backup or move it aside")]
    Corrupt {
        /// The database file or server the error came from.
        location: String,
        /// The backend's own error.
        #[source]
        source: Cause,
    },
    /// The database cannot be opened or created.
    #[error("cannot open job store {location}: check that the path exists and is writable")]
    Open {
        /// The database file or server the error came from.
        location: String,
        /// The backend's own error.
        #[source]
        source: Cause,
    },
    /// Any other backend failure.
    #[error("job store {location} failed: {source}")]
    Backend {
        /// The database file or server the error came from.
        location: String,
        /// The backend's own error.
        #[source]
        source: Cause,
    },
    /// A table name that is not a plain SQL identifier.
    #[error("invalid table name {name:?}: use letters, digits and underscores, not starting with a digit")]
    InvalidTableName {
        /// The rejected name.
        name: String,
    },
    /// A table to import from exists but lacks gearmand's columns.
    #[error("table {table:?} is not a gearmand queue table: column {column:?} is missing")]
    NotGearmandTable {
        /// The table that was inspected.
        table: String,
        /// The first missing column.
        column: String,
    },
    /// Our own table exists with a different layout (e.g. created by another program).
    #[error("table {table:?} exists but lacks column {column:?}: choose another table name")]
    SchemaMismatch {
        /// Our table's name.
        table: String,
        /// The first missing column.
        column: String,
    },
    /// A stored row cannot be turned back into a job.
    #[error("stored job {handle:?} is invalid ({reason}): remove the row or fix it by hand")]
    InvalidRow {
        /// The row's handle, lossily decoded.
        handle: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A durability name other than `fsync`, `normal` or `none`.
    #[error("unknown durability {0:?}: use fsync, normal or none")]
    UnknownDurability(String),
    /// A commit did not finish in time (the server gives up on it; it may still land, and
    /// then the job runs once more after a restart: at least once, never lost).
    #[error("job store {location} did not answer within {millis} ms: check the database's load and the disk")]
    TimedOut {
        /// The store that did not answer.
        location: String,
        /// How long it was given.
        millis: u64,
    },
    /// The store has been closed (or its writer thread has stopped).
    #[error("job store is closed: restart gearboxd")]
    Closed,
    /// The database server cannot be reached (down, restarting, or the connection was lost).
    /// The store reconnects on its own; until then every commit fails with this error.
    #[error("job store {location} is unreachable: start the database server or fix the connection settings; gearboxd reconnects on its own and refuses background jobs until then")]
    Unavailable {
        /// The server the error came from (without password).
        location: String,
        /// The driver's own error.
        #[source]
        source: Cause,
    },
}

impl StoreError {
    /// [`StoreError::Unavailable`] for the store at `location`, caused by `source`.
    pub fn unavailable(
        location: &str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Unavailable {
            location: location.to_owned(),
            source: Arc::new(source),
        }
    }
}

//! SQL text, connection settings, row encoding and error classification for SQLite.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, Row};

use gearbox_store::sql::{self, Statements};
use gearbox_store::{Durability, StoreError, StoredJob};

/// The migration that creates our table; `{table}` is replaced by the quoted table name.
const CREATE_JOBS: &str = include_str!("../migrations/0001_create_jobs.sql");

/// How long a statement waits for another connection's lock before failing.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The statements on our table: one job per execution, bound as `?1`..`?8`.
pub(crate) fn statements(quoted_table: &str) -> Statements {
    Statements::new(
        quoted_table,
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        sql::ON_CONFLICT_UPDATE,
        "handle = ?1",
    )
}

/// WAL journal, the durability mode's `synchronous` level and a busy timeout, for the store
/// at `location` (named in the warning if WAL is refused).
pub(crate) fn configure(
    conn: &Connection,
    location: &str,
    durability: Durability,
) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // In-memory databases cannot use WAL; they are not durable anyway.
        tracing::warn!(store = location, journal_mode = %mode, "job store is not in WAL mode");
    }
    let sync = match durability {
        Durability::Fsync => "FULL",
        Durability::Normal => "NORMAL",
        Durability::None => "OFF",
    };
    conn.execute_batch(&format!("PRAGMA synchronous = {sync}"))
}

/// Creates our table if it is missing and checks the columns of an existing one.
pub(crate) fn migrate(
    conn: &Connection,
    location: &str,
    table: &str,
    quoted: &str,
) -> Result<(), StoreError> {
    conn.execute_batch(&CREATE_JOBS.replace("{table}", quoted))
        .map_err(|e| classify(e, location))?;
    let have = columns(conn, quoted).map_err(|e| classify(e, location))?;
    sql::check_our_columns(table, &have)
}

/// The column names of a table (lower-cased); empty when the table does not exist.
pub(crate) fn columns(conn: &Connection, quoted: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({quoted})"))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(1))?;
    names.map(|n| n.map(|n| n.to_ascii_lowercase())).collect()
}

/// A handle bound as TEXT when it is UTF-8 (always, for handles the server makes), else BLOB.
pub(crate) fn handle_value(handle: &[u8]) -> ToSqlOutput<'_> {
    match std::str::from_utf8(handle) {
        Ok(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
        Err(_) => ToSqlOutput::Borrowed(ValueRef::Blob(handle)),
    }
}

/// Binds a job's eight columns and runs `stmt` (the upsert or the insert).
pub(crate) fn write_job(
    stmt: &mut rusqlite::CachedStatement<'_>,
    job: &StoredJob,
) -> rusqlite::Result<usize> {
    let when = i64::try_from(job.when_to_run).unwrap_or(i64::MAX);
    stmt.execute(rusqlite::params![
        handle_value(&job.handle),
        &job.function[..],
        &job.unique[..],
        job.priority.index() as i64,
        &job.data[..],
        when,
        job.schedule.as_deref(),
        job.reducer.as_deref(),
    ])
}

/// Any column read as bytes: TEXT and BLOB as they are, NULL as empty, numbers as decimal.
pub(crate) fn bytes_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Bytes> {
    Ok(match row.get_ref(idx)? {
        ValueRef::Null => Bytes::new(),
        ValueRef::Text(b) | ValueRef::Blob(b) => Bytes::copy_from_slice(b),
        ValueRef::Integer(i) => Bytes::from(i.to_string()),
        ValueRef::Real(f) => Bytes::from(f.to_string()),
    })
}

/// A column read as an integer; NULL and non-numbers as `None`.
pub(crate) fn int_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<i64>> {
    Ok(match row.get_ref(idx)? {
        ValueRef::Integer(i) => Some(i),
        ValueRef::Real(f) => Some(f as i64),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|t| t.trim().parse().ok()),
        ValueRef::Null | ValueRef::Blob(_) => None,
    })
}

/// Decodes one row of [`Statements::select`].
pub(crate) fn decode_job(row: &Row<'_>, location: &str) -> Result<StoredJob, StoreError> {
    let db = |e| classify(e, location);
    let handle = bytes_at(row, 0).map_err(db)?;
    let invalid = |reason: &str| StoreError::InvalidRow {
        handle: String::from_utf8_lossy(&handle).into_owned(),
        reason: reason.into(),
    };
    let priority = sql::priority_from(int_at(row, 3).map_err(db)?)
        .ok_or_else(|| invalid("priority is not 0, 1 or 2"))?;
    let schedule = match row.get_ref(6).map_err(db)? {
        ValueRef::Null => None,
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(
            std::str::from_utf8(t)
                .map_err(|_| invalid("schedule is not UTF-8"))?
                .to_owned(),
        ),
        _ => return Err(invalid("schedule is not text")),
    };
    let reducer = match row.get_ref(7).map_err(db)? {
        ValueRef::Null => None,
        _ => Some(bytes_at(row, 7).map_err(db)?),
    };
    Ok(StoredJob {
        function: bytes_at(row, 1).map_err(db)?,
        unique: bytes_at(row, 2).map_err(db)?,
        priority,
        data: bytes_at(row, 4).map_err(db)?,
        when_to_run: int_at(row, 5).map_err(db)?.unwrap_or(0).max(0) as u64,
        schedule,
        reducer,
        handle,
    })
}

/// Turns a SQLite error into the [`StoreError`] that says what to do about it.
pub(crate) fn classify(err: rusqlite::Error, location: &str) -> StoreError {
    let code = match &err {
        rusqlite::Error::SqliteFailure(e, _) => Some(e.code),
        _ => None,
    };
    let location = location.to_owned();
    let source = Arc::new(err);
    match code {
        Some(ErrorCode::DiskFull) => StoreError::DiskFull { location, source },
        Some(ErrorCode::SystemIoFailure) => StoreError::Io { location, source },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Locked { location, source }
        }
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { location, source },
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            StoreError::Corrupt { location, source }
        }
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            StoreError::Open { location, source }
        }
        _ => StoreError::Backend { location, source },
    }
}

/// Table names: at most 128 bytes, between double quotes.
pub(crate) const IDENTIFIERS: (usize, char) = (128, '"');

/// Checks that `name` is a plain identifier and returns it double-quoted for SQL.
pub(crate) fn quote_ident(name: &str) -> Result<String, StoreError> {
    sql::quote_ident(name, IDENTIFIERS.0, IDENTIFIERS.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_sets_wal_and_synchronous() {
        let dir = tempfile::tempdir().unwrap();
        for (durability, level) in [
            (Durability::Fsync, 2),
            (Durability::Normal, 1),
            (Durability::None, 0),
        ] {
            let conn = Connection::open(dir.path().join("jobs.db")).unwrap();
            configure(&conn, ":memory:", durability).unwrap();
            let mode: String = conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            let sync: i64 = conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            assert_eq!(sync, level, "{durability}");
        }
    }

    #[test]
    fn sqlite_errors_say_what_to_do() {
        use rusqlite::ffi;
        let cases = [
            (ffi::SQLITE_FULL, "free disk space"),
            (ffi::SQLITE_IOERR, "check the disk"),
            (ffi::SQLITE_BUSY, "stop the other writer"),
            (ffi::SQLITE_LOCKED, "stop the other writer"),
            (ffi::SQLITE_READONLY, "writable by gearboxd"),
            (ffi::SQLITE_CORRUPT, "restore it from a backup"),
            (ffi::SQLITE_CANTOPEN, "cannot open"),
        ];
        for (code, advice) in cases {
            let err = rusqlite::Error::SqliteFailure(ffi::Error::new(code), None);
            let err = classify(err, "/data/jobs.db");
            let text = err.to_string();
            assert!(text.contains(advice), "{code}: {text}");
            assert!(text.contains("/data/jobs.db"), "{text}");
            assert!(std::error::Error::source(&err).is_some());
        }
    }

    #[test]
    fn migrate_rejects_a_foreign_table() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE gearbox_jobs (handle TEXT)")
            .unwrap();
        let err = migrate(&conn, "mem", "gearbox_jobs", "\"gearbox_jobs\"").unwrap_err();
        assert!(matches!(err, StoreError::SchemaMismatch { .. }), "{err}");
    }
}

//! SQL text, identifier quoting, row decoding and error classification for PostgreSQL.

use std::sync::Arc;

use bytes::Bytes;
use gearbox_store::{sql, StoreError, StoredJob};
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

/// The migration that creates our table; `{table}` is replaced by the quoted table name.
pub(crate) const CREATE_JOBS: &str = include_str!("../migrations/0001_create_jobs.sql");

/// The statements used on our table, built once for its name.
#[derive(Debug)]
pub(crate) struct Sql {
    /// Writes many jobs from eight parallel arrays, in array order; an existing handle keeps
    /// its `seq` and gets the new fields.
    pub upsert: String,
    /// The same without `ON CONFLICT`: fails on an existing handle (used by the import).
    pub insert: String,
    /// Removes every handle in an array.
    pub delete: String,
    /// Every job in replay order.
    pub select: String,
}

impl Sql {
    pub(crate) fn new(quoted_table: &str) -> Self {
        let cols = "handle, function, unique_key, priority, data, when_to_run, schedule, reducer";
        let from = "SELECT h, f, u, p, d, w, s, r FROM UNNEST($1::text[], $2::bytea[], \
                    $3::bytea[], $4::int[], $5::bytea[], $6::bigint[], $7::text[], $8::bytea[]) \
                    WITH ORDINALITY AS x(h, f, u, p, d, w, s, r, n) ORDER BY n";
        let insert = format!("INSERT INTO {quoted_table} ({cols}) {from}");
        Sql {
            upsert: format!(
                "{insert} ON CONFLICT (handle) DO UPDATE SET function = excluded.function, \
                 unique_key = excluded.unique_key, priority = excluded.priority, \
                 data = excluded.data, when_to_run = excluded.when_to_run, \
                 schedule = excluded.schedule, reducer = excluded.reducer"
            ),
            insert,
            delete: format!("DELETE FROM {quoted_table} WHERE handle = ANY($1::text[])"),
            select: format!("SELECT {cols} FROM {quoted_table} ORDER BY seq"),
        }
    }
}

/// The lower-cased columns and types of a table of the current schema, `$1` being its name.
pub(crate) const COLUMNS_OF: &str = "SELECT lower(column_name::text), data_type::text \
     FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1";

/// Checks that `name` is a plain identifier and returns it double-quoted for SQL.
///
/// PostgreSQL keeps at most 63 bytes of a name; longer ones are refused rather than cut.
pub(crate) fn quote_ident(name: &str) -> Result<String, StoreError> {
    sql::quote_ident(name, 63, '"')
}

/// Decodes one row of [`Sql::select`].
pub(crate) fn decode_job(row: &Row, location: &str) -> Result<StoredJob, StoreError> {
    let db = |e| classify(e, location);
    let handle: String = row.try_get(0).map_err(db)?;
    let bytes = |i: usize| -> Result<Bytes, StoreError> {
        let v: Option<Vec<u8>> = row.try_get(i).map_err(db)?;
        Ok(v.map(Bytes::from).unwrap_or_default())
    };
    let priority: Option<i32> = row.try_get(3).map_err(db)?;
    let priority =
        sql::priority_from(priority.map(i64::from)).ok_or_else(|| StoreError::InvalidRow {
            handle: handle.clone(),
            reason: "priority is not 0, 1 or 2".into(),
        })?;
    let when: Option<i64> = row.try_get(5).map_err(db)?;
    let reducer: Option<Vec<u8>> = row.try_get(7).map_err(db)?;
    Ok(StoredJob {
        function: bytes(1)?,
        unique: bytes(2)?,
        priority,
        data: bytes(4)?,
        when_to_run: when.unwrap_or(0).max(0) as u64,
        schedule: row.try_get(6).map_err(db)?,
        reducer: reducer.map(Bytes::from),
        handle: Bytes::from(handle),
    })
}

/// True when the error means the connection is gone (or was never made): the writer drops
/// the connection and reconnects.
pub(crate) fn is_connection_loss(err: &tokio_postgres::Error) -> bool {
    if err.is_closed() {
        return true;
    }
    match err.code() {
        Some(code) => {
            let c = code.code();
            c.starts_with("08") // connection_exception
                || c.starts_with("57P") // admin_shutdown, crash_shutdown, cannot_connect_now
        }
        // No SQLSTATE: an I/O error, a timeout or a protocol error on the socket.
        None => !matches!(
            std::error::Error::source(err),
            Some(s) if s.is::<tokio_postgres::error::DbError>()
        ),
    }
}

/// Turns a PostgreSQL error into the [`StoreError`] that says what to do about it.
pub(crate) fn classify(err: tokio_postgres::Error, location: &str) -> StoreError {
    let location = location.to_owned();
    if is_connection_loss(&err) {
        return StoreError::Unavailable {
            location,
            source: Arc::new(err),
        };
    }
    let code = err.code().cloned();
    let source = Arc::new(err);
    match code {
        Some(c) if c == SqlState::DISK_FULL || c == SqlState::PROGRAM_LIMIT_EXCEEDED => {
            StoreError::DiskFull { location, source }
        }
        Some(c) if c == SqlState::IO_ERROR => StoreError::Io { location, source },
        Some(c) if c == SqlState::READ_ONLY_SQL_TRANSACTION => {
            StoreError::ReadOnly { location, source }
        }
        Some(c) if c == SqlState::DATA_CORRUPTED || c == SqlState::INDEX_CORRUPTED => {
            StoreError::Corrupt { location, source }
        }
        _ => StoreError::Backend { location, source },
    }
}

/// Why a job cannot be stored as it is (PostgreSQL TEXT holds neither NUL nor invalid
/// UTF-8), or `None` when it can.
pub(crate) fn unstorable(job: &StoredJob) -> Option<StoreError> {
    if let Some(e) = unstorable_handle(&job.handle) {
        return Some(e);
    }
    if job.schedule.as_deref().is_some_and(|s| s.contains('\0')) {
        return Some(StoreError::InvalidRow {
            handle: String::from_utf8_lossy(&job.handle).into_owned(),
            reason: "schedule contains a NUL byte".into(),
        });
    }
    None
}

/// Why a handle cannot be stored in the TEXT key column, or `None` when it can.
pub(crate) fn unstorable_handle(handle: &[u8]) -> Option<StoreError> {
    let reason = match std::str::from_utf8(handle) {
        Err(_) => "handle is not UTF-8",
        Ok(h) if h.contains('\0') => "handle contains a NUL byte",
        Ok(_) => return None,
    };
    Some(StoreError::InvalidRow {
        handle: String::from_utf8_lossy(handle).into_owned(),
        reason: reason.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_and_schedules_must_fit_text_columns() {
        let mut job = StoredJob::new("H:x:1", "f", "\0data\0");
        assert!(unstorable(&job).is_none());
        job.schedule = Some("* * * * *".into());
        assert!(unstorable(&job).is_none());
        job.schedule = Some("*\0".into());
        assert!(unstorable(&job).is_some());
        assert!(unstorable_handle(b"H:\xff").is_some());
        assert!(unstorable_handle(b"H:\0").is_some());
    }
}

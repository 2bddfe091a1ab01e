//! SQL text, identifier quoting, row decoding and error classification for PostgreSQL.

use std::sync::Arc;

use bytes::Bytes;
use gearbox_store::sql::{self, Statements};
use gearbox_store::{StoreError, StoredJob};
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

/// The migration that creates our table; `{table}` is replaced by the quoted table name.
pub(crate) const CREATE_JOBS: &str = include_str!("../migrations/0001_create_jobs.sql");

/// The statements on our table: eight parallel arrays bound to an UNNEST (in array order),
/// and removal by an array of handles.
pub(crate) fn statements(quoted_table: &str) -> Statements {
    let rows = "SELECT h, f, u, p, d, w, s, r FROM UNNEST($1::text[], $2::bytea[], \
                $3::bytea[], $4::int[], $5::bytea[], $6::bigint[], $7::text[], $8::bytea[]) \
                WITH ORDINALITY AS x(h, f, u, p, d, w, s, r, n) ORDER BY n";
    Statements::new(
        quoted_table,
        rows,
        sql::ON_CONFLICT_UPDATE,
        "handle = ANY($1::text[])",
    )
}

/// The lower-cased columns and types of a table of the current schema, `$1` being its name.
pub(crate) const COLUMNS_OF: &str = "SELECT lower(column_name::text), data_type::text \
     FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1";

/// Checks that `name` is a plain identifier and returns it double-quoted for SQL.
///
/// PostgreSQL keeps at most 63 bytes of a name; longer ones are refused rather than cut.
pub(crate) fn quote_ident(name: &str) -> Result<String, StoreError> {
    sql::quote_ident(name, IDENTIFIERS.0, IDENTIFIERS.1)
}

/// Table names: at most 63 bytes, between double quotes.
pub(crate) const IDENTIFIERS: (usize, char) = (63, '"');

/// Decodes one row of [`Statements::select`].
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
    if is_connection_loss(&err) {
        return StoreError::unavailable(location, err);
    }
    let location = location.to_owned();
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

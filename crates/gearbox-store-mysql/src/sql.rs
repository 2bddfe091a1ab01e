//! SQL text, identifier quoting, row decoding and error classification for MySQL/MariaDB.

use std::sync::Arc;

use bytes::Bytes;
use gearbox_store::{sql, StoreError, StoredJob};
use mysql_async::{Row, Value};

/// The migration that creates our table; `{table}` is replaced by the quoted table name.
pub(crate) const CREATE_JOBS: &str = include_str!("../migrations/0001_create_jobs.sql");

/// The lower-cased column names of a table of the current database, `?` being its name.
pub(crate) const COLUMNS_OF: &str = "SELECT LOWER(column_name) FROM information_schema.columns \
     WHERE table_schema = DATABASE() AND table_name = ?";

/// Size limits of our key columns (bytes).
pub(crate) const MAX_HANDLE: usize = 255;
pub(crate) const MAX_FUNCTION: usize = 512;
pub(crate) const MAX_UNIQUE: usize = 255;

/// Checks that `name` is a plain identifier and returns it back-quoted for SQL.
///
/// MySQL keeps at most 64 characters of a name; longer ones are refused rather than cut.
pub(crate) fn quote_ident(name: &str) -> Result<String, StoreError> {
    sql::quote_ident(name, IDENTIFIERS.0, IDENTIFIERS.1)
}

/// Table names: at most 64 bytes, between back quotes.
pub(crate) const IDENTIFIERS: (usize, char) = (64, '`');

/// Column `i` of a row as bytes (NULL: `None`), whatever the protocol gave.
pub(crate) fn bytes_at(row: &Row, i: usize) -> Option<Vec<u8>> {
    match row.as_ref(i)? {
        Value::NULL => None,
        Value::Bytes(b) => Some(b.clone()),
        other => Some(other.as_sql(true).into_bytes()),
    }
}

/// Column `i` of a row as an integer (NULL or not a number: `None`).
pub(crate) fn int_at(row: &Row, i: usize) -> Option<i64> {
    match row.as_ref(i)? {
        Value::Int(n) => Some(*n),
        Value::UInt(n) => i64::try_from(*n).ok(),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// Decodes one row of `SELECT handle, function, unique_key, priority, data, when_to_run,
/// schedule, reducer`.
pub(crate) fn decode_job(row: &Row) -> Result<StoredJob, StoreError> {
    let handle = Bytes::from(bytes_at(row, 0).unwrap_or_default());
    let invalid = |reason: &str| StoreError::InvalidRow {
        handle: String::from_utf8_lossy(&handle).into_owned(),
        reason: reason.into(),
    };
    let priority =
        sql::priority_from(int_at(row, 3)).ok_or_else(|| invalid("priority is not 0, 1 or 2"))?;
    let schedule = match bytes_at(row, 6) {
        None => None,
        Some(s) => Some(String::from_utf8(s).map_err(|_| invalid("schedule is not UTF-8"))?),
    };
    let bytes = |i| Bytes::from(bytes_at(row, i).unwrap_or_default());
    Ok(StoredJob {
        function: bytes(1),
        unique: bytes(2),
        priority,
        data: bytes(4),
        when_to_run: int_at(row, 5).unwrap_or(0).max(0) as u64,
        schedule,
        reducer: bytes_at(row, 7).map(Bytes::from),
        handle,
    })
}

/// The eight values of one job, in [`gearbox_store::sql::WRITE_COLUMNS`] order.
pub(crate) fn job_values(job: &StoredJob, out: &mut Vec<Value>) {
    out.push(Value::Bytes(job.handle.to_vec()));
    out.push(Value::Bytes(job.function.to_vec()));
    out.push(Value::Bytes(job.unique.to_vec()));
    out.push(Value::Int(job.priority.index() as i64));
    out.push(Value::Bytes(job.data.to_vec()));
    out.push(Value::Int(
        i64::try_from(job.when_to_run).unwrap_or(i64::MAX),
    ));
    out.push(match &job.schedule {
        Some(s) => Value::Bytes(s.clone().into_bytes()),
        None => Value::NULL,
    });
    out.push(match &job.reducer {
        Some(r) => Value::Bytes(r.to_vec()),
        None => Value::NULL,
    });
}

/// True when the error means the connection is gone (or was never made): the writer drops
/// the connection and reconnects.
pub(crate) fn is_connection_loss(err: &mysql_async::Error) -> bool {
    match err {
        mysql_async::Error::Server(e) => matches!(
            e.code,
            // ER_CON_COUNT_ERROR, ER_SERVER_SHUTDOWN, ER_NET_* (read/write errors and
            // timeouts), ER_CONNECTION_KILLED (MariaDB), ER_QUERY_INTERRUPTED after a shutdown.
            1040 | 1053 | 1152..=1161 | 1927 | 4031
        ),
        _ => err.is_fatal(),
    }
}

/// Turns a MySQL error into the [`StoreError`] that says what to do about it.
pub(crate) fn classify(err: mysql_async::Error, location: &str) -> StoreError {
    if is_connection_loss(&err) {
        return StoreError::unavailable(location, err);
    }
    let location = location.to_owned();
    let code = match &err {
        mysql_async::Error::Server(e) => Some(e.code),
        _ => None,
    };
    let source = Arc::new(err);
    match code {
        // ER_DISK_FULL, ER_RECORD_FILE_FULL, ER_OUT_OF_RESOURCES.
        Some(1021 | 1114 | 1041) => StoreError::DiskFull { location, source },
        // ER_ERROR_ON_READ / ER_ERROR_ON_WRITE / ER_GET_ERRNO.
        Some(1024 | 1026 | 1030) => StoreError::Io { location, source },
        // ER_OPEN_AS_READONLY, ER_OPTION_PREVENTS_STATEMENT (read_only), ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION.
        Some(1036 | 1290 | 1792) => StoreError::ReadOnly { location, source },
        // ER_LOCK_WAIT_TIMEOUT.
        Some(1205) => StoreError::Locked { location, source },
        // ER_CRASHED_ON_USAGE, ER_NOT_FORM_FILE, ER_TABLE_CORRUPT.
        Some(1194 | 1033 | 1877) => StoreError::Corrupt { location, source },
        _ => StoreError::Backend { location, source },
    }
}

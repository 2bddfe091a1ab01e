//! What the SQL stores (SQLite, PostgreSQL, MySQL/MariaDB) share: table names, gearmand's
//! priority numbers, and the columns of our table and of gearmand's.

use gearbox_proto::Priority;

use bytes::Bytes;

use crate::{Durability, StoreError, StoredJob};

/// The name of our table in every SQL store unless another is configured.
pub const DEFAULT_TABLE: &str = "gearbox_jobs";

/// Columns our table must have (`seq` is the replay order).
pub const OUR_COLUMNS: [&str; 9] = [
    "seq",
    "handle",
    "function",
    "unique_key",
    "priority",
    "data",
    "when_to_run",
    "schedule",
    "reducer",
];

/// The columns of our table a job is written to, in the order the statements bind them.
pub const WRITE_COLUMNS: &str =
    "handle, function, unique_key, priority, data, when_to_run, schedule, reducer";

/// The clause that turns an insert into an upsert where the database has `ON CONFLICT`
/// (SQLite, PostgreSQL): an existing handle keeps its row (and so its `seq`, its place in the
/// replay order) and gets the new fields.
pub const ON_CONFLICT_UPDATE: &str = "ON CONFLICT (handle) DO UPDATE SET \
     function = excluded.function, unique_key = excluded.unique_key, \
     priority = excluded.priority, data = excluded.data, when_to_run = excluded.when_to_run, \
     schedule = excluded.schedule, reducer = excluded.reducer";

/// Where a SQL store keeps its jobs and how hard it commits them.
#[derive(Debug, Clone)]
pub struct SqlTable {
    /// The database, without password, for logs and errors.
    pub location: String,
    /// Our table's name.
    pub name: String,
    /// Our table's name, quoted for SQL.
    pub quoted: String,
    /// The durability the store was opened with.
    pub durability: Durability,
}

impl SqlTable {
    /// Our table `name` in the database at `location`: the name must be a plain identifier
    /// of at most `max_len` bytes (see [`quote_ident`]), quoted with `quote`.
    pub fn new(
        location: &str,
        name: &str,
        (max_len, quote): (usize, char),
        durability: Durability,
    ) -> Result<SqlTable, StoreError> {
        Ok(SqlTable {
            location: location.to_owned(),
            name: name.to_owned(),
            quoted: quote_ident(name, max_len, quote)?,
            durability,
        })
    }
}

/// The statements a SQL store runs on our table, built once for its name.
#[derive(Debug, Clone)]
pub struct Statements {
    /// Writes jobs; an existing handle keeps its `seq` and gets the new fields.
    pub upsert: String,
    /// Writes new jobs; fails on an existing handle (used by the gearmand import).
    pub insert: String,
    /// Removes jobs by handle.
    pub delete: String,
    /// Every job in replay order, columns in [`WRITE_COLUMNS`] order.
    pub select: String,
}

impl Statements {
    /// The statements on `quoted_table`: `rows` is what follows
    /// `INSERT INTO <table> (<WRITE_COLUMNS>)` (a `VALUES` list or a `SELECT`), `upsert` the
    /// clause added to make it an upsert, `delete_where` the condition of the `DELETE`.
    pub fn new(quoted_table: &str, rows: &str, upsert: &str, delete_where: &str) -> Self {
        let insert = format!("INSERT INTO {quoted_table} ({WRITE_COLUMNS}) {rows}");
        Statements {
            upsert: format!("{insert} {upsert}"),
            insert,
            delete: format!("DELETE FROM {quoted_table} WHERE {delete_where}"),
            select: format!("SELECT {WRITE_COLUMNS} FROM {quoted_table} ORDER BY seq"),
        }
    }
}

/// Columns a gearmand queue table must have (`when_to_run` is optional: old gearmand versions
/// did not have it).
pub const GEARMAND_COLUMNS: [&str; 4] = ["unique_key", "function_name", "priority", "data"];

/// Checks that `name` is a plain identifier (letters, digits and underscores, not starting
/// with a digit, at most `max_len` bytes: longer names are refused rather than cut by the
/// database) and returns it between `quote`s for SQL.
pub fn quote_ident(name: &str, max_len: usize, quote: char) -> Result<String, StoreError> {
    let mut chars = name.chars();
    let valid_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !valid_start || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') || name.len() > max_len
    {
        return Err(StoreError::InvalidTableName { name: name.into() });
    }
    Ok(format!("{quote}{name}{quote}"))
}

/// Checks that the column names `have` include every one of `wanted`; `missing` makes the
/// error for the first one that does not.
fn check_columns(
    have: &[String],
    wanted: &[&str],
    missing: impl FnOnce(String) -> StoreError,
) -> Result<(), StoreError> {
    match wanted.iter().find(|c| !have.iter().any(|h| h == *c)) {
        Some(column) => Err(missing((*column).to_owned())),
        None => Ok(()),
    }
}

/// Checks our table's columns: [`StoreError::SchemaMismatch`] names the first one missing.
pub fn check_our_columns(table: &str, have: &[String]) -> Result<(), StoreError> {
    check_columns(have, &OUR_COLUMNS, |column| StoreError::SchemaMismatch {
        table: table.into(),
        column,
    })
}

/// Looks at the columns `have` of gearmand's queue table `table` before an import: `None`
/// when there is no such table (no columns), [`StoreError::NotGearmandTable`] when one of
/// gearmand's columns is missing, else the expression to select for `when_to_run` (the
/// column, or `0` for gearmand versions without it).
pub fn gearmand_columns(
    table: &str,
    location: &str,
    have: &[String],
) -> Result<Option<&'static str>, StoreError> {
    if have.is_empty() {
        tracing::debug!(store = %location, table, "no gearmand queue table to import");
        return Ok(None);
    }
    check_columns(have, &GEARMAND_COLUMNS, |column| {
        StoreError::NotGearmandTable {
            table: table.into(),
            column,
        }
    })?;
    Ok(Some(if have.iter().any(|c| c == "when_to_run") {
        "when_to_run"
    } else {
        "0"
    }))
}

/// The error for a job a store cannot keep as it is.
pub fn invalid_row(handle: &[u8], reason: &str) -> StoreError {
    StoreError::InvalidRow {
        handle: String::from_utf8_lossy(handle).into_owned(),
        reason: reason.into(),
    }
}

/// Priority from its stored number (gearmand's numbering: 0 high, 1 normal, 2 low).
pub fn priority_from(n: Option<i64>) -> Option<Priority> {
    match n? {
        0 => Some(Priority::High),
        1 => Some(Priority::Normal),
        2 => Some(Priority::Low),
        _ => None,
    }
}

/// A row of gearmand's queue table as it is read for an import, every column as bytes or a
/// number as the database gave it.
#[derive(Debug, Clone, Default)]
pub struct GearmandRow {
    /// `unique_key`.
    pub unique: Bytes,
    /// `function_name`.
    pub function: Bytes,
    /// `priority`: gearmand's number (0 high, 1 normal, 2 low).
    pub priority: Option<i64>,
    /// `data`.
    pub data: Bytes,
    /// `when_to_run`, UNIX seconds (absent in old gearmand versions).
    pub when_to_run: Option<i64>,
}

impl GearmandRow {
    /// The job this row becomes in our table of gearmand table `table`, with handle `handle`.
    /// An unknown priority is imported as normal, with a warning.
    pub fn into_job(self, table: &str, handle: Bytes) -> StoredJob {
        let priority = priority_from(self.priority).unwrap_or_else(|| {
            tracing::warn!(table, priority = ?self.priority, "gearmand job has an unknown priority; importing it as normal");
            Priority::Normal
        });
        StoredJob {
            handle,
            function: self.function,
            unique: self.unique,
            priority,
            data: self.data,
            when_to_run: self.when_to_run.unwrap_or(0).max(0) as u64,
            schedule: None,
            reducer: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_plain_identifiers() {
        assert_eq!(
            quote_ident("gearbox_jobs", 63, '"').unwrap(),
            "\"gearbox_jobs\""
        );
        assert_eq!(quote_ident("_q1", 64, '`').unwrap(), "`_q1`");
        for bad in ["", "1q", "a-b", "a b", "a\"b", "a`b", "jobs;drop"] {
            assert!(
                matches!(
                    quote_ident(bad, 64, '"'),
                    Err(StoreError::InvalidTableName { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(quote_ident(&"a".repeat(64), 64, '`').is_ok());
        assert!(quote_ident(&"a".repeat(65), 64, '`').is_err());
    }

    #[test]
    fn priorities_use_gearmand_numbers() {
        assert_eq!(priority_from(Some(0)), Some(Priority::High));
        assert_eq!(priority_from(Some(2)), Some(Priority::Low));
        assert_eq!(priority_from(Some(3)), None);
        assert_eq!(priority_from(None), None);
        let row = GearmandRow {
            priority: Some(7),
            when_to_run: Some(-5),
            ..GearmandRow::default()
        };
        let job = row.into_job("t", Bytes::from_static(b"H:x:1"));
        assert_eq!((job.priority, job.when_to_run), (Priority::Normal, 0));
    }

    #[test]
    fn columns_are_checked() {
        let mut have: Vec<String> = GEARMAND_COLUMNS.iter().map(|c| c.to_string()).collect();
        assert_eq!(gearmand_columns("q", "db", &have).unwrap(), Some("0"));
        have.push("when_to_run".into());
        assert_eq!(
            gearmand_columns("q", "db", &have).unwrap(),
            Some("when_to_run")
        );
        assert_eq!(gearmand_columns("q", "db", &[]).unwrap(), None);
        let err = gearmand_columns("q", "db", &have[2..]).unwrap_err();
        assert!(
            matches!(err, StoreError::NotGearmandTable { column, .. } if column == "unique_key")
        );
        let err = check_our_columns("q", &have).unwrap_err();
        assert!(matches!(err, StoreError::SchemaMismatch { column, .. } if column == "seq"));
    }
}

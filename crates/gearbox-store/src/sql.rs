//! What the SQL stores (SQLite, PostgreSQL, MySQL/MariaDB) share: table names, gearmand's
//! priority numbers, and the columns of our table and of gearmand's.

use gearbox_proto::Priority;

use crate::StoreError;

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

/// The first of `wanted` missing from the column names `have`, if any.
pub fn missing_column<'w>(have: &[String], wanted: &[&'w str]) -> Option<&'w str> {
    wanted
        .iter()
        .find(|c| !have.iter().any(|h| h == *c))
        .copied()
}

/// Checks our table's columns: [`StoreError::SchemaMismatch`] names the first one missing.
pub fn check_our_columns(table: &str, have: &[String]) -> Result<(), StoreError> {
    match missing_column(have, &OUR_COLUMNS) {
        Some(column) => Err(StoreError::SchemaMismatch {
            table: table.into(),
            column: column.into(),
        }),
        None => Ok(()),
    }
}

/// Checks a gearmand queue table's columns: [`StoreError::NotGearmandTable`] names the first
/// one missing.
pub fn check_gearmand_columns(table: &str, have: &[String]) -> Result<(), StoreError> {
    match missing_column(have, &GEARMAND_COLUMNS) {
        Some(column) => Err(StoreError::NotGearmandTable {
            table: table.into(),
            column: column.into(),
        }),
        None => Ok(()),
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

/// The priority of a job imported from gearmand's table: an unknown number is imported as
/// normal, with a warning.
pub fn imported_priority(table: &str, n: Option<i64>) -> Priority {
    priority_from(n).unwrap_or_else(|| {
        tracing::warn!(table, priority = ?n, "gearmand job has an unknown priority; importing it as normal");
        Priority::Normal
    })
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
        assert_eq!(imported_priority("t", Some(7)), Priority::Normal);
    }

    #[test]
    fn columns_are_checked() {
        let have: Vec<String> = GEARMAND_COLUMNS.iter().map(|c| c.to_string()).collect();
        assert!(check_gearmand_columns("q", &have).is_ok());
        let err = check_our_columns("q", &have).unwrap_err();
        assert!(matches!(err, StoreError::SchemaMismatch { column, .. } if column == "seq"));
    }
}

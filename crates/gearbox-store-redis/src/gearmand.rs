//! gearmand's Redis queue format (its `-q redis` plugin), read for the import.
//!
//! gearmand keeps each queued background job under the key `<prefix>-<function>-<unique>`
//! (`--redis-prefix`, `_gear_` by default). Since gearmand 1.1.16 the key holds a hash with the
//! fields `data` (the payload, binary-safe) and `priority` (`0` high, `1` normal, `2` low);
//! releases after 1.1.20 add `function` and `unique`, so that names containing `-` survive.
//! gearmand 1.1.15 and older kept only the payload, as a string, for a normal-priority job.
//! gearmand's Redis queue refuses EPOCH jobs (`QUEUE_ERROR`), so there is no run time, and no
//! submission order either: gearmand replays in the order Redis lists the keys.
//!
//! Without the `function` field, the function is the key's text up to the first `-` after
//! the prefix, as gearmand itself reads it back: a function `resize-v2` queued by gearmand
//! 1.1.20 is replayed by gearmand as function `resize` too.

use std::collections::HashMap;

use bytes::Bytes;
use gearbox_store::sql::GearmandRow;

/// What gearmand keeps under one of its keys, as read for the import.
#[derive(Debug)]
pub(crate) enum Value {
    /// A hash (gearmand 1.1.16 and newer) with its fields.
    Hash(HashMap<Vec<u8>, Vec<u8>>),
    /// A string (gearmand 1.1.15 and older): the payload.
    String(Vec<u8>),
    /// A key of another type (its `TYPE`), or one that vanished (`none`).
    Other(String),
}

/// `<prefix>-`: what every key of gearmand's queue starts with.
pub(crate) fn key_start(prefix: &[u8]) -> Vec<u8> {
    [prefix, b"-"].concat()
}

/// A `SCAN MATCH` pattern for the keys that start with `start`, glob characters escaped.
pub(crate) fn pattern(start: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(start.len() + 2);
    for &b in start {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'*');
    out
}

/// The function and unique id a key names, split as gearmand does; `None` when the key is
/// not `<prefix>-<function>-<unique>` with both non-empty.
fn split_key<'k>(key: &'k [u8], start: &[u8]) -> Option<(&'k [u8], &'k [u8])> {
    let rest = key.strip_prefix(start)?;
    let dash = rest.iter().position(|&b| b == b'-')?;
    let (function, unique) = (&rest[..dash], &rest[dash + 1..]);
    (!function.is_empty() && !unique.is_empty()).then_some((function, unique))
}

/// The job gearmand queued under `key` (which starts with `start`, see [`key_start`]), or
/// why the key is not one of gearmand's queued jobs.
pub(crate) fn record(key: &[u8], start: &[u8], value: Value) -> Result<GearmandRow, String> {
    let from_key = split_key(key, start);
    // A string is the payload of a normal-priority job.
    let (mut fields, data, unset_priority) = match value {
        Value::String(data) => (HashMap::new(), data, Some(1)),
        Value::Hash(mut fields) => {
            let data = fields
                .remove(&b"data"[..])
                .ok_or("a hash without a `data` field")?;
            (fields, data, None)
        }
        Value::Other(kind) => return Err(format!("a key of type {kind}, not a hash")),
    };
    let priority = match fields.remove(&b"priority"[..]) {
        None => unset_priority.ok_or("a hash without a `priority` field")?,
        Some(p) => std::str::from_utf8(&p)
            .ok()
            .and_then(|p| p.parse::<i64>().ok())
            .ok_or("a priority that is not a number")?,
    };
    let named = match (
        fields.remove(&b"function"[..]),
        fields.remove(&b"unique"[..]),
    ) {
        (Some(f), Some(u)) if !f.is_empty() && !u.is_empty() => Some((f, u)),
        (None, None) => None,
        _ => return Err("`function` and `unique` fields that are not both set".into()),
    };
    if let Some(field) = fields.keys().next() {
        return Err(format!(
            "an unexpected field `{}`",
            String::from_utf8_lossy(field)
        ));
    }
    let (function, unique) = match (named, from_key) {
        (Some((f, u)), _) => (Bytes::from(f), Bytes::from(u)),
        (None, Some((f, u))) => (Bytes::copy_from_slice(f), Bytes::copy_from_slice(u)),
        (None, None) => return Err("not named `<prefix>-<function>-<unique>`".into()),
    };
    Ok(GearmandRow {
        unique,
        function,
        priority: Some(priority),
        data: Bytes::from(data),
        when_to_run: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(fields: &[(&str, &[u8])]) -> Value {
        Value::Hash(
            fields
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
                .collect(),
        )
    }

    fn names(row: &GearmandRow) -> (&[u8], &[u8]) {
        (&row.function, &row.unique)
    }

    #[test]
    fn gearmand_1_1_20_hashes_are_read_as_gearmand_reads_them() {
        let start = key_start(b"_gear_");
        let key = b"_gear_-resize-686a45ce-f076-11f1-b3ef-02fc00000001";
        let row = record(key, &start, hash(&[("data", b"a\0b"), ("priority", b"0")])).unwrap();
        assert_eq!(&row.function[..], b"resize");
        assert_eq!(&row.unique[..], b"686a45ce-f076-11f1-b3ef-02fc00000001");
        assert_eq!(&row.data[..], b"a\0b");
        assert_eq!(row.priority, Some(0));
        assert_eq!(row.when_to_run, None);
        // A dash in the function: split at the first dash, as gearmand 1.1.20 replays it.
        let row = record(
            b"_gear_-my-func-u1",
            &start,
            hash(&[("data", b""), ("priority", b"2")]),
        );
        assert_eq!(names(&row.unwrap()), (&b"my"[..], &b"func-u1"[..]));
    }

    #[test]
    fn newer_gearmand_fields_name_the_job() {
        let start = key_start(b"p");
        let fields = [
            ("data", &b"x"[..]),
            ("priority", b"1"),
            ("function", b"my-func"),
            ("unique", b"a-b"),
        ];
        let row = record(b"p-my-func-a-b", &start, hash(&fields)).unwrap();
        assert_eq!(names(&row), (&b"my-func"[..], &b"a-b"[..]));
    }

    #[test]
    fn old_gearmand_strings_are_normal_jobs() {
        let start = key_start(b"_gear_");
        let row = record(b"_gear_-f-u", &start, Value::String(b"old".to_vec())).unwrap();
        assert_eq!((row.priority, &row.data[..]), (Some(1), &b"old"[..]));
    }

    #[test]
    fn other_keys_are_not_jobs() {
        let start = key_start(b"_gear_");
        let ok = || hash(&[("data", b"x"), ("priority", b"1")]);
        for key in [
            &b"_gear_-nodash"[..],
            b"_gear_--u",
            b"_gear_-f-",
            b"_gear_x-f-u",
        ] {
            assert!(record(key, &start, ok()).is_err(), "{key:?}");
        }
        let bad = [
            hash(&[("priority", b"1")]),
            hash(&[("data", b"x")]),
            hash(&[("data", b"x"), ("priority", b"high")]),
            hash(&[("data", b"x"), ("priority", b"1"), ("extra", b"")]),
            hash(&[("data", b"x"), ("priority", b"1"), ("function", b"f")]),
            Value::Other("list".into()),
        ];
        for value in bad {
            let shown = format!("{value:?}");
            assert!(record(b"_gear_-f-u", &start, value).is_err(), "{shown}");
        }
    }

    #[test]
    fn patterns_escape_glob_characters() {
        assert_eq!(pattern(b"_gear_-"), b"_gear_-*");
        assert_eq!(pattern(b"a*b?[c]\\-"), b"a\\*b\\?\\[c\\]\\\\-*");
    }
}

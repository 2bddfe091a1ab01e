//! Key names, gearmand's item format, and gearbox's own record of a job.

use bytes::{Buf, BufMut, Bytes};
use gearbox_proto::Priority;
use gearbox_store::{StoreError, StoredJob};

/// The longest key memcached accepts.
pub(crate) const MAX_KEY: usize = 250;

/// The largest value written: memcached's default item size limit (1 MiB, `-I`) less room
/// for the key and the item header.
pub(crate) const MAX_VALUE: usize = 1024 * 1024 - 1024;

/// What follows the prefix in gearbox's own keys. It has no `-`, so gearmand's replay, which
/// splits a key at its first `-` after the prefix, skips these keys.
const MARKER: &[u8] = b"~gb~";

/// The record format's version byte.
const VERSION: u8 = 1;

/// A length that says "absent".
const NONE: u32 = u32::MAX;

/// The keys under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: Vec<u8>,
    /// `<prefix>~gb~seq`: the counter the sequence numbers come from.
    pub seq: Vec<u8>,
    /// `<prefix>~gb~low`: no record has a lower sequence number.
    pub low: Vec<u8>,
}

/// What a key under the prefix is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// gearbox's record with this sequence number.
    Record(u64),
    /// A job in gearmand's format: function and unique id.
    Gearmand { function: Vec<u8>, unique: Vec<u8> },
    /// The sequence counter, or a key of neither format.
    Other,
}

impl Keys {
    pub(crate) fn new(prefix: &[u8]) -> Self {
        Keys {
            prefix: prefix.to_vec(),
            seq: [prefix, MARKER, b"seq"].concat(),
            low: [prefix, MARKER, b"low"].concat(),
        }
    }

    /// `<prefix>~gb~<seq>`: gearbox's record of the job with this sequence number.
    pub(crate) fn record(&self, seq: u64) -> Vec<u8> {
        [&self.prefix[..], MARKER, seq.to_string().as_bytes()].concat()
    }

    /// `<prefix><function>-<unique>`, gearmand's key for a job, when gearmand can read the
    /// job back from it: no schedule, no reducer, due at once (gearmand refuses epoch jobs),
    /// a unique id (without one, or with gearmand's `-`, jobs of a function share one key),
    /// no `-` in the function name (gearmand's replay splits at the first `-`), and a key
    /// memcached's text protocol takes.
    pub(crate) fn gearmand(&self, job: &StoredJob) -> Option<Vec<u8>> {
        let fits = job.schedule.is_none()
            && job.reducer.is_none()
            && job.when_to_run == 0
            && !job.unique.is_empty()
            && job.unique[..] != b"-"[..]
            && !job.function.is_empty()
            && !job.function.contains(&b'-');
        let key = [&self.prefix[..], &job.function, b"-", &job.unique].concat();
        (fits && valid_key(&key)).then_some(key)
    }

    /// Whether `key` is under the prefix.
    pub(crate) fn owns(&self, key: &[u8]) -> bool {
        key.starts_with(&self.prefix)
    }

    /// What the key under the prefix is.
    pub(crate) fn classify(&self, key: &[u8]) -> KeyKind {
        let Some(rest) = key.strip_prefix(&self.prefix[..]) else {
            return KeyKind::Other;
        };
        if let Some(digits) = rest.strip_prefix(MARKER) {
            let seq = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok());
            return seq.map_or(KeyKind::Other, KeyKind::Record);
        }
        // As gearmand reads it: the function up to the first `-`, the unique id after it.
        match rest.iter().position(|&b| b == b'-') {
            Some(dash) => KeyKind::Gearmand {
                function: rest[..dash].to_vec(),
                unique: rest[dash + 1..].to_vec(),
            },
            None => KeyKind::Other,
        }
    }
}

/// Whether memcached's text protocol takes `key`: 1 to 250 bytes, no space or control byte.
pub(crate) fn valid_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY && key.iter().all(|b| b.is_ascii_graphic())
}

/// gearbox's record of a job: what gearmand's item cannot hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// The job's place in the replay order.
    pub seq: u64,
    /// The job, with empty data when `inline` is false (the data is gearmand's item's).
    pub job: StoredJob,
    /// Whether the data is in the record (no gearmand item).
    pub inline: bool,
}

impl Record {
    /// Version, sequence, priority, when, inline flag, then handle, function, unique,
    /// schedule, reducer and (inline only) data, each with a 32-bit length.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let j = &self.job;
        let data: &[u8] = if self.inline { &j.data } else { &[] };
        let mut out = Vec::with_capacity(40 + j.function.len() + j.unique.len() + data.len());
        out.put_u8(VERSION);
        out.put_u64(self.seq);
        out.put_u8(j.priority.index() as u8);
        out.put_u64(j.when_to_run);
        out.put_u8(u8::from(self.inline));
        for field in [
            Some(&j.handle[..]),
            Some(&j.function[..]),
            Some(&j.unique[..]),
            j.schedule.as_deref().map(str::as_bytes),
            j.reducer.as_deref(),
            Some(data),
        ] {
            match field {
                Some(f) => {
                    out.put_u32(f.len() as u32);
                    out.put_slice(f);
                }
                None => out.put_u32(NONE),
            }
        }
        out
    }

    /// Reads the record with sequence number `seq` back.
    pub(crate) fn decode(seq_key: u64, value: &[u8]) -> Result<Record, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidRow {
            handle: format!("record {seq_key}"),
            reason: reason.to_owned(),
        };
        let mut buf = value;
        if buf.remaining() < 19 || buf.get_u8() != VERSION {
            return Err(invalid("not a gearbox job record of version 1"));
        }
        let seq = buf.get_u64();
        let priority = *Priority::ALL
            .get(buf.get_u8() as usize)
            .ok_or_else(|| invalid("priority is not 0, 1 or 2"))?;
        let when_to_run = buf.get_u64();
        let inline = buf.get_u8() != 0;
        let mut field = || -> Result<Option<Bytes>, StoreError> {
            if buf.remaining() < 4 {
                return Err(invalid("record is cut short"));
            }
            let len = buf.get_u32();
            if len == NONE {
                return Ok(None);
            }
            let len = len as usize;
            if buf.remaining() < len {
                return Err(invalid("record is cut short"));
            }
            Ok(Some(buf.copy_to_bytes(len)))
        };
        let handle = field()?.unwrap_or_default();
        let function = field()?.unwrap_or_default();
        let unique = field()?.unwrap_or_default();
        let schedule = field()?
            .map(|s| String::from_utf8(s.to_vec()))
            .transpose()
            .map_err(|_| invalid("schedule is not UTF-8"))?;
        let reducer = field()?;
        let data = field()?.unwrap_or_default();
        Ok(Record {
            seq,
            inline,
            job: StoredJob {
                handle,
                function,
                unique,
                priority,
                data,
                when_to_run,
                schedule,
                reducer,
            },
        })
    }
}

/// gearmand's priority number (its item's flags) as a priority; `None` past 2.
pub(crate) fn priority_of_flags(flags: u32) -> Option<Priority> {
    Priority::ALL.get(flags as usize).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(function: &[u8], unique: &[u8]) -> StoredJob {
        let mut j = StoredJob::new("H:x:1", Bytes::copy_from_slice(function), "d");
        j.unique = Bytes::copy_from_slice(unique);
        j
    }

    #[test]
    fn gearmands_key_only_where_gearmand_reads_the_job_back() {
        let keys = Keys::new(b"gear_");
        assert_eq!(
            keys.gearmand(&job(b"resize", b"u-1")).unwrap(),
            b"gear_resize-u-1"
        );
        for j in [
            job(b"re-size", b"u"),
            job(b"f", b""),
            job(b"f", b"-"),
            job(b"f", b"with space"),
            job(b"f\x00", b"u"),
            job(b"f", &[b'u'; 250]),
        ] {
            assert_eq!(keys.gearmand(&j), None, "{j:?}");
        }
        let mut later = job(b"f", b"u");
        later.when_to_run = 5;
        assert_eq!(keys.gearmand(&later), None);
    }

    #[test]
    fn keys_are_told_apart_as_gearmand_does() {
        let keys = Keys::new(b"gear_");
        assert_eq!(
            keys.classify(b"gear_resize-u-1"),
            KeyKind::Gearmand {
                function: b"resize".to_vec(),
                unique: b"u-1".to_vec()
            }
        );
        assert_eq!(keys.classify(&keys.record(42)), KeyKind::Record(42));
        assert_eq!(keys.classify(&keys.seq), KeyKind::Other);
        assert_eq!(keys.classify(&keys.low), KeyKind::Other);
        assert_eq!(keys.classify(b"gear_nodash"), KeyKind::Other);
        assert_eq!(keys.classify(b"other-key"), KeyKind::Other);
        assert!(!keys.record(u64::MAX).contains(&b'-'));
    }

    #[test]
    fn records_round_trip_and_bad_ones_are_refused() {
        let mut j = job(b"fn\x00\xff", b"\x00");
        j.schedule = Some("* * * * *".into());
        j.reducer = Some(Bytes::from_static(b"r"));
        j.when_to_run = 7;
        j.priority = Priority::Low;
        let r = Record {
            seq: 42,
            job: j,
            inline: true,
        };
        let bytes = r.encode();
        assert_eq!(Record::decode(42, &bytes).unwrap(), r);
        for cut in [0, 5, bytes.len() - 1] {
            let e = Record::decode(42, &bytes[..cut]).unwrap_err();
            assert!(matches!(e, StoreError::InvalidRow { .. }), "{e}");
        }
    }
}

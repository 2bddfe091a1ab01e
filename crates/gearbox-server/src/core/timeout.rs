//! CAN_DO_TIMEOUT settings: the unit of a decimal timeout and what its expiry does. Both are
//! named in lowercase, the same in configuration files (serde) and on command lines
//! ([`std::str::FromStr`]).

use gearbox_proto::TimeoutValue;
use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::{Deserialize, Serialize};

/// What the core does when a CAN_DO_TIMEOUT runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeoutAction {
    /// Fail the job: its clients get WORK_FAIL at once (the protocol text; the Perl server).
    #[default]
    Fail,
    /// Put it back in the queue and count a retry (gearmand), so `job_retries` bounds it.
    Requeue,
}

/// The unit of a CAN_DO_TIMEOUT sent as ASCII decimal (the 4-byte binary form of the Go
/// library is always seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeoutUnit {
    /// Seconds: what Perl's `Gearman::Worker`, PHP's `GearmanWorker::addFunction` and Python's
    /// `gear` document, and what the Perl server reads.
    #[default]
    Seconds,
    /// Milliseconds: gearmand 1.1.20's reading, for workers written against it.
    Milliseconds,
}

impl TimeoutUnit {
    /// The time limit in milliseconds; `None` for 0 (no limit, as every server reads it).
    pub fn millis(self, value: TimeoutValue) -> Option<u64> {
        let ms = match (value, self) {
            (TimeoutValue::BinarySeconds(s), _) => u64::from(s).saturating_mul(1000),
            (TimeoutValue::Decimal(n), TimeoutUnit::Seconds) => n.saturating_mul(1000),
            (TimeoutValue::Decimal(n), TimeoutUnit::Milliseconds) => n,
        };
        Some(ms).filter(|ms| *ms > 0)
    }
}

/// Parses one of the lowercase names serde uses for `T`; `expected` lists them for the error.
fn parse_name<T: DeserializeOwned>(s: &str, expected: &str) -> Result<T, String> {
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> = s.into_deserializer();
    T::deserialize(de).map_err(|_| format!("expected {expected}, not `{s}`"))
}

impl std::str::FromStr for TimeoutAction {
    type Err = String;

    /// Parses `fail` or `requeue`, the names serde uses.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name(s, "`fail` or `requeue`")
    }
}

impl std::str::FromStr for TimeoutUnit {
    type Err = String;

    /// Parses `seconds` or `milliseconds`, the names serde uses.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name(s, "`seconds` or `milliseconds`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gearbox_proto::Request;

    fn millis(unit: TimeoutUnit, arg: &[u8]) -> Option<u64> {
        unit.millis(Request::timeout_value(arg).expect("a timeout"))
    }

    #[test]
    fn decimal_timeouts_are_read_in_the_configured_unit() {
        // `register_function("f", 3, ...)` in Perl sends "3": three seconds by default.
        assert_eq!(millis(TimeoutUnit::default(), b"3"), Some(3_000));
        assert_eq!(millis(TimeoutUnit::Seconds, b"2\0"), Some(2_000));
        assert_eq!(millis(TimeoutUnit::Milliseconds, b"1500"), Some(1_500));
        // The Go library's binary seconds are seconds under either unit.
        assert_eq!(
            millis(TimeoutUnit::Milliseconds, b"\0\0\0\x02"),
            Some(2_000)
        );
        assert_eq!(millis(TimeoutUnit::Seconds, b"\0\0\0\x02"), Some(2_000));
        // 0 is no limit; a huge value saturates instead of wrapping.
        assert_eq!(millis(TimeoutUnit::Seconds, b"0"), None);
        assert_eq!(
            millis(TimeoutUnit::Seconds, b"18446744073709551615"),
            Some(u64::MAX)
        );
    }

    #[test]
    fn names_parse_as_serde_writes_them() {
        assert_eq!("milliseconds".parse(), Ok(TimeoutUnit::Milliseconds));
        assert_eq!("seconds".parse(), Ok(TimeoutUnit::Seconds));
        assert!("ms"
            .parse::<TimeoutUnit>()
            .unwrap_err()
            .contains("`seconds`"));
        assert_eq!("requeue".parse(), Ok(TimeoutAction::Requeue));
        assert!("retry".parse::<TimeoutAction>().is_err());
    }
}

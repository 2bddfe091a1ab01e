//! [`UnixMillis`], the core's one notion of time: a moment given by the caller, which reads
//! the clock (the core never does).

/// A moment as milliseconds since the UNIX epoch (UTC).
///
/// Durations stay plain milliseconds (`u64`, in names ending in `_ms`): a moment plus a
/// duration is [`plus_ms`](Self::plus_ms), the time between two moments
/// [`ms_since`](Self::ms_since), and a moment cannot be passed where a duration, a count or
/// an id is meant. All arithmetic saturates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnixMillis(u64);

impl UnixMillis {
    /// Later than any real moment: a job due then never falls due and gets no timer.
    pub const NEVER: UnixMillis = UnixMillis(u64::MAX);

    /// The moment `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> UnixMillis {
        UnixMillis(ms)
    }

    /// The moment `secs` seconds after the epoch (a SUBMIT_JOB_EPOCH time, a stored
    /// `when_to_run`); past the last representable millisecond it is [`Self::NEVER`].
    pub const fn from_secs(secs: u64) -> UnixMillis {
        UnixMillis(secs.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded down).
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// The moment `ms` milliseconds later.
    pub const fn plus_ms(self, ms: u64) -> UnixMillis {
        UnixMillis(self.0.saturating_add(ms))
    }

    /// The moment `ms` milliseconds earlier (the epoch at the earliest).
    pub const fn minus_ms(self, ms: u64) -> UnixMillis {
        UnixMillis(self.0.saturating_sub(ms))
    }

    /// Milliseconds from `earlier` to this moment; 0 if `earlier` is not earlier.
    pub const fn ms_since(self, earlier: UnixMillis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_seconds_round_down() {
        let t = UnixMillis::from_millis(1_500);
        assert_eq!(t.as_secs(), 1);
        assert_eq!(UnixMillis::from_secs(2).as_millis(), 2_000);
        assert_eq!(UnixMillis::from_secs(u64::MAX), UnixMillis::NEVER);
        assert_eq!(t.plus_ms(500).ms_since(t), 500);
        assert_eq!(t.ms_since(t.plus_ms(1)), 0);
        assert_eq!(UnixMillis::NEVER.plus_ms(1), UnixMillis::NEVER);
        assert_eq!(t.minus_ms(2_000), UnixMillis::default());
        assert!(t < t.plus_ms(1) && t.plus_ms(1) < UnixMillis::NEVER);
    }
}

//! gearmand's verbosity names and how they map onto `tracing` levels.

use std::str::FromStr;

use tracing::level_filters::LevelFilter;

/// A gearmand log level, least to most verbose. gearmand's default is [`Verbosity::Error`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `FATAL`: logged as `tracing` ERROR.
    Fatal,
    /// `ALERT`: logged as `tracing` ERROR.
    Alert,
    /// `CRITICAL`: logged as `tracing` ERROR.
    Critical,
    /// `ERROR` (the default): errors only.
    #[default]
    Error,
    /// `WARNING`: adds warnings.
    Warning,
    /// `NOTICE`: same as `INFO` (`tracing` has no level between WARN and INFO).
    Notice,
    /// `INFO`: adds start-up, shutdown and protocol-error lines.
    Info,
    /// `DEBUG`: adds one line per connection and per rejected packet.
    Debug,
}

impl Verbosity {
    /// Every level, least verbose first.
    pub const ALL: [Verbosity; 8] = [
        Verbosity::Fatal,
        Verbosity::Alert,
        Verbosity::Critical,
        Verbosity::Error,
        Verbosity::Warning,
        Verbosity::Notice,
        Verbosity::Info,
        Verbosity::Debug,
    ];

    /// The gearmand name, upper case, as the `verbose` admin command reports it.
    pub fn name(self) -> &'static str {
        match self {
            Verbosity::Fatal => "FATAL",
            Verbosity::Alert => "ALERT",
            Verbosity::Critical => "CRITICAL",
            Verbosity::Error => "ERROR",
            Verbosity::Warning => "WARNING",
            Verbosity::Notice => "NOTICE",
            Verbosity::Info => "INFO",
            Verbosity::Debug => "DEBUG",
        }
    }

    /// `steps` levels more verbose (each `-v` is one step), stopping at `DEBUG`.
    pub fn raised(self, steps: u8) -> Verbosity {
        let i = Verbosity::ALL.iter().position(|v| *v == self).unwrap_or(0);
        Verbosity::ALL[(i + usize::from(steps)).min(Verbosity::ALL.len() - 1)]
    }

    /// The `tracing` filter that shows this level and everything more severe.
    pub fn level_filter(self) -> LevelFilter {
        match self {
            Verbosity::Fatal | Verbosity::Alert | Verbosity::Critical | Verbosity::Error => {
                LevelFilter::ERROR
            }
            Verbosity::Warning => LevelFilter::WARN,
            Verbosity::Notice | Verbosity::Info => LevelFilter::INFO,
            Verbosity::Debug => LevelFilter::DEBUG,
        }
    }
}

crate::layers::by_name!(Verbosity);

impl FromStr for Verbosity {
    type Err = String;

    /// Parses a gearmand level name, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::layers::parse_name(&Verbosity::ALL, Verbosity::name, "verbose level", s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_in_any_case() {
        for v in Verbosity::ALL {
            assert_eq!(v.name().parse::<Verbosity>(), Ok(v));
            assert_eq!(v.name().to_lowercase().parse::<Verbosity>(), Ok(v));
        }
        assert!("LOUD"
            .parse::<Verbosity>()
            .unwrap_err()
            .contains("FATAL, ALERT"));
    }

    #[test]
    fn each_v_raises_one_step_up_to_debug() {
        assert_eq!(Verbosity::Error.raised(0), Verbosity::Error);
        assert_eq!(Verbosity::Error.raised(1), Verbosity::Warning);
        assert_eq!(Verbosity::Error.raised(3), Verbosity::Info);
        assert_eq!(Verbosity::Error.raised(200), Verbosity::Debug);
    }

    #[test]
    fn maps_onto_tracing_levels() {
        assert_eq!(Verbosity::Critical.level_filter(), LevelFilter::ERROR);
        assert_eq!(Verbosity::Warning.level_filter(), LevelFilter::WARN);
        assert_eq!(Verbosity::Notice.level_filter(), LevelFilter::INFO);
        assert_eq!(Verbosity::Debug.level_filter(), LevelFilter::DEBUG);
    }
}

//! How log lines look and which ones are kept: `--log-format` (text or JSON lines) and
//! `--log-filter` (`RUST_LOG`-style directives laid over the `--verbose` level).

use std::str::FromStr;

use tracing_subscriber::EnvFilter;

use crate::error::CliError;
use crate::level::Verbosity;

/// The environment variable giving `--log-filter` (the flag and the config key win over it).
pub const FILTER_ENV: &str = "GEARBOXD_LOG";

/// The shape of each log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines: time, level, target, message, `key=value` fields.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message` and every
    /// structured field at the top level, and the enclosing `span`s.
    Json,
}

impl LogFormat {
    /// Every format.
    pub const ALL: [LogFormat; 2] = [LogFormat::Text, LogFormat::Json];

    /// The name the flag and the config file use.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

crate::layers::by_name!(LogFormat);

impl FromStr for LogFormat {
    type Err = String;

    /// Parses `text` or `json`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::layers::parse_name(&LogFormat::ALL, LogFormat::name, "log format", s)
    }
}

/// The filter for `verbosity` with the directives of `filter` (if any) laid over it: a bare
/// level there (`debug`) replaces the `--verbose` level, `target=level` directives
/// (`gearbox_server=debug`) change only their targets.
pub fn filter(verbosity: Verbosity, filter: Option<&str>) -> Result<EnvFilter, CliError> {
    EnvFilter::builder()
        .with_default_directive(verbosity.level_filter().into())
        .parse(filter.unwrap_or_default())
        .map_err(|e| CliError::Invalid(format!("log filter `{}`: {e}", filter.unwrap_or(""))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::level_filters::LevelFilter;

    #[test]
    fn names_parse_in_any_case() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        let e = " xml ".parse::<LogFormat>().unwrap_err();
        assert_eq!(e, "unknown log format ` xml `: expected one of text, json");
    }

    #[test]
    fn filter_lays_directives_over_the_verbose_level() {
        let f = filter(Verbosity::Warning, None).unwrap();
        assert_eq!(f.max_level_hint(), Some(LevelFilter::WARN));
        let f = filter(Verbosity::Error, Some("gearbox_server=debug")).unwrap();
        assert_eq!(f.max_level_hint(), Some(LevelFilter::DEBUG));
        let f = filter(Verbosity::Debug, Some("warn")).unwrap();
        assert_eq!(f.max_level_hint(), Some(LevelFilter::WARN));
    }

    #[test]
    fn a_bad_filter_is_a_clear_error() {
        let e = filter(Verbosity::Error, Some("gearbox_server=loud")).unwrap_err();
        assert!(e.to_string().contains("gearbox_server=loud"), "{e}");
    }
}

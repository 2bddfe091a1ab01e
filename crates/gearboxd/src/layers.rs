//! Layering settings without per-field code.
//!
//! A layer (the command line with the environment, or the config file) is a value of one of
//! the typed setting structs ([`crate::options::Options`] or one of its sections). The
//! functions here turn a layer into the TOML table of the keys it gives, lay one layer over
//! another key by key, and read a table back into a struct, naming the key at fault. The keys
//! of a struct are its clap argument ids, which are also its serde names (the field names).

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::CliError;

/// The keys `layer` gives, with their values. `None`, `false` and empty lists mean "not given"
/// (an absent switch or repeatable flag is `false` or empty on the command line), so they are
/// left out.
pub fn given<T: Serialize>(layer: &T) -> Result<toml::Table, CliError> {
    let value = toml::Value::try_from(layer).map_err(|e| {
        CliError::Invalid(format!(
            "a setting's value is not supported: {e} (numbers go up to {}, paths must be UTF-8)",
            i64::MAX
        ))
    })?;
    let toml::Value::Table(mut table) = value else {
        return Err(CliError::Invalid("settings are not a table of keys".into()));
    };
    table.retain(|_, v| match v {
        toml::Value::Boolean(b) => *b,
        toml::Value::Array(a) => !a.is_empty(),
        _ => true,
    });
    Ok(table)
}

/// `over`'s keys over `under`'s, key by key: each key from `over` if it gives it, else from
/// `under`.
pub fn overlay<T: Serialize + DeserializeOwned>(over: &T, under: &T) -> Result<T, CliError> {
    let mut table = given(under)?;
    table.extend(given(over)?);
    from_table(table).map_err(CliError::Invalid)
}

/// Reads `T` from `table`. On error, the message names the key at fault (found by reading
/// each key alone, since a table detached from its text has no line numbers).
pub fn from_table<T: DeserializeOwned>(table: toml::Table) -> Result<T, String> {
    T::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
        let message = e.message().trim().to_owned();
        let culprit = table.iter().find(|(k, v)| {
            let one = toml::Table::from_iter([((*k).clone(), (*v).clone())]);
            T::deserialize(toml::Value::Table(one)).is_err()
        });
        match culprit {
            Some((key, _)) => format!("key `{key}`: {message}"),
            None => message,
        }
    })
}

/// The keys of a settings struct, in declaration order: its clap argument ids, which are its
/// config-file keys too.
pub fn keys<T: clap::Args>() -> Vec<String> {
    T::augment_args(clap::Command::new("gearboxd"))
        .get_arguments()
        .map(|a| a.get_id().as_str().to_owned())
        .collect()
}

/// The long flag of a key: `max_body` is `--max-body`.
pub fn flag(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// The value of `all` whose `name` is `s` (in any case, spaces around ignored), or an error
/// naming `what` and the names there are.
pub fn parse_name<T: Copy>(
    all: &[T],
    name: fn(T) -> &'static str,
    what: &str,
    s: &str,
) -> Result<T, String> {
    all.iter()
        .copied()
        .find(|v| name(*v).eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| {
            let names: Vec<_> = all.iter().map(|v| name(*v)).collect();
            format!("unknown {what} `{s}`: expected one of {}", names.join(", "))
        })
}

/// Implements `Display` and `Serialize` (the value's `name()`) and `Deserialize` (through its
/// `FromStr`) for a value type of the settings, so that the config file reads the names the
/// flag reads.
macro_rules! by_name {
    ($t:ty) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = <String as serde::Deserialize>::deserialize(deserializer)?;
                name.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use by_name;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Options;
    use clap::CommandFactory;

    #[test]
    fn each_key_is_its_long_flag() {
        let cmd = crate::Args::command();
        for key in keys::<Options>() {
            let arg = cmd.get_arguments().find(|a| a.get_id() == key.as_str());
            let long = arg.and_then(|a| a.get_long()).map(|l| format!("--{l}"));
            assert_eq!(long, Some(flag(&key)), "{key}");
        }
    }

    #[test]
    fn not_given_values_are_left_out_and_the_upper_layer_wins() {
        let over = Options::default();
        let mut under = Options::default();
        under.daemon.port = Some(5000);
        under.daemon.listen = vec!["::1".into()];
        under.server.exceptions = true;
        assert_eq!(given(&over).unwrap(), toml::Table::new());
        assert_eq!(overlay(&over, &under).unwrap(), under);
        let mut over = Options::default();
        over.daemon.port = Some(6000);
        let merged = overlay(&over, &under).unwrap();
        assert_eq!(merged.daemon.port, Some(6000));
        assert_eq!(merged.daemon.listen, ["::1"]);
        assert!(merged.server.exceptions);
    }
}

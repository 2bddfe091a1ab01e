//! The TOML configuration file: every field of [`gearbox_server::Config`] plus the binary's own
//! keys ([`BinaryKeys`]). Unknown keys and wrong types are errors. `gearboxd.example.toml` at
//! the repository root documents every key with its default.

use std::path::{Path, PathBuf};

use gearbox_server::Config;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::CliError;

/// The keys the binary reads itself; every other key belongs to [`gearbox_server::Config`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinaryKeys {
    /// Port to listen on.
    pub port: Option<u16>,
    /// Addresses to listen on (as `--listen`).
    pub listen: Option<Vec<String>>,
    /// Listen backlog.
    pub backlog: Option<u32>,
    /// Runtime worker threads; 1 = a single-threaded runtime, 0 = one per core.
    pub threads: Option<usize>,
    /// Log file; `stderr` or `none` = standard error.
    pub log_file: Option<String>,
    /// Pid file.
    pub pid_file: Option<PathBuf>,
    /// Queue type: `builtin`, `libsqlite3`, `libpq`, `redis` or `mysql` (as `-q`).
    pub queue_type: Option<String>,
    /// The job store as a URL (as `--store`).
    pub store: Option<String>,
    /// The SQLite queue's directory (as `--data-dir`).
    pub data_dir: Option<PathBuf>,
    /// The SQLite database file (as `--libsqlite3-db`).
    pub libsqlite3_db: Option<PathBuf>,
    /// gearmand's queue table to import (as `--libsqlite3-table`).
    pub libsqlite3_table: Option<String>,
    /// PostgreSQL conninfo or URL (as `--libpq-conninfo`).
    pub libpq_conninfo: Option<String>,
    /// gearmand's PostgreSQL queue table to import (as `--libpq-table`).
    pub libpq_table: Option<String>,
    /// Redis host (as `--redis-server`).
    pub redis_server: Option<String>,
    /// Redis port (as `--redis-port`).
    pub redis_port: Option<u16>,
    /// Redis password (as `--redis-password`).
    pub redis_password: Option<String>,
    /// Prefix of the Redis keys (as `--redis-prefix`).
    pub redis_prefix: Option<String>,
    /// MySQL host (as `--mysql-host`).
    pub mysql_host: Option<String>,
    /// MySQL port (as `--mysql-port`).
    pub mysql_port: Option<u16>,
    /// MySQL user (as `--mysql-user`).
    pub mysql_user: Option<String>,
    /// MySQL password (as `--mysql-password`).
    pub mysql_password: Option<String>,
    /// MySQL database (as `--mysql-db`).
    pub mysql_db: Option<String>,
    /// gearmand's MySQL queue table to import (as `--mysql-table`).
    pub mysql_table: Option<String>,
    /// `fsync`, `normal` or `none` (as `--durability`); checked with the flags.
    pub durability: Option<String>,
}

impl BinaryKeys {
    /// The key names, as written in the file.
    pub const NAMES: [&'static str; 24] = [
        "port",
        "listen",
        "backlog",
        "threads",
        "log_file",
        "pid_file",
        "queue_type",
        "store",
        "data_dir",
        "libsqlite3_db",
        "libsqlite3_table",
        "libpq_conninfo",
        "libpq_table",
        "redis_server",
        "redis_port",
        "redis_password",
        "redis_prefix",
        "mysql_host",
        "mysql_port",
        "mysql_user",
        "mysql_password",
        "mysql_db",
        "mysql_table",
        "durability",
    ];
}

/// A parsed configuration file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileConfig {
    /// The binary's own keys, each `None` when absent.
    pub binary: BinaryKeys,
    /// The server's settings, with [`Config::default`] for absent keys. Its `verbose` is the
    /// file's `verbose` key as written (checked later, with the flags).
    pub server: Config,
    /// Whether the file had a `verbose` key (so `-v` raises it rather than the default).
    pub has_verbose: bool,
}

impl FileConfig {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<FileConfig, CliError> {
        let text = std::fs::read_to_string(path).map_err(|source| CliError::ConfigRead {
            path: path.to_owned(),
            source,
        })?;
        FileConfig::parse(&text).map_err(|message| CliError::ConfigParse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses the text of a configuration file; the error is a message for the user.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        // TOML syntax errors keep their line and column here.
        let mut server_keys: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut binary_keys = toml::Table::new();
        for name in BinaryKeys::NAMES {
            if let Some(v) = server_keys.remove(name) {
                binary_keys.insert(name.to_owned(), v);
            }
        }
        let has_verbose = server_keys.contains_key("verbose");
        let binary: BinaryKeys = deserialize_table(binary_keys)?;
        let server: Config = deserialize_table(server_keys).map_err(|msg| {
            if msg.contains("unknown field") {
                format!(
                    "{msg}, {}",
                    BinaryKeys::NAMES.map(|n| format!("`{n}`")).join(", ")
                )
            } else {
                msg
            }
        })?;
        Ok(FileConfig {
            binary,
            server,
            has_verbose,
        })
    }
}

/// Deserializes `table`; on error, names the key at fault (found by trying each key alone,
/// since a table detached from the text has no line numbers).
fn deserialize_table<T: DeserializeOwned>(table: toml::Table) -> Result<T, String> {
    T::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
        let message = e.message().trim().to_owned();
        let culprit = table.iter().find(|(k, v)| {
            let one = toml::Table::from_iter([((*k).clone(), (*v).clone())]);
            T::deserialize(toml::Value::Table(one)).is_err()
        });
        match culprit {
            Some((key, _)) if !message.contains("unknown field") => {
                format!("key `{key}`: {message}")
            }
            _ => message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gearbox_server::core::TimeoutAction;

    #[test]
    fn empty_file_is_all_defaults() {
        let f = FileConfig::parse("").unwrap();
        assert_eq!(f, FileConfig::default());
    }

    #[test]
    fn both_kinds_of_keys_are_read() {
        let f = FileConfig::parse(
            "port = 4731\nlisten = [\"127.0.0.1\"]\nqueue_type = \"builtin\"\n\
             job_handle_prefix = \"H:file\"\njob_retries = 3\ntimeout_action = \"requeue\"\n\
             verbose = \"INFO\"\n",
        )
        .unwrap();
        assert_eq!(f.binary.port, Some(4731));
        assert_eq!(
            f.binary.listen.as_deref(),
            Some(&["127.0.0.1".to_owned()][..])
        );
        assert_eq!(f.server.job_handle_prefix.as_deref(), Some("H:file"));
        assert_eq!(f.server.job_retries, 3);
        assert_eq!(f.server.timeout_action, TimeoutAction::Requeue);
        assert_eq!(f.server.verbose, "INFO");
        assert!(f.has_verbose);
    }

    #[test]
    fn store_keys_are_read() {
        let f = FileConfig::parse(
            "queue_type = \"libsqlite3\"\ndata_dir = \"/var/lib/gearboxd\"\n\
             libsqlite3_db = \"/q.db\"\nlibsqlite3_table = \"gq\"\n\
             store = \"sqlite:///s.db\"\ndurability = \"normal\"\n",
        )
        .unwrap();
        let b = f.binary;
        assert_eq!(b.queue_type.as_deref(), Some("libsqlite3"));
        assert_eq!(b.data_dir, Some(PathBuf::from("/var/lib/gearboxd")));
        assert_eq!(b.libsqlite3_db, Some(PathBuf::from("/q.db")));
        assert_eq!(b.libsqlite3_table.as_deref(), Some("gq"));
        assert_eq!(b.store.as_deref(), Some("sqlite:///s.db"));
        assert_eq!(b.durability.as_deref(), Some("normal"));
    }

    #[test]
    fn unknown_key_is_named_with_the_valid_ones() {
        let e = FileConfig::parse("prot = 4730\n").unwrap_err();
        assert!(e.contains("`prot`"), "{e}");
        assert!(
            e.contains("`max_body`") && e.contains("`queue_type`"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_and_bad_syntax_are_errors() {
        let e = FileConfig::parse("port = \"x\"\n").unwrap_err();
        assert!(e.contains("key `port`: invalid type"), "{e}");
        let e = FileConfig::parse("job_retries = 1\nmax_body = -1\n").unwrap_err();
        assert!(e.contains("key `max_body`"), "{e}");
        let e = FileConfig::parse("port = \n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }
}

//! The TOML configuration file: a layer of [`Options`], whose keys are the flags' names with
//! `_` for `-` (`max_body` for `--max-body`). Unknown keys and wrong types are errors that name
//! the key. `gearboxd.example.toml` at the repository root documents every key with its
//! default (a test checks it).

use std::path::Path;

use crate::error::CliError;
use crate::layers;
use crate::options::Options;

/// Reads and parses `path`.
pub fn load(path: &Path) -> Result<Options, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::ConfigRead {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|message| CliError::ConfigParse {
        path: path.to_owned(),
        message,
    })
}

/// Parses the text of a configuration file; the error is a message for the user.
pub fn parse(text: &str) -> Result<Options, String> {
    // TOML syntax errors keep their line and column here.
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let keys = Options::keys();
    let known = |k: &String| keys.contains(k) || Options::FILE_ONLY_KEYS.contains(&k.as_str());
    if let Some(unknown) = table.keys().find(|k| !known(k)) {
        let expected: Vec<String> = keys
            .iter()
            .map(String::as_str)
            .chain(Options::FILE_ONLY_KEYS)
            .map(|k| format!("`{k}`"))
            .collect();
        return Err(format!(
            "unknown field `{unknown}`, expected one of {}",
            expected.join(", ")
        ));
    }
    layers::from_table(table)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use gearbox_server::core::TimeoutAction;
    use gearbox_store::Durability;

    use super::*;
    use crate::level::Verbosity;
    use crate::store::QueueType;

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(parse("").unwrap(), Options::default());
    }

    #[test]
    fn every_section_is_read() {
        let f = parse(
            "port = 4731\nlisten = [\"127.0.0.1\"]\nqueue_type = \"builtin\"\n\
             job_handle_prefix = \"H:file\"\njob_retries = 3\ntimeout_action = \"requeue\"\n\
             verbose = \"INFO\"\nexceptions = true\n",
        )
        .unwrap();
        assert_eq!(f.daemon.port, Some(4731));
        assert_eq!(f.daemon.listen, ["127.0.0.1"]);
        assert_eq!(f.daemon.verbose, Some(Verbosity::Info));
        assert_eq!(f.store.queue_type, Some(QueueType::Builtin));
        assert_eq!(f.server.job_handle_prefix.as_deref(), Some("H:file"));
        assert_eq!(f.server.job_retries, Some(3));
        assert_eq!(f.server.timeout_action, Some(TimeoutAction::Requeue));
        assert!(f.server.exceptions);
    }

    #[test]
    fn store_keys_are_read() {
        let f = parse(
            "queue_type = \"libsqlite3\"\ndata_dir = \"/var/lib/gearboxd\"\n\
             libsqlite3_db = \"/q.db\"\nlibsqlite3_table = \"gq\"\n\
             store = \"sqlite:///s.db\"\ndurability = \"normal\"\nredis_port = 7000\n\
             mysql_db = \"q\"\n",
        )
        .unwrap();
        let s = f.store;
        assert_eq!(s.queue_type, Some(QueueType::Libsqlite3));
        assert_eq!(s.sqlite.data_dir, Some(PathBuf::from("/var/lib/gearboxd")));
        assert_eq!(s.sqlite.libsqlite3_db, Some(PathBuf::from("/q.db")));
        assert_eq!(s.sqlite.libsqlite3_table.as_deref(), Some("gq"));
        assert_eq!(s.store.as_deref(), Some("sqlite:///s.db"));
        assert_eq!(s.durability, Some(Durability::Normal));
        assert_eq!(s.redis.server.redis_port, Some(7000));
        assert_eq!(s.mysql.server.mysql_db.as_deref(), Some("q"));
    }

    #[test]
    fn enum_values_are_read_as_the_flags_read_them() {
        // The same names as the flags, in any case, aliases included.
        let f = parse("durability = \"FULL\"\nqueue_type = \"PostgreSQL\"\nverbose = \"debug\"")
            .unwrap();
        assert_eq!(f.store.durability, Some(Durability::Fsync));
        assert_eq!(f.store.queue_type, Some(QueueType::Libpq));
        assert_eq!(f.daemon.verbose, Some(Verbosity::Debug));
        for (text, key, value) in [
            ("durability = \"sometimes\"", "durability", "sometimes"),
            ("queue_type = \"disk\"", "queue_type", "disk"),
            ("verbose = \"LOUD\"", "verbose", "LOUD"),
            ("timeout_action = \"retry\"", "timeout_action", "retry"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(
                e.contains(&format!("key `{key}`")) && e.contains(value),
                "{e}"
            );
        }
    }

    #[test]
    fn unknown_key_is_named_with_the_valid_ones() {
        let e = parse("prot = 4730\n").unwrap_err();
        assert!(e.contains("unknown field `prot`"), "{e}");
        for key in Options::keys() {
            assert!(e.contains(&format!("`{key}`")), "{key}: {e}");
        }
        assert!(
            e.contains("`max_body`") && e.contains("`queue_type`"),
            "{e}"
        );
    }

    #[test]
    fn access_rules_are_read_and_a_bad_one_is_named() {
        let f = parse(
            "port = 4731\n[[access]]\nname = \"ops\"\npeer = [\"10.0.0.0/8\"]\nadmin = \"write\"\n\
             [[access]]\nname = \"rest\"\nsubmit = [\"*\"]\n",
        )
        .unwrap();
        let rules = f.server.access.rules();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].name.as_deref(), Some("ops"));
        assert_eq!(rules[1].submit, ["*"]);
        let config = f.server.config(Verbosity::Error).unwrap();
        assert_eq!(
            config.access, f.server.access,
            "the rules reach the server's config"
        );
        for (text, want) in [
            (
                "[[access]]\nname = \"ops\"\npeer = [\"10.0.0.0/40\"]\n",
                "access rule `ops`: peer: `10.0.0.0/40`",
            ),
            (
                "[[access]]\nname = \"w\"\nregister = [\"[x\"]\n",
                "access rule `w`: register: `[x` is not a valid pattern",
            ),
            (
                "[[access]]\nname = \"a\"\nadmin = \"root\"\n",
                "access rule `a`: admin: `root` is not an admin level",
            ),
            ("[[access]]\nsubmits = [\"x\"]\n", "unknown field `submits`"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(
                e.contains("key `access`") && e.contains(want),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn wrong_type_and_bad_syntax_are_errors() {
        let e = parse("port = \"x\"\n").unwrap_err();
        assert!(e.contains("key `port`: invalid type"), "{e}");
        let e = parse("job_retries = 1\nmax_body = -1\n").unwrap_err();
        assert!(e.contains("key `max_body`"), "{e}");
        let e = parse("redis_port = 70000\n").unwrap_err();
        assert!(e.contains("key `redis_port`"), "{e}");
        let e = parse("port = \n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }
}

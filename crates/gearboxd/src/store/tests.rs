//! Unit tests of the store settings and of the import numbering.

use std::path::{Path, PathBuf};

use clap::Parser;
use gearbox_store::sql::DEFAULT_TABLE;
use gearbox_store::{Durability, StoredJob};

use super::DEFAULT_LIBSQLITE3_TABLE as DEFAULT_GEARMAND_TABLE;

use super::open::next_number;
use super::*;

/// The store keys of a command line (`gearboxd` and these flags).
fn cli(flags: &[&str]) -> StoreSection {
    let argv = std::iter::once("gearboxd").chain(flags.iter().copied());
    crate::Args::try_parse_from(argv).unwrap().options.store
}

/// The store keys of a command line written as one line (no value with a space).
fn cli_line(line: &str) -> StoreSection {
    cli(&line.split_whitespace().collect::<Vec<_>>())
}

/// The store keys of a config file.
fn file(text: &str) -> StoreSection {
    crate::config_file::parse(text).unwrap().store
}

/// No keys.
fn none() -> StoreSection {
    StoreSection::default()
}

fn resolve(cli: StoreSection, file: StoreSection) -> Result<StoreSettings, String> {
    StoreSettings::resolve(&cli, &file)
        .map(|(s, _)| s)
        .map_err(|e| e.to_string())
}

fn warnings(cli: StoreSection) -> Vec<String> {
    StoreSettings::resolve(&cli, &none()).unwrap().1
}

/// Resolves `cli` over `file` into the settings of one kind of store, or panics naming the
/// kind it resolved to instead.
macro_rules! resolve_as {
    ($kind:ident, $cli:expr, $file:expr) => {
        resolve($cli, $file).map(|s| match s {
            StoreSettings::$kind(s) => s,
            other => panic!("not {}: {other:?}", stringify!($kind)),
        })
    };
}

fn sqlite_path(cli: StoreSection, file: StoreSection) -> PathBuf {
    resolve_as!(Sqlite, cli, file).unwrap().path
}

#[test]
fn sqlite_in_the_data_dir_is_the_default() {
    assert_eq!(
        sqlite_path(none(), none()),
        Path::new(DEFAULT_DATA_DIR).join(SQLITE_FILE_NAME)
    );
    // --data-dir alone moves it.
    let flags = cli(&["--data-dir", "/srv/q"]);
    assert!(warnings(flags.clone()).is_empty());
    assert_eq!(
        sqlite_path(flags, none()),
        Path::new("/srv/q/gearbox.sqlite")
    );
}

#[test]
fn builtin_is_memory_only() {
    for name in ["builtin", "BUILTIN", "memory"] {
        assert_eq!(
            resolve(cli(&["-q", name]), none()).unwrap(),
            StoreSettings::Builtin
        );
    }
    for url in ["memory:", "builtin", "builtin:"] {
        assert_eq!(
            resolve(cli(&["--store", url]), none()).unwrap(),
            StoreSettings::Builtin
        );
    }
}

#[test]
fn sqlite_lives_in_the_data_dir_by_default() {
    let s = resolve_as!(Sqlite, cli(&["-q", "libsqlite3"]), none()).unwrap();
    assert_eq!(s.path, Path::new(DEFAULT_DATA_DIR).join(SQLITE_FILE_NAME));
    assert_eq!(s.data_dir.as_deref(), Some(Path::new(DEFAULT_DATA_DIR)));
    assert_eq!(s.durability, Durability::Fsync);
    assert_eq!(s.gearmand_table, DEFAULT_GEARMAND_TABLE);
    assert!(!s.gearmand_table_given);

    let flags =
        cli_line("-q sqlite --data-dir /var/lib/gb --durability normal --libsqlite3-table q");
    let s = resolve_as!(Sqlite, flags, none()).unwrap();
    assert_eq!(s.path, Path::new("/var/lib/gb/gearbox.sqlite"));
    assert_eq!(s.durability, Durability::Normal);
    assert_eq!(
        (s.gearmand_table.as_str(), s.gearmand_table_given),
        ("q", true)
    );
}

#[test]
fn urls_and_libsqlite3_db_name_the_file() {
    let path = |url| sqlite_path(cli(&["--store", url]), none());
    assert_eq!(
        path("sqlite:///var/lib/q.sqlite"),
        Path::new("/var/lib/q.sqlite")
    );
    assert_eq!(path("sqlite:q.sqlite"), Path::new("q.sqlite"));
    assert_eq!(path("sqlite://d/q.sqlite"), Path::new("d/q.sqlite"));
    assert_eq!(path("SQLITE3:/abs.db"), Path::new("/abs.db"));
    let flags = cli(&["-q", "libsqlite3", "--libsqlite3-db", "/tmp/gearmand.db"]);
    let s = resolve_as!(Sqlite, flags, none()).unwrap();
    assert_eq!(s.path, Path::new("/tmp/gearmand.db"));
    assert_eq!(s.data_dir, None, "no data directory is created");
}

#[test]
fn the_command_line_overrides_the_file_by_group() {
    let f = file("store = \"sqlite:///file.sqlite\"\ndurability = \"none\"\n");
    // `-q builtin` beats the file's URL instead of contradicting it.
    assert_eq!(
        resolve(cli(&["-q", "builtin"]), f.clone()).unwrap(),
        StoreSettings::Builtin
    );
    // The file chooses SQLite, the flag its file.
    assert_eq!(
        sqlite_path(cli(&["--libsqlite3-db", "/flag.sqlite"]), f.clone()),
        Path::new("/flag.sqlite")
    );
    // The flag chooses SQLite, the file its file and durability.
    let s = resolve_as!(Sqlite, cli(&["-q", "libsqlite3"]), f).unwrap();
    assert_eq!(s.path, Path::new("/file.sqlite"));
    assert_eq!(s.durability, Durability::None);
}

#[test]
fn contradictions_and_unknown_names_are_errors() {
    let e = resolve(cli(&["-q", "builtin", "--store", "sqlite:x"]), none()).unwrap_err();
    assert!(e.contains("disagree"), "{e}");
    let e = resolve(
        cli(&["--store", "sqlite:///a", "--libsqlite3-db", "/b"]),
        none(),
    )
    .unwrap_err();
    assert!(e.contains("/a") && e.contains("/b"), "{e}");
    // The same contradiction within the file.
    let f = file("store = \"sqlite:///a\"\nlibsqlite3_db = \"/b\"\n");
    assert!(resolve(none(), f).is_err());
    let e = resolve(cli(&["-q", "libdrizzle"]), none()).unwrap_err();
    assert!(e.contains("not supported"), "{e}");
    let e = "disk".parse::<QueueType>().unwrap_err();
    assert!(e.contains("unknown queue type `disk`"), "{e}");
    for url in [
        "sqlite:",
        "sqlite://",
        "sqlite:///x?mode=rwc",
        "file:///x",
        "postgres:h",
        "redis:h",
        "redis://",
        "redis://h:port",
        "redis://h/x",
        "rediss://h?insecure",
        "mysql:h",
        "mysql://h",
        "mysql://h:port/db",
        "mysql://u@h/db?ssl=true",
    ] {
        assert!(resolve(cli(&["--store", url]), none()).is_err(), "{url}");
    }
    let flags = cli(&["-q", "libsqlite3", "--libsqlite3-table", DEFAULT_TABLE]);
    assert!(resolve(flags, none()).is_err());
}

#[test]
fn sqlite_flags_warn_with_the_builtin_queue() {
    let flags = cli(&["-q", "builtin", "--data-dir", "d", "--durability", "normal"]);
    let (s, warnings) = StoreSettings::resolve(&flags, &none()).unwrap();
    assert_eq!(s, StoreSettings::Builtin);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with("--data-dir has no effect"));
    assert!(warnings[0].contains("-q libsqlite3"), "{warnings:?}");
    // The file's keys never warn.
    let f = file("data_dir = \"d\"\nredis_port = 1\nmysql_db = \"x\"\ndurability = \"none\"");
    let (_, warnings) = StoreSettings::resolve(&cli(&["-q", "builtin"]), &f).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn imported_handles_continue_after_the_highest_stored_one() {
    let jobs = [
        StoredJob::new("H:me:7", "f", ""),
        StoredJob::new("H:me:12", "f", ""),
        StoredJob::new("H:other:99", "f", ""),
        StoredJob::new("H:me:x", "f", ""),
    ];
    assert_eq!(next_number(&jobs, "H:me"), 13);
    assert_eq!(next_number(&jobs, "H:none"), 1);
    assert_eq!(next_number(&[], "H:me"), 1);
}

#[test]
fn postgres_takes_gearmands_names_and_urls() {
    for q in ["libpq", "postgres", "PostgreSQL", "pg"] {
        let flags = cli(&[
            "-q",
            q,
            "--libpq-conninfo",
            "host=/run/postgresql dbname=gearman",
        ]);
        let s = resolve_as!(Postgres, flags, none()).unwrap();
        assert_eq!(s.conninfo, "host=/run/postgresql dbname=gearman");
        assert_eq!(s.gearmand_table, DEFAULT_LIBPQ_TABLE);
        assert!(!s.gearmand_table_given);
        assert_eq!(s.durability, Durability::Fsync);
    }
    let s = resolve_as!(Postgres, cli(&["--store", "postgres://u:pw@h/db"]), none()).unwrap();
    assert_eq!(s.conninfo, "postgres://u:pw@h/db");
    assert!(!format!("{s:?}").contains("pw"), "{s:?}");
    assert!(!StoreSettings::Postgres(s).describe().contains("pw"));
    // The file names the database, the flag the kind and gearmand's table.
    let f = file("libpq_conninfo = \"host=db password=secret\"\ndurability = \"normal\"\n");
    let s = resolve_as!(
        Postgres,
        cli(&["-q", "libpq", "--libpq-table", "gearman_q"]),
        f
    )
    .unwrap();
    assert_eq!(s.conninfo, "host=db password=secret");
    assert_eq!(
        (s.gearmand_table.as_str(), s.gearmand_table_given),
        ("gearman_q", true)
    );
    assert_eq!(s.durability, Durability::Normal);
    let shown = StoreSettings::Postgres(s).describe();
    assert!(
        shown.contains("password=***") && !shown.contains("secret"),
        "{shown}"
    );
    // No database, our own table as gearmand's, or two different databases: errors.
    assert!(resolve(cli(&["-q", "libpq"]), none())
        .unwrap_err()
        .contains("--libpq-conninfo"));
    let flags = cli_line("-q libpq --libpq-conninfo host=x --libpq-table gearbox_jobs");
    assert!(resolve(flags, none()).is_err());
    let flags = cli(&["--store", "postgres://a/b", "--libpq-conninfo", "host=x"]);
    assert!(resolve(flags, none()).is_err());
}

#[test]
fn redis_takes_gearmands_names_and_urls() {
    let s = resolve_as!(Redis, cli(&["-q", "redis"]), none()).unwrap();
    assert_eq!(
        (s.host.as_str(), s.port, s.password.as_deref(), s.db),
        (DEFAULT_REDIS_SERVER, DEFAULT_REDIS_PORT, None, 0)
    );
    assert_eq!(s.prefix, DEFAULT_REDIS_PREFIX);
    assert_eq!(s.gearmand_prefix, DEFAULT_REDIS_GEARMAND_PREFIX);
    let flags = cli_line(
        "-q redis --redis-server cache --redis-port 6380 --redis-password pw --redis-prefix jobs: \
         --redis-gearmand-prefix gm",
    );
    let s = resolve_as!(Redis, flags, none()).unwrap();
    let expected = RedisSettings {
        host: "cache".into(),
        port: 6380,
        username: None,
        password: Some("pw".to_owned().into()),
        db: 0,
        prefix: "jobs:".into(),
        gearmand_prefix: "gm".into(),
        tls: None,
    };
    assert_eq!(s, expected);
    // gearmand's own command line: its --redis-prefix also names the keys to import.
    let s = resolve_as!(Redis, cli_line("-q redis --redis-prefix jobs"), none()).unwrap();
    assert_eq!(
        (s.prefix.as_str(), s.gearmand_prefix.as_str()),
        ("jobs", "jobs")
    );
    assert!(!format!("{s:?}").contains("pw"), "{s:?}");
    let url = |u: &str| resolve_as!(Redis, cli(&["--store", u]), none()).unwrap();
    let s = url("redis://:secret@10.0.0.1:6390/2");
    assert_eq!(
        (
            s.host.as_str(),
            s.port,
            s.password.as_deref(),
            s.db,
            s.username
        ),
        ("10.0.0.1", 6390, Some("secret"), 2, None)
    );
    let s = url("redis://app:secret@h");
    assert_eq!(
        (s.username.as_deref(), s.port),
        (Some("app"), DEFAULT_REDIS_PORT)
    );
    assert_eq!(url("redis://[::1]:7000").host, "::1");
    // The file's URL, the flags override its parts; the file's own keys too.
    let f = file("store = \"redis://:old@h:7000/3\"\nredis_server = \"h\"\n");
    let s = resolve_as!(Redis, cli(&["--redis-password", "new"]), f).unwrap();
    assert_eq!(
        (s.host.as_str(), s.port, s.password.as_deref(), s.db),
        ("h", 7000, Some("new"), 3)
    );
    // A URL on the command line: the file's keys are not used.
    let f = file("redis_server = \"other\"\nredis_port = 1\n");
    let s = resolve_as!(Redis, cli(&["--store", "redis://h:7000"]), f).unwrap();
    assert_eq!((s.host.as_str(), s.port), ("h", 7000));
    // A URL and a flag of the same layer that disagree.
    let e = resolve(
        cli(&["--store", "redis://a:1", "--redis-port", "2"]),
        none(),
    )
    .unwrap_err();
    assert!(e.contains("port"), "{e}");
    let f = file("store = \"redis://a\"\nredis_password = \"pw\"\n");
    let e = resolve(none(), f).unwrap_err();
    assert!(e.contains("--redis-password"), "{e}");
    // --durability warns: Redis's own settings decide.
    let warnings = warnings(cli(&[
        "-q",
        "redis",
        "--durability",
        "fsync",
        "--data-dir",
        "d",
    ]));
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w.contains("appendonly")),
        "{warnings:?}"
    );
}

#[test]
fn mysql_takes_gearmands_names_and_urls() {
    for q in ["mysql", "MySQL", "mariadb", "libmysql"] {
        let s = resolve_as!(Mysql, cli(&["-q", q, "--mysql-db", "gearman"]), none()).unwrap();
        assert_eq!(s.host, DEFAULT_MYSQL_HOST);
        assert_eq!(s.port, DEFAULT_MYSQL_PORT);
        assert_eq!(s.db, "gearman");
        assert_eq!(s.gearmand_table, DEFAULT_MYSQL_TABLE);
        assert!(!s.gearmand_table_given);
    }
    // No database: an error that says which flag to give.
    let e = resolve_as!(Mysql, cli(&["-q", "mysql"]), none()).unwrap_err();
    assert!(e.contains("--mysql-db"), "{e}");
    // gearmand's flags.
    let flags = cli_line(
        "-q mysql --mysql-host db.local --mysql-port 3307 --mysql-user gearman \
         --mysql-password s3cret --mysql-db jobs --mysql-table old_queue --durability normal",
    );
    let s = resolve_as!(Mysql, flags, none()).unwrap();
    let expected = MysqlSettings {
        host: "db.local".into(),
        port: 3307,
        user: Some("gearman".into()),
        password: Some("s3cret".to_owned().into()),
        db: "jobs".into(),
        gearmand_table: "old_queue".into(),
        gearmand_table_given: true,
        durability: Durability::Normal,
        ssl_mode: gearbox_store::tls::MysqlSslMode::Disabled,
        ssl: gearbox_store::tls::TlsFiles::default(),
    };
    assert_eq!(s, expected);
    assert!(!format!("{s:?}").contains("s3cret"), "{s:?}");
    let described = StoreSettings::Mysql(s.clone()).describe();
    assert!(!described.contains("s3cret"), "{described}");
    assert!(described.contains("db.local:3307/jobs"), "{described}");
    // URLs, also mariadb://, percent-encoded.
    for url in [
        "mysql://u:pw@h:3310/q",
        "mariadb://u:pw@h:3310/q",
        "mysql://%75:p%77@h:3310/%71",
    ] {
        let s = resolve_as!(Mysql, cli(&["--store", url]), none()).unwrap();
        assert_eq!(
            (
                s.host.as_str(),
                s.port,
                s.user.as_deref(),
                s.password.as_deref(),
                s.db.as_str()
            ),
            ("h", 3310, Some("u"), Some("pw"), "q")
        );
    }
    let s = resolve_as!(Mysql, cli(&["--store", "mysql://[::1]/q"]), none()).unwrap();
    assert_eq!(
        (s.host.as_str(), s.port, s.user),
        ("::1", DEFAULT_MYSQL_PORT, None)
    );
    // The file's URL, the flags override its parts.
    let f = file("store = \"mysql://u:pw@h/q\"\n");
    let flags = cli(&["--mysql-host", "other", "--mysql-password", "new"]);
    let s = resolve_as!(Mysql, flags, f).unwrap();
    assert_eq!(s.host, "other");
    assert_eq!(s.password.as_deref(), Some("new"));
    assert_eq!(s.db, "q");
    // A URL and a flag of the same layer that disagree; errors hide the password.
    let flags = cli(&["--store", "mysql://u:pw@h/q", "--mysql-port", "1"]);
    assert!(resolve(flags, none()).unwrap_err().contains("port"));
    let flags = cli(&["--store", "mysql://h/q", "--mysql-user", "u"]);
    assert!(resolve(flags, none()).unwrap_err().contains("--mysql-user"));
    let e = resolve(
        cli(&["-q", "libpq", "--store", "mysql://u:secret@h/q"]),
        none(),
    )
    .unwrap_err();
    assert!(e.contains("disagree") && !e.contains("secret"), "{e}");
    // Our own table cannot be gearmand's.
    let flags = cli_line("-q mysql --mysql-db q --mysql-table gearbox_jobs");
    assert!(resolve(flags, none()).is_err());
    // MySQL flags warn with another queue.
    let warnings = warnings(cli(&["-q", "builtin", "--mysql-host", "h"]));
    assert!(
        warnings.len() == 1 && warnings[0].contains("--mysql-host"),
        "{warnings:?}"
    );
}

#[test]
fn passwords_are_hidden_in_urls() {
    use super::parse::{redact_conninfo, redact_url};
    assert_eq!(redact_url("redis://:pw@h:1/0"), "redis://:***@h:1/0");
    assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
    assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(redact_url("mysql://u:pw@h:1/db"), "mysql://u:***@h:1/db");
    assert_eq!(redact_conninfo("host=h password=pw"), "host=h password=***");
}

#[test]
fn memcached_takes_gearmands_flags_and_urls() {
    let s = resolve_as!(Memcached, cli(&["-q", "libmemcached"]), none()).unwrap();
    assert_eq!(s.servers, DEFAULT_LIBMEMCACHED_SERVERS);
    assert_eq!(s.prefix, DEFAULT_LIBMEMCACHED_PREFIX);
    let flags = "-q libmemcached --libmemcached-servers=a:1,b --libmemcached-prefix=jobs_";
    let s = resolve_as!(Memcached, cli_line(flags), none()).unwrap();
    assert_eq!((s.servers.as_str(), s.prefix.as_str()), ("a:1,b", "jobs_"));
    let f = file("queue_type = \"memcached\"\nlibmemcached_servers = \"c:2\"\n");
    assert_eq!(resolve_as!(Memcached, none(), f).unwrap().servers, "c:2");
    let s = resolve_as!(Memcached, cli(&["--store", "memcached://h:3,i:4"]), none()).unwrap();
    assert_eq!(s.servers, "h:3,i:4");
    for (flags, why) in [
        (
            "--store memcached://h:3 --libmemcached-servers h:4",
            "give one of them",
        ),
        ("-q libmemcached --libmemcached-servers a:port", "port"),
        ("-q libmemcached --libmemcached-prefix=a\tb", "printable"),
        ("--store memcached://", "memcached://host"),
    ] {
        let e = resolve(cli(&flags.split(' ').collect::<Vec<_>>()), none()).unwrap_err();
        assert!(e.contains(why), "{flags}: {e}");
    }
    let w = warnings(cli_line("-q libmemcached --durability fsync"));
    assert!(w[0].contains("memory only"), "{w:?}");
}

#[test]
fn tokyo_cabinet_is_refused_with_the_way_to_move_its_jobs() {
    let e = resolve(
        cli_line("-q libtokyocabinet --libtokyocabinet-file /q.tcb"),
        none(),
    );
    let e = e.unwrap_err();
    for part in [
        "not supported",
        "SQLite",
        "Moving a Tokyo Cabinet queue",
        "docs/job-store.md",
    ] {
        assert!(e.contains(part), "{part}: {e}");
    }
    let w = warnings(cli_line(
        "--libtokyocabinet-file /q.tcb --libtokyocabinet-optimize",
    ));
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w.iter().all(|w| w.contains("no effect")), "{w:?}");
}

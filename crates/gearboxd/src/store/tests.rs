//! Unit tests of the store settings and of the import numbering.

use std::path::{Path, PathBuf};

use gearbox_store::sql::DEFAULT_TABLE;
use gearbox_store::{Durability, StoredJob};

use super::DEFAULT_LIBSQLITE3_TABLE as DEFAULT_GEARMAND_TABLE;

use super::open::next_number;
use super::*;

fn keys(queue_type: Option<&str>, store: Option<&str>) -> StoreKeys {
    StoreKeys {
        queue_type: queue_type.map(Into::into),
        store: store.map(Into::into),
        ..StoreKeys::default()
    }
}

fn resolve(cli: StoreKeys, file: StoreKeys) -> Result<StoreSettings, String> {
    StoreSettings::resolve(cli, file)
        .map(|(s, _)| s)
        .map_err(|e| e.to_string())
}

fn sqlite_path(s: StoreSettings) -> PathBuf {
    match s {
        StoreSettings::Sqlite(s) => s.path,
        other => panic!("not sqlite: {other:?}"),
    }
}

#[test]
fn sqlite_in_the_data_dir_is_the_default() {
    let s = resolve(StoreKeys::default(), StoreKeys::default()).unwrap();
    assert_eq!(
        sqlite_path(s),
        Path::new(DEFAULT_DATA_DIR).join(SQLITE_FILE_NAME)
    );
    // --data-dir alone moves it.
    let cli = StoreKeys {
        data_dir: Some("/srv/q".into()),
        ..StoreKeys::default()
    };
    let (s, warnings) = StoreSettings::resolve(cli, StoreKeys::default()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(sqlite_path(s), Path::new("/srv/q/gearbox.sqlite"));
}

#[test]
fn builtin_is_memory_only() {
    for name in ["builtin", "BUILTIN", "memory"] {
        assert_eq!(
            resolve(keys(Some(name), None), StoreKeys::default()).unwrap(),
            StoreSettings::Builtin
        );
    }
    for url in ["memory:", "builtin", "builtin:"] {
        assert_eq!(
            resolve(keys(None, Some(url)), StoreKeys::default()).unwrap(),
            StoreSettings::Builtin
        );
    }
}

#[test]
fn sqlite_lives_in_the_data_dir_by_default() {
    let s = resolve(keys(Some("libsqlite3"), None), StoreKeys::default()).unwrap();
    let StoreSettings::Sqlite(s) = s else {
        panic!("not sqlite")
    };
    assert_eq!(s.path, Path::new(DEFAULT_DATA_DIR).join(SQLITE_FILE_NAME));
    assert_eq!(s.data_dir.as_deref(), Some(Path::new(DEFAULT_DATA_DIR)));
    assert_eq!(s.durability, Durability::Fsync);
    assert_eq!(s.gearmand_table, DEFAULT_GEARMAND_TABLE);
    assert!(!s.gearmand_table_given);

    let cli = StoreKeys {
        queue_type: Some("sqlite".into()),
        data_dir: Some("/var/lib/gb".into()),
        durability: Some(Durability::Normal),
        libsqlite3_table: Some("q".into()),
        ..StoreKeys::default()
    };
    let StoreSettings::Sqlite(s) = resolve(cli, StoreKeys::default()).unwrap() else {
        panic!("not sqlite")
    };
    assert_eq!(s.path, Path::new("/var/lib/gb/gearbox.sqlite"));
    assert_eq!(s.durability, Durability::Normal);
    assert_eq!(
        (s.gearmand_table.as_str(), s.gearmand_table_given),
        ("q", true)
    );
}

#[test]
fn urls_and_libsqlite3_db_name_the_file() {
    let path = |url| sqlite_path(resolve(keys(None, Some(url)), StoreKeys::default()).unwrap());
    assert_eq!(
        path("sqlite:///var/lib/q.sqlite"),
        Path::new("/var/lib/q.sqlite")
    );
    assert_eq!(path("sqlite:q.sqlite"), Path::new("q.sqlite"));
    assert_eq!(path("sqlite://d/q.sqlite"), Path::new("d/q.sqlite"));
    assert_eq!(path("SQLITE3:/abs.db"), Path::new("/abs.db"));
    let cli = StoreKeys {
        queue_type: Some("libsqlite3".into()),
        libsqlite3_db: Some("/tmp/gearmand.db".into()),
        ..StoreKeys::default()
    };
    let StoreSettings::Sqlite(s) = resolve(cli, StoreKeys::default()).unwrap() else {
        panic!("not sqlite")
    };
    assert_eq!(s.path, Path::new("/tmp/gearmand.db"));
    assert_eq!(s.data_dir, None, "no data directory is created");
}

#[test]
fn the_command_line_overrides_the_file_by_group() {
    let file = StoreKeys {
        store: Some("sqlite:///file.sqlite".into()),
        durability: Some(Durability::None),
        ..StoreKeys::default()
    };
    // `-q builtin` beats the file's URL instead of contradicting it.
    assert_eq!(
        resolve(keys(Some("builtin"), None), file.clone()).unwrap(),
        StoreSettings::Builtin
    );
    // The file chooses SQLite, the flag its file.
    let cli = StoreKeys {
        libsqlite3_db: Some("/flag.sqlite".into()),
        ..StoreKeys::default()
    };
    assert_eq!(
        sqlite_path(resolve(cli, file.clone()).unwrap()),
        Path::new("/flag.sqlite")
    );
    // The flag chooses SQLite, the file its file and durability.
    let StoreSettings::Sqlite(s) = resolve(keys(Some("libsqlite3"), None), file).unwrap() else {
        panic!("not sqlite")
    };
    assert_eq!(s.path, Path::new("/file.sqlite"));
    assert_eq!(s.durability, Durability::None);
}

#[test]
fn contradictions_and_unknown_names_are_errors() {
    let e = resolve(
        keys(Some("builtin"), Some("sqlite:x")),
        StoreKeys::default(),
    )
    .unwrap_err();
    assert!(e.contains("disagree"), "{e}");
    let cli = StoreKeys {
        store: Some("sqlite:///a".into()),
        libsqlite3_db: Some("/b".into()),
        ..StoreKeys::default()
    };
    let e = resolve(cli, StoreKeys::default()).unwrap_err();
    assert!(e.contains("/a") && e.contains("/b"), "{e}");
    let e = resolve(keys(Some("libmemcached"), None), StoreKeys::default()).unwrap_err();
    assert!(e.contains("not supported"), "{e}");
    let e = resolve(keys(Some("disk"), None), StoreKeys::default()).unwrap_err();
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
        "rediss://h",
        "mysql:h",
        "mysql://h",
        "mysql://h:port/db",
    ] {
        assert!(
            resolve(keys(None, Some(url)), StoreKeys::default()).is_err(),
            "{url}"
        );
    }
    let cli = StoreKeys {
        queue_type: Some("libsqlite3".into()),
        libsqlite3_table: Some(DEFAULT_TABLE.into()),
        ..StoreKeys::default()
    };
    assert!(resolve(cli, StoreKeys::default()).is_err());
}

#[test]
fn sqlite_flags_warn_with_the_builtin_queue() {
    let cli = StoreKeys {
        queue_type: Some("builtin".into()),
        data_dir: Some("d".into()),
        durability: Some(Durability::Normal),
        ..StoreKeys::default()
    };
    let (s, warnings) = StoreSettings::resolve(cli, StoreKeys::default()).unwrap();
    assert_eq!(s, StoreSettings::Builtin);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with("--data-dir has no effect"));
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

fn postgres(cli: StoreKeys, file: StoreKeys) -> Result<PostgresSettings, String> {
    match resolve(cli, file)? {
        StoreSettings::Postgres(s) => Ok(s),
        other => panic!("not postgres: {other:?}"),
    }
}

fn redis(cli: StoreKeys, file: StoreKeys) -> Result<RedisSettings, String> {
    match resolve(cli, file)? {
        StoreSettings::Redis(s) => Ok(s),
        other => panic!("not redis: {other:?}"),
    }
}

#[test]
fn postgres_takes_gearmands_names_and_urls() {
    for q in ["libpq", "postgres", "PostgreSQL", "pg"] {
        let cli = StoreKeys {
            queue_type: Some(q.into()),
            libpq_conninfo: Some("host=/run/postgresql dbname=gearman".into()),
            ..StoreKeys::default()
        };
        let s = postgres(cli, StoreKeys::default()).unwrap();
        assert_eq!(s.conninfo, "host=/run/postgresql dbname=gearman");
        assert_eq!(s.gearmand_table, DEFAULT_LIBPQ_TABLE);
        assert!(!s.gearmand_table_given);
        assert_eq!(s.durability, Durability::Fsync);
    }
    let s = postgres(
        keys(None, Some("postgres://u:pw@h/db")),
        StoreKeys::default(),
    )
    .unwrap();
    assert_eq!(s.conninfo, "postgres://u:pw@h/db");
    assert!(!format!("{s:?}").contains("pw"), "{s:?}");
    assert!(!StoreSettings::Postgres(s).describe().contains("pw"));
    // The file names the database, the flag the kind and gearmand's table.
    let file = StoreKeys {
        libpq_conninfo: Some("host=db password=secret".into()),
        durability: Some(Durability::Normal),
        ..StoreKeys::default()
    };
    let cli = StoreKeys {
        queue_type: Some("libpq".into()),
        libpq_table: Some("gearman_q".into()),
        ..StoreKeys::default()
    };
    let s = postgres(cli, file).unwrap();
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
    assert!(resolve(keys(Some("libpq"), None), StoreKeys::default())
        .unwrap_err()
        .contains("--libpq-conninfo"));
    let cli = StoreKeys {
        queue_type: Some("libpq".into()),
        libpq_conninfo: Some("host=x".into()),
        libpq_table: Some("gearbox_jobs".into()),
        ..StoreKeys::default()
    };
    assert!(resolve(cli, StoreKeys::default()).is_err());
    let cli = StoreKeys {
        store: Some("postgres://a/b".into()),
        libpq_conninfo: Some("host=x".into()),
        ..StoreKeys::default()
    };
    assert!(resolve(cli, StoreKeys::default()).is_err());
}

#[test]
fn redis_takes_gearmands_names_and_urls() {
    let s = redis(keys(Some("redis"), None), StoreKeys::default()).unwrap();
    assert_eq!(
        (s.host.as_str(), s.port, s.password.as_deref(), s.db),
        (DEFAULT_REDIS_SERVER, DEFAULT_REDIS_PORT, None, 0)
    );
    assert_eq!(s.prefix, DEFAULT_REDIS_PREFIX);
    let cli = StoreKeys {
        queue_type: Some("redis".into()),
        redis_server: Some("cache".into()),
        redis_port: Some(6380),
        redis_password: Some("pw".into()),
        redis_prefix: Some("jobs:".into()),
        ..StoreKeys::default()
    };
    let s = redis(cli, StoreKeys::default()).unwrap();
    assert_eq!(
        (
            s.host.as_str(),
            s.port,
            s.password.as_deref(),
            s.prefix.as_str()
        ),
        ("cache", 6380, Some("pw"), "jobs:")
    );
    assert!(!format!("{s:?}").contains("pw"), "{s:?}");
    let url = |u: &str| redis(keys(None, Some(u)), StoreKeys::default()).unwrap();
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
    // A URL and a flag of the same layer that disagree.
    let cli = StoreKeys {
        store: Some("redis://a:1".into()),
        redis_port: Some(2),
        ..StoreKeys::default()
    };
    assert!(resolve(cli, StoreKeys::default())
        .unwrap_err()
        .contains("port"));
    // --durability warns: Redis's own settings decide.
    let cli = StoreKeys {
        queue_type: Some("redis".into()),
        durability: Some(Durability::Fsync),
        data_dir: Some("d".into()),
        ..StoreKeys::default()
    };
    let (_, warnings) = StoreSettings::resolve(cli, StoreKeys::default()).unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w.contains("appendonly")),
        "{warnings:?}"
    );
}

fn mysql(cli: StoreKeys, file: StoreKeys) -> Result<MysqlSettings, String> {
    match resolve(cli, file)? {
        StoreSettings::Mysql(s) => Ok(s),
        other => panic!("not mysql: {other:?}"),
    }
}

#[test]
fn mysql_takes_gearmands_names_and_urls() {
    for q in ["mysql", "MySQL", "mariadb", "libmysql"] {
        let cli = StoreKeys {
            queue_type: Some(q.into()),
            mysql_db: Some("gearman".into()),
            ..StoreKeys::default()
        };
        let s = mysql(cli, StoreKeys::default()).unwrap();
        assert_eq!(s.options.host, DEFAULT_MYSQL_HOST);
        assert_eq!(s.options.port, DEFAULT_MYSQL_PORT);
        assert_eq!(s.options.db.as_deref(), Some("gearman"));
        assert_eq!(s.gearmand_table, DEFAULT_MYSQL_TABLE);
        assert!(!s.gearmand_table_given);
    }
    // No database: an error that says which flag to give.
    let e = mysql(keys(Some("mysql"), None), StoreKeys::default()).unwrap_err();
    assert!(e.contains("--mysql-db"), "{e}");
    // gearmand's flags.
    let cli = StoreKeys {
        queue_type: Some("mysql".into()),
        mysql_host: Some("db.local".into()),
        mysql_port: Some(3307),
        mysql_user: Some("gearman".into()),
        mysql_password: Some("s3cret".into()),
        mysql_db: Some("jobs".into()),
        mysql_table: Some("old_queue".into()),
        durability: Some(Durability::Normal),
        ..StoreKeys::default()
    };
    let s = mysql(cli, StoreKeys::default()).unwrap();
    assert_eq!(
        (
            s.options.host.as_str(),
            s.options.port,
            s.options.user.as_deref(),
            s.options.password.as_deref(),
            s.options.db.as_deref()
        ),
        (
            "db.local",
            3307,
            Some("gearman"),
            Some("s3cret"),
            Some("jobs")
        )
    );
    assert_eq!(s.gearmand_table, "old_queue");
    assert!(s.gearmand_table_given);
    assert_eq!(s.durability, Durability::Normal);
    assert!(!format!("{s:?}").contains("s3cret"), "{s:?}");
    let described = StoreSettings::Mysql(s.clone()).describe();
    assert!(!described.contains("s3cret"), "{described}");
    assert!(described.contains("db.local:3307/jobs"), "{described}");
    // URLs, also mariadb://.
    for url in ["mysql://u:pw@h:3310/q", "mariadb://u:pw@h:3310/q"] {
        let s = mysql(keys(None, Some(url)), StoreKeys::default()).unwrap();
        assert_eq!(
            (
                s.options.host.as_str(),
                s.options.port,
                s.options.user.as_deref(),
                s.options.password.as_deref(),
                s.options.db.as_deref()
            ),
            ("h", 3310, Some("u"), Some("pw"), Some("q"))
        );
    }
    // The file's URL, the flags override its parts.
    let file = StoreKeys {
        store: Some("mysql://u:pw@h/q".into()),
        ..StoreKeys::default()
    };
    let cli = StoreKeys {
        mysql_host: Some("other".into()),
        mysql_password: Some("new".into()),
        ..StoreKeys::default()
    };
    let s = mysql(cli, file).unwrap();
    assert_eq!(s.options.host, "other");
    assert_eq!(s.options.password.as_deref(), Some("new"));
    assert_eq!(s.options.db.as_deref(), Some("q"));
    // A URL and a flag of the same layer that disagree; errors hide the password.
    let cli = StoreKeys {
        store: Some("mysql://u:pw@h/q".into()),
        mysql_port: Some(1),
        ..StoreKeys::default()
    };
    assert!(resolve(cli, StoreKeys::default())
        .unwrap_err()
        .contains("port"));
    let e = resolve(
        keys(Some("libpq"), Some("mysql://u:secret@h/q")),
        StoreKeys::default(),
    )
    .unwrap_err();
    assert!(e.contains("disagree") && !e.contains("secret"), "{e}");
    // Our own table cannot be gearmand's.
    let cli = StoreKeys {
        queue_type: Some("mysql".into()),
        mysql_db: Some("q".into()),
        mysql_table: Some("gearbox_jobs".into()),
        ..StoreKeys::default()
    };
    assert!(resolve(cli, StoreKeys::default()).is_err());
    // MySQL flags warn with another queue.
    let cli = StoreKeys {
        queue_type: Some("builtin".into()),
        mysql_host: Some("h".into()),
        ..StoreKeys::default()
    };
    let (_, warnings) = StoreSettings::resolve(cli, StoreKeys::default()).unwrap();
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

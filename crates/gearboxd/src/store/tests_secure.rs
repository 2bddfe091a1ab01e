//! Unit tests of the secure store settings: TLS keys, passwords from a file, URLs with
//! special characters, redaction.

use std::path::PathBuf;

use clap::Parser;
use gearbox_store::tls::TlsFiles;

use super::parse::{redact_conninfo, redact_url};
use super::*;

fn cli(flags: &[&str]) -> StoreSection {
    let argv = std::iter::once("gearboxd").chain(flags.iter().copied());
    crate::Args::try_parse_from(argv).unwrap().options.store
}

fn file(text: &str) -> StoreSection {
    crate::config_file::parse(text).unwrap().store
}

fn resolve(cli: StoreSection, file: StoreSection) -> Result<StoreSettings, String> {
    StoreSettings::resolve(&cli, &file)
        .map(|(s, _)| s)
        .map_err(|e| e.to_string())
}

fn redis(flags: &[&str]) -> RedisSettings {
    match resolve(cli(flags), StoreSection::default()).unwrap() {
        StoreSettings::Redis(s) => s,
        other => panic!("not redis: {other:?}"),
    }
}

fn mysql(flags: &[&str]) -> MysqlSettings {
    match resolve(cli(flags), StoreSection::default()).unwrap() {
        StoreSettings::Mysql(s) => s,
        other => panic!("not mysql: {other:?}"),
    }
}

#[test]
fn redis_tls_from_the_url_the_switch_or_a_file() {
    assert_eq!(redis(&["--store", "redis://h"]).tls, None);
    let s = redis(&["--store", "rediss://h:6380/2"]);
    assert_eq!(s.tls, Some(TlsFiles::default()));
    assert_eq!(s.location(), "rediss://h:6380/2");
    assert!(StoreSettings::Redis(s)
        .describe()
        .contains("rediss://h:6380/2"));
    assert_eq!(
        redis(&["-q", "redis", "--redis-tls"]).tls,
        Some(TlsFiles::default())
    );
    let s = redis(&[
        "-q",
        "redis",
        "--redis-ca-file",
        "/ca.pem",
        "--redis-cert-file",
        "/c.pem",
        "--redis-key-file",
        "/c.key",
    ]);
    let files = TlsFiles {
        ca: Some(PathBuf::from("/ca.pem")),
        cert: Some(PathBuf::from("/c.pem")),
        key: Some(PathBuf::from("/c.key")),
    };
    assert_eq!(s.tls, Some(files.clone()));
    // Config-file keys, the URL from the command line.
    let f = file(
        "redis_ca_file = \"/ca.pem\"\nredis_cert_file = \"/c.pem\"\nredis_key_file = \"/c.key\"\n",
    );
    match resolve(cli(&["--store", "rediss://h"]), f).unwrap() {
        StoreSettings::Redis(s) => assert_eq!(s.tls, Some(files)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn mysql_ssl_mode_and_files() {
    let base = ["-q", "mysql", "--mysql-db", "d"];
    let s = mysql(&base);
    assert_eq!(s.ssl_mode, gearbox_store::tls::MysqlSslMode::Disabled);
    assert_eq!(s.location(), "mysql://localhost:3306/d");
    let s = mysql(&[&base[..], &["--mysql-ssl-mode", "required"]].concat());
    assert_eq!(s.ssl_mode, gearbox_store::tls::MysqlSslMode::Required);
    assert_eq!(s.location(), "mysql://localhost:3306/d?ssl-mode=REQUIRED");
    // A file without a mode: the strictest.
    let s = mysql(&[&base[..], &["--mysql-ssl-ca", "/ca.pem"]].concat());
    assert_eq!(s.ssl_mode, gearbox_store::tls::MysqlSslMode::VerifyIdentity);
    assert_eq!(s.ssl.ca, Some(PathBuf::from("/ca.pem")));
    let f = file(
        "mysql_ssl_mode = \"VERIFY_CA\"\nmysql_ssl_cert = \"/c.pem\"\nmysql_ssl_key = \"/c.key\"\n",
    );
    match resolve(cli(&base), f).unwrap() {
        StoreSettings::Mysql(s) => {
            assert_eq!(s.ssl_mode, gearbox_store::tls::MysqlSslMode::VerifyCa);
            assert_eq!(s.ssl.key, Some(PathBuf::from("/c.key")));
        }
        other => panic!("{other:?}"),
    }
    let argv = ["gearboxd", "-q", "mysql", "--mysql-ssl-mode", "PREFERRED"];
    let e = crate::Args::try_parse_from(argv).unwrap_err().to_string();
    assert!(e.contains("PREFERRED is not offered"), "{e}");
}

#[test]
fn urls_with_special_characters_in_user_and_password() {
    // `/`, `@`, `%` and `:` percent-encoded in the password (and `@` in the user).
    let s = redis(&["--store", "rediss://:p%2Fa%40b%25c%3Ad@h:1/3"]);
    assert_eq!(s.password.as_deref(), Some("p/a@b%c:d"));
    assert_eq!((s.host.as_str(), s.port, s.db), ("h", 1, 3));
    let s = redis(&["--store", "redis://app%40x:s%2F1@h"]);
    assert_eq!(
        (s.username.as_deref(), s.password.as_deref()),
        (Some("app@x"), Some("s/1"))
    );
    let s = mysql(&["--store", "mysql://us%40r:p%2Fa%40b%25c@[::1]:3307/d%2Fb"]);
    assert_eq!(s.user.as_deref(), Some("us@r"));
    assert_eq!(s.password.as_deref(), Some("p/a@b%c"));
    assert_eq!(
        (s.host.as_str(), s.port, s.db.as_str()),
        ("::1", 3307, "d/b")
    );
    // Never shown: not in Debug, describe or the location.
    let shown = format!("{s:?} {}", StoreSettings::Mysql(s.clone()).describe());
    assert!(!shown.contains("p/a") && !shown.contains("p%2F"), "{shown}");
}

#[test]
fn urls_and_conninfo_are_redacted() {
    assert_eq!(
        redact_url("postgres://u:p%40ss%2F@h:5/db?sslmode=require"),
        "postgres://u:***@h:5/db?sslmode=require"
    );
    assert_eq!(redact_url("rediss://secret@h:1/0"), "rediss://***@h:1/0");
    assert_eq!(
        redact_url("postgres://u@h/db?password=x&sslmode=verify-full"),
        "postgres://u@h/db?password=***&sslmode=verify-full"
    );
    assert!(!redact_url("mysql://u:a@b@h/db").contains("a@b"));
    assert_eq!(
        redact_conninfo("host=h password='a b\\'c' user=u"),
        "host=h password=*** user=u"
    );
    assert_eq!(
        redact_conninfo("host=h PASSWORD = x sslmode=verify-full"),
        "host=h password=*** sslmode=verify-full"
    );
    assert_eq!(
        redact_conninfo("host=h mypassword=x"),
        "host=h mypassword=x"
    );
}

#[test]
fn the_password_file_comes_after_the_url_and_keys() {
    let dir = std::env::temp_dir().join(format!("gearbox-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pw");
    std::fs::write(&path, "s3cr/t@%\n").unwrap();
    let p = path.to_str().unwrap();
    let s = redis(&["-q", "redis", "--store-password-file", p]);
    assert_eq!(s.password.as_deref(), Some("s3cr/t@%"));
    let s = redis(&["--store", "redis://:url@h", "--store-password-file", p]);
    assert_eq!(s.password.as_deref(), Some("url"));
    let s = mysql(&["--mysql-db", "d", "-q", "mysql", "--store-password-file", p]);
    assert_eq!(s.password.as_deref(), Some("s3cr/t@%"));
    match resolve(
        cli(&["--store", "postgres://u@h/db", "--store-password-file", p]),
        StoreSection::default(),
    )
    .unwrap()
    {
        StoreSettings::Postgres(s) => {
            assert_eq!(s.password.as_deref(), Some("s3cr/t@%"));
            assert!(!format!("{s:?}").contains("s3cr"), "{s:?}");
        }
        other => panic!("{other:?}"),
    }
    let missing = dir.join("missing");
    let e = resolve(
        cli(&[
            "-q",
            "redis",
            "--store-password-file",
            missing.to_str().unwrap(),
        ]),
        StoreSection::default(),
    )
    .unwrap_err();
    assert!(
        e.contains("cannot read --store-password-file") && e.contains("missing"),
        "{e}"
    );
    std::fs::write(&path, "\n").unwrap();
    let e = resolve(
        cli(&["-q", "redis", "--store-password-file", p]),
        StoreSection::default(),
    )
    .unwrap_err();
    assert!(e.contains("is empty"), "{e}");
    let (_, warnings) = StoreSettings::resolve(
        &cli(&["-q", "builtin", "--store-password-file", p]),
        &StoreSection::default(),
    )
    .unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("--store-password-file has no effect")),
        "{warnings:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_password_on_the_command_line_warns() {
    let warns = |flags: &[&str]| {
        let (_, warnings) = StoreSettings::resolve(&cli(flags), &StoreSection::default()).unwrap();
        warnings
            .iter()
            .any(|w| w.contains("password is given on the command line"))
    };
    assert!(warns(&["--store", "redis://:pw@h"]));
    assert!(warns(&["--store", "postgres://u:pw@h/db"]));
    assert!(warns(&[
        "-q",
        "libpq",
        "--libpq-conninfo",
        "host=h password=pw"
    ]));
    assert!(warns(&[
        "-q",
        "mysql",
        "--mysql-db",
        "d",
        "--mysql-password",
        "pw"
    ]));
    assert!(warns(&["-q", "redis", "--redis-password", "pw"]));
    assert!(!warns(&[
        "--store",
        "postgres://u@h/db?sslmode=verify-full"
    ]));
    assert!(!warns(&["-q", "redis"]));
    // The config file is not the process list.
    let f = file("redis_password = \"pw\"\n");
    let (_, warnings) = StoreSettings::resolve(&cli(&["-q", "redis"]), &f).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
}

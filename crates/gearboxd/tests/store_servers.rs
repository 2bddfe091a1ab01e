//! The real binary with the PostgreSQL (`-q libpq`), Redis (`-q redis`) and MySQL/MariaDB
//! (`-q mysql`) queues, each against a throwaway server: background jobs survive a restart of
//! gearboxd with their handles and priorities, gearmand's libpq and MySQL tables are
//! imported, and a server that cannot be reached stops the start-up. Missing server binaries
//! print SKIPPED (a failure with CI=true).

mod support;

use gearbox_testkit::servers::free_port;
use gearbox_testkit::servers::mariadb::{self, MariaDb};
use gearbox_testkit::servers::postgres::PgServer;
use gearbox_testkit::servers::redis::RedisServer;
use mysql_async::prelude::Queryable;
use support::jobs::{restart_keeps_background_jobs, run_uniques, show_jobs, stop};
use support::{start_fails as fails, Gearboxd};

fn start(store: &[&str]) -> Gearboxd {
    let mut args = vec!["-p", "0", "-L", "127.0.0.1", "--job-handle-prefix", "H:srv"];
    args.extend_from_slice(store);
    Gearboxd::start(&args)
}

/// [`restart_keeps_background_jobs`] with gearboxd started on store flags `first`, then
/// `second`.
fn restarts(first: &[&str], second: &[&str]) {
    restart_keeps_background_jobs(&|| start(first), &|| start(second));
}

#[test]
fn postgres_background_jobs_survive_a_restart_with_their_handles() {
    let Some(pg) = PgServer::start("postgres_background_jobs_survive_a_restart_with_their_handles")
    else {
        return;
    };
    let conninfo = pg.conninfo();
    let url = pg.url();
    restarts(
        &["-q", "libpq", "--libpq-conninfo", &conninfo],
        &["--store", &url, "--durability", "normal"],
    );
    assert_eq!(pg.query("SELECT count(*) FROM gearbox_jobs"), ["0"]);
}

#[test]
fn redis_background_jobs_survive_a_restart_with_their_handles() {
    let Some(server) =
        RedisServer::start("redis_background_jobs_survive_a_restart_with_their_handles")
    else {
        return;
    };
    let port = server.port().to_string();
    let url = format!("redis://127.0.0.1:{port}/0");
    restarts(
        &[
            "-q",
            "redis",
            "--redis-server",
            "127.0.0.1",
            "--redis-port",
            &port,
            "--redis-prefix",
            "gbtest:",
        ],
        &["--store", &url, "--redis-prefix", "gbtest:"],
    );
}

#[test]
fn gearmands_libpq_queue_table_is_imported() {
    let Some(pg) = PgServer::start("gearmands_libpq_queue_table_is_imported") else {
        return;
    };
    pg.query(
        "CREATE TABLE queue (unique_key VARCHAR(64), function_name VARCHAR(255), \
         priority INTEGER, data BYTEA, when_to_run INTEGER, \
         unique (unique_key, function_name)); \
         INSERT INTO queue VALUES ('g-1', 'resize', 0, 'from gearmand', 0); \
         INSERT INTO queue VALUES ('g-2', 'resize', 1, 'second', 0)",
    );
    let conninfo = pg.conninfo();
    let server = start(&["-q", "libpq", "--libpq-conninfo", &conninfo]);
    assert_eq!(show_jobs(&server).len(), 2);
    assert_eq!(
        run_uniques(&server, "resize"),
        [
            ("g-1".to_owned(), b"from gearmand".to_vec()),
            ("g-2".to_owned(), b"second".to_vec())
        ]
    );
    stop(server);
    assert_eq!(pg.query("SELECT count(*) FROM queue"), ["0"]);
}

/// `-q <queue> --mysql-*` flags for the throwaway MariaDB on `port`.
fn mysql_flags<'a>(queue: &'a str, port: &'a str) -> [&'a str; 10] {
    [
        "-q",
        queue,
        "--mysql-host",
        "127.0.0.1",
        "--mysql-port",
        port,
        "--mysql-user",
        "root",
        "--mysql-db",
        mariadb::DB,
    ]
}

/// Runs `sql` on the test database and returns the first column of each row.
fn mysql_query(db: &MariaDb, sql: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = db.conn().await;
        let rows: Vec<mysql_async::Row> = conn.query(sql).await.unwrap();
        let out = rows
            .into_iter()
            .map(|mut r| r.take::<Option<String>, _>(0).flatten().unwrap_or_default())
            .collect();
        conn.disconnect().await.unwrap();
        out
    })
}

#[test]
fn mysql_background_jobs_survive_a_restart_with_their_handles() {
    let Some(db) = MariaDb::start("mysql_background_jobs_survive_a_restart_with_their_handles")
    else {
        return;
    };
    let port = db.port.to_string();
    let url = db.url();
    restarts(
        &mysql_flags("mysql", &port),
        &["--store", &url, "--durability", "normal"],
    );
    assert_eq!(mysql_query(&db, "SELECT count(*) FROM gearbox_jobs"), ["0"]);
}

#[test]
fn gearmands_mysql_queue_table_is_imported() {
    let Some(db) = MariaDb::start("gearmands_mysql_queue_table_is_imported") else {
        return;
    };
    // gearmand's libmysql schema, under its default name and under another one.
    for table in ["gearman_queue", "old_queue"] {
        mysql_query(
            &db,
            &format!(
                "CREATE TABLE {table} (unique_key VARCHAR(64), function_name VARCHAR(255), \
                 priority INT, data LONGBLOB, when_to_run INT, \
                 UNIQUE KEY (unique_key, function_name))"
            ),
        );
        mysql_query(
            &db,
            &format!(
                "INSERT INTO {table} VALUES ('{table}-1', 'resize', 0, 'from gearmand', 0), \
                 ('{table}-2', 'resize', 1, 'second', 0)"
            ),
        );
    }
    let port = db.port.to_string();
    let base = mysql_flags("mariadb", &port);
    let server = start(&base);
    assert_eq!(show_jobs(&server).len(), 2);
    stop(server);
    assert_eq!(
        mysql_query(&db, "SELECT count(*) FROM gearman_queue"),
        ["0"]
    );
    let mut args = base.to_vec();
    args.extend(["--mysql-table", "old_queue"]);
    let server = start(&args);
    assert_eq!(show_jobs(&server).len(), 4);
    assert_eq!(
        run_uniques(&server, "resize"),
        [
            ("gearman_queue-1".to_owned(), b"from gearmand".to_vec()),
            ("gearman_queue-2".to_owned(), b"second".to_vec()),
            ("old_queue-1".to_owned(), b"from gearmand".to_vec()),
            ("old_queue-2".to_owned(), b"second".to_vec()),
        ]
    );
    stop(server);
    assert_eq!(mysql_query(&db, "SELECT count(*) FROM old_queue"), ["0"]);
    assert_eq!(mysql_query(&db, "SELECT count(*) FROM gearbox_jobs"), ["0"]);
}

#[test]
fn a_server_that_cannot_be_reached_stops_the_start_up() {
    let port = free_port().to_string();
    let conninfo = format!(
        "host=127.0.0.1 port={port} user=nobody password=hunter2 dbname=x connect_timeout=2"
    );
    let err = fails(&["-q", "libpq", "--libpq-conninfo", &conninfo]);
    assert!(
        err.contains("cannot open the PostgreSQL job store") && err.contains(&port),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "the password is shown: {err}");
    let err = fails(&["-q", "redis", "--redis-port", &port]);
    assert!(
        err.contains("cannot open the Redis job store") && err.contains(&port),
        "{err}"
    );
    let err = fails(&["--store", &format!("redis://:hunter2@127.0.0.1:{port}")]);
    assert!(!err.contains("hunter2"), "the password is shown: {err}");
    let err = fails(&[
        "-q",
        "mysql",
        "--mysql-host",
        "127.0.0.1",
        "--mysql-port",
        &port,
        "--mysql-user",
        "gearman",
        "--mysql-password",
        "hunter2",
        "--mysql-db",
        "gearman",
    ]);
    assert!(
        err.contains("cannot open the MySQL/MariaDB job store") && err.contains(&port),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "the password is shown: {err}");
    let err = fails(&[
        "--store",
        &format!("mysql://gearman:hunter2@127.0.0.1:{port}/gearman"),
    ]);
    assert!(
        err.contains("cannot open the MySQL/MariaDB job store") && err.contains(&port),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "the password is shown: {err}");
    // No database named at all.
    let err = fails(&["-q", "libpq"]);
    assert!(err.contains("--libpq-conninfo"), "{err}");
    let err = fails(&["-q", "mysql"]);
    assert!(err.contains("--mysql-db"), "{err}");
}

//! The real binary with the PostgreSQL (`-q libpq`), Redis (`-q redis`) and MySQL/MariaDB
//! (`-q mysql`) queues, each against a throwaway server: background jobs survive a restart of
//! gearboxd with their handles and priorities, gearmand's libpq and MySQL tables are
//! imported, and a server that cannot be reached stops the start-up. Missing server binaries
//! print SKIPPED (a failure with CI=true).

mod support;

use std::collections::BTreeSet;

use gearbox_testkit::servers::free_port;
use gearbox_testkit::servers::mariadb::{self, MariaDb};
use gearbox_testkit::servers::postgres::PgServer;
use gearbox_testkit::servers::redis::RedisServer;
use mysql_async::prelude::Queryable;
use support::jobs::{run_all, show_jobs, stop, submit, SUBMIT_JOB_BG, SUBMIT_JOB_HIGH_BG};
use support::{run_to_exit, Gearboxd};

fn start(store: &[&str]) -> Gearboxd {
    let mut args = vec!["-p", "0", "-L", "127.0.0.1", "--job-handle-prefix", "H:srv"];
    args.extend_from_slice(store);
    Gearboxd::start(&args)
}

/// Submits jobs, restarts gearboxd with `second` (the same store, maybe named another way),
/// checks the handles came back and runs them, then restarts once more and finds nothing.
fn restart_keeps_background_jobs(first: &[&str], second: &[&str]) {
    let server = start(first);
    let mut client = server.connect();
    let mut submitted = Vec::new();
    for i in 0..5 {
        let data = format!("payload {i}\0with a NUL").into_bytes();
        let handle = submit(
            &mut client,
            SUBMIT_JOB_BG,
            "resize",
            &format!("u{i}"),
            &data,
        );
        submitted.push((handle, format!("u{i}"), data));
    }
    let urgent = submit(
        &mut client,
        SUBMIT_JOB_HIGH_BG,
        "resize",
        "urgent",
        b"first",
    );
    assert_eq!(
        submit(&mut client, SUBMIT_JOB_BG, "resize", "u0", b"ignored"),
        submitted[0].0,
        "the same unique id is coalesced"
    );
    let before = show_jobs(&server);
    assert_eq!(before.len(), 6, "{before:?}");
    stop(server);

    let server = start(second);
    assert_eq!(
        show_jobs(&server),
        before,
        "the same handles after the restart"
    );
    let mut client = server.connect();
    let new = submit(&mut client, SUBMIT_JOB_BG, "other", "", b"new");
    assert!(!before.contains(&new), "{new} reused");
    let ran = run_all(&server, "resize");
    assert_eq!(ran.len(), 6, "{ran:?}");
    assert_eq!(ran[0].handle, urgent, "the high-priority job runs first");
    for (handle, unique, data) in &submitted {
        let job = ran
            .iter()
            .find(|a| &a.handle == handle)
            .unwrap_or_else(|| panic!("{handle} not run: {ran:?}"));
        assert_eq!(
            (&job.function[..], &job.unique, &job.data),
            ("resize", unique, data)
        );
    }
    assert_eq!(run_all(&server, "other").len(), 1);
    stop(server);

    let server = start(first);
    assert_eq!(
        show_jobs(&server),
        BTreeSet::new(),
        "finished jobs were removed"
    );
    stop(server);
}

#[test]
fn postgres_background_jobs_survive_a_restart_with_their_handles() {
    let Some(pg) = PgServer::start("postgres_background_jobs_survive_a_restart_with_their_handles")
    else {
        return;
    };
    let conninfo = pg.conninfo();
    let url = pg.url();
    restart_keeps_background_jobs(
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
    restart_keeps_background_jobs(
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
    let mut ran: Vec<(String, Vec<u8>)> = run_all(&server, "resize")
        .into_iter()
        .map(|a| (a.unique, a.data))
        .collect();
    ran.sort();
    assert_eq!(
        ran,
        [
            ("g-1".to_owned(), b"from gearmand".to_vec()),
            ("g-2".to_owned(), b"second".to_vec())
        ]
    );
    stop(server);
    assert_eq!(pg.query("SELECT count(*) FROM queue"), ["0"]);
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
    restart_keeps_background_jobs(
        &[
            "-q",
            "mysql",
            "--mysql-host",
            "127.0.0.1",
            "--mysql-port",
            &port,
            "--mysql-user",
            "root",
            "--mysql-db",
            mariadb::DB,
        ],
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
    let base = [
        "-q",
        "mariadb",
        "--mysql-host",
        "127.0.0.1",
        "--mysql-port",
        &port,
        "--mysql-user",
        "root",
        "--mysql-db",
        mariadb::DB,
    ];
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
    let mut ran: Vec<(String, Vec<u8>)> = run_all(&server, "resize")
        .into_iter()
        .map(|a| (a.unique, a.data))
        .collect();
    ran.sort();
    assert_eq!(
        ran,
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

/// Runs gearboxd expecting a start-up failure; returns its standard error.
fn fails(args: &[&str]) -> String {
    let mut all = vec!["-p", "0", "-L", "127.0.0.1"];
    all.extend_from_slice(args);
    let out = run_to_exit(&all, &[]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(err.starts_with("gearboxd: error: "), "{err}");
    assert!(
        !err.contains("listening on"),
        "bound without its store: {err}"
    );
    err
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

//! The real binary with the SQLite queue: background jobs survive a restart with their
//! handles and priorities, finished jobs leave the store, gearmand's queue table is imported,
//! and a store that cannot be opened stops the start-up with a message naming it.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use gearbox_store::sql::DEFAULT_TABLE;
use gearboxd::store::DEFAULT_LIBSQLITE3_TABLE as DEFAULT_GEARMAND_TABLE;
use support::jobs::SUBMIT_JOB_BG;
use support::jobs::{restart_keeps_background_jobs, run_all, show_jobs, stop, submit};
use support::{start_fails as fails, Gearboxd, TempDir};

fn start(extra: &[&str]) -> Gearboxd {
    let mut args = vec!["-p", "0", "-L", "127.0.0.1"];
    args.extend_from_slice(extra);
    Gearboxd::start(&args)
}

fn start_sqlite(dir: &Path, extra: &[&str]) -> Gearboxd {
    let mut args = vec!["-q", "libsqlite3", "--data-dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    start(&args)
}

/// Rows left in gearboxd's table (read with the server stopped).
fn stored_rows(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(&format!("SELECT count(*) FROM {DEFAULT_TABLE}"), [], |r| {
        r.get(0)
    })
    .unwrap()
}

#[test]
fn background_jobs_survive_a_restart_with_their_handles_and_priorities() {
    let dir = TempDir::new();
    let data_dir = dir.join("data");
    let server = || start_sqlite(&data_dir, &["--job-handle-prefix", "H:store"]);
    restart_keeps_background_jobs(&server, &server);
    assert!(data_dir.join("gearbox.sqlite").is_file());
    // Completed jobs were removed from the store before the stop finished.
    assert_eq!(stored_rows(&data_dir.join("gearbox.sqlite")), 0);
}

#[test]
fn the_config_file_and_a_store_url_name_the_same_store() {
    let dir = TempDir::new();
    let data_dir = dir.join("nested/data/dir");
    let config = dir.join("gearboxd.toml");
    std::fs::write(
        &config,
        format!(
            "queue_type = \"libsqlite3\"\ndata_dir = {:?}\ndurability = \"normal\"\n",
            data_dir.to_str().unwrap()
        ),
    )
    .unwrap();
    let server = start(&["--config", config.to_str().unwrap()]);
    let handle = submit(&mut server.connect(), SUBMIT_JOB_BG, "f", "once", b"x");
    stop(server);
    // The nested data directory was created; the URL form opens the same file.
    let url = format!("sqlite://{}", data_dir.join("gearbox.sqlite").display());
    let server = start(&["--store", &url]);
    assert_eq!(show_jobs(&server), BTreeSet::from([handle]));
    stop(server);
    // Without a store the same binary keeps nothing.
    let server = start(&["--store", "memory:"]);
    assert_eq!(show_jobs(&server), BTreeSet::new());
    stop(server);
}

/// Creates gearmand's libsqlite3 queue table `table` in `db` and queues `jobs` in it:
/// (unique, function, priority, data).
fn gearmand_queue(db: &Path, table: &str, jobs: &[(&str, &str, i64, &[u8])]) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE {table} (unique_key TEXT, function_name TEXT, priority INTEGER, \
         data BLOB, when_to_run INTEGER, PRIMARY KEY (unique_key, function_name))"
    ))
    .unwrap();
    for (unique, function, priority, data) in jobs {
        conn.execute(
            &format!("INSERT INTO {table} VALUES (?1, ?2, ?3, ?4, 0)"),
            rusqlite::params![unique, function, priority, data],
        )
        .unwrap();
    }
}

fn gearmand_rows(db: &Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn gearmands_queue_table_is_imported_and_served() {
    let dir = TempDir::new();
    let db = dir.join("gearmand.sqlite3");
    let jobs: [(&str, &str, i64, &[u8]); 3] = [
        ("img-1", "resize", 1, b"\x00binary\xff"),
        ("img-2", "resize", 0, b"urgent"),
        ("mail-1", "email", 2, b"to: a@b"),
    ];
    gearmand_queue(&db, DEFAULT_GEARMAND_TABLE, &jobs);
    let db_arg = db.to_str().unwrap();
    // gearmand's own flags: the default table name is gearmand's.
    let server = start(&[
        "-q",
        "libsqlite3",
        "--libsqlite3-db",
        db_arg,
        "--job-handle-prefix",
        "H:imp",
    ]);
    let line = server.wait_for_stderr(|l| l.contains("imported"));
    assert!(
        line.contains("imported 3 jobs") && line.contains(DEFAULT_GEARMAND_TABLE),
        "{line}"
    );
    assert_eq!(
        show_jobs(&server),
        BTreeSet::from(["H:imp:1".into(), "H:imp:2".into(), "H:imp:3".into()])
    );
    let mut ran = run_all(&server, "resize");
    assert_eq!(ran[0].unique, "img-2", "priority kept: {ran:?}");
    ran.extend(run_all(&server, "email"));
    let got: BTreeSet<_> = ran
        .iter()
        .map(|a| (a.unique.as_str(), a.function.as_str(), a.data.clone()))
        .collect();
    let want: BTreeSet<_> = jobs
        .iter()
        .map(|(u, f, _, d)| (*u, *f, d.to_vec()))
        .collect();
    assert_eq!(got, want);
    stop(server);
    assert_eq!(
        gearmand_rows(&db, DEFAULT_GEARMAND_TABLE),
        0,
        "moved, not copied"
    );
    assert_eq!(stored_rows(&db), 0);
}

#[test]
fn imported_handles_do_not_collide_with_stored_ones() {
    let dir = TempDir::new();
    let db = dir.join("queue.sqlite");
    let db_arg = db.to_str().unwrap();
    let args = [
        "-q",
        "libsqlite3",
        "--libsqlite3-db",
        db_arg,
        "--libsqlite3-table",
        "legacy_queue",
        "--job-handle-prefix",
        "H:mix",
    ];
    let server = start(&args);
    let mut client = server.connect();
    let stored: Vec<String> = (0..2)
        .map(|i| submit(&mut client, SUBMIT_JOB_BG, "f", &format!("s{i}"), b"ours"))
        .collect();
    assert_eq!(stored, ["H:mix:1", "H:mix:2"]);
    stop(server);

    gearmand_queue(
        &db,
        "legacy_queue",
        &[("g0", "f", 1, b"theirs"), ("g1", "f", 1, b"theirs")],
    );
    let server = start(&args);
    server.wait_for_stderr(|l| l.contains("imported 2 jobs") && l.contains("legacy_queue"));
    let handles = show_jobs(&server);
    assert_eq!(
        handles,
        BTreeSet::from_iter(["H:mix:1", "H:mix:2", "H:mix:3", "H:mix:4"].map(String::from))
    );
    let new = submit(&mut server.connect(), SUBMIT_JOB_BG, "f", "n", b"new");
    assert_eq!(new, "H:mix:5");
    let ran = run_all(&server, "f");
    assert_eq!(ran.len(), 5, "{ran:?}");
    let from_gearmand: Vec<_> = ran.iter().filter(|a| a.data == b"theirs").collect();
    assert_eq!(from_gearmand.len(), 2, "{ran:?}");
    stop(server);
    assert_eq!(gearmand_rows(&db, "legacy_queue"), 0);

    // Nothing left to import, nothing left stored.
    let server = start(&args);
    assert_eq!(show_jobs(&server), BTreeSet::new());
    stop(server);
}

#[test]
fn a_store_that_cannot_be_opened_stops_the_start_up() {
    let dir = TempDir::new();
    // A directory where the database file should be.
    let data_dir = dir.join("data");
    std::fs::create_dir_all(data_dir.join("gearbox.sqlite")).unwrap();
    let err = fails(&["-q", "libsqlite3", "--data-dir", data_dir.to_str().unwrap()]);
    let file = data_dir.join("gearbox.sqlite");
    assert!(err.contains(file.to_str().unwrap()), "{err}");
    let url = format!("sqlite://{}", file.display());
    let err = fails(&["--store", &url]);
    assert!(err.contains(file.to_str().unwrap()), "{err}");

    // A data directory that cannot be created (a file is in the way).
    let blocker = dir.join("a-file");
    std::fs::write(&blocker, "x").unwrap();
    let below = blocker.join("data");
    let err = fails(&["-q", "sqlite", "--data-dir", below.to_str().unwrap()]);
    assert!(
        err.contains("cannot create data directory") && err.contains(below.to_str().unwrap()),
        "{err}"
    );

    // A table named as gearmand's that is not gearmand's.
    let db = dir.join("other.sqlite");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE mine (id INTEGER)")
        .unwrap();
    let err = fails(&[
        "-q",
        "libsqlite3",
        "--libsqlite3-db",
        db.to_str().unwrap(),
        "--libsqlite3-table",
        "mine",
    ]);
    assert!(
        err.contains("`mine`")
            && err.contains(db.to_str().unwrap())
            && err.contains("not a gearmand queue table"),
        "{err}"
    );

    // A read-only data directory (meaningless for root, who may write anyway).
    let ro = dir.join("read-only");
    std::fs::create_dir(&ro).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(ro.join("probe"), "x").is_ok() {
        eprintln!("SKIPPED: read-only directory case: this user may write to a 0555 directory");
    } else {
        let err = fails(&["-q", "libsqlite3", "--data-dir", ro.to_str().unwrap()]);
        assert!(err.contains(ro.to_str().unwrap()), "{err}");
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn one_store_serves_one_gearboxd_at_a_time() {
    let dir = TempDir::new();
    let data_dir = dir.join("data");
    let mut first = start_sqlite(&data_dir, &[]);
    let handle = submit(&mut first.connect(), SUBMIT_JOB_BG, "f", "", b"x");
    let err = fails(&["-q", "libsqlite3", "--data-dir", data_dir.to_str().unwrap()]);
    let file = data_dir.join("gearbox.sqlite");
    assert!(
        err.contains(file.to_str().unwrap())
            && err.contains(&format!("in use by another gearboxd (pid {})", first.pid())),
        "{err}"
    );
    // The first one is unaffected; once it is gone (even killed), the store is free again.
    assert_eq!(show_jobs(&first), BTreeSet::from([handle.clone()]));
    first.signal(libc::SIGKILL);
    first.wait_exit();
    let second = start_sqlite(&data_dir, &[]);
    assert_eq!(show_jobs(&second), BTreeSet::from([handle]));
    stop(second);
}

#[test]
fn sqlite_in_the_data_dir_is_the_default() {
    // No -q, no --store: SQLite in ./gearbox-data (here a directory of the test's own),
    // created at start-up; background jobs survive a restart with their handles.
    let dir = TempDir::new();
    let args = ["-p", "0", "-L", "127.0.0.1", "--job-handle-prefix", "H:def"];
    let server = Gearboxd::start_in(dir.path(), &args);
    let handle = submit(&mut server.connect(), SUBMIT_JOB_BG, "f", "", b"kept");
    stop(server);
    let db = dir.join("gearbox-data").join("gearbox.sqlite");
    assert!(db.is_file(), "{} missing", db.display());
    assert_eq!(stored_rows(&db), 1);
    let server = Gearboxd::start_in(dir.path(), &args);
    assert_eq!(show_jobs(&server), BTreeSet::from([handle.clone()]));
    let done = run_all(&server, "f");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].handle, handle);
    assert_eq!(done[0].data, b"kept");
    stop(server);
    assert_eq!(stored_rows(&db), 0);

    // --data-dir alone moves it.
    let data_dir = dir.join("elsewhere");
    let mut args = args.to_vec();
    args.extend(["--data-dir", data_dir.to_str().unwrap()]);
    let server = Gearboxd::start_in(dir.path(), &args);
    submit(&mut server.connect(), SUBMIT_JOB_BG, "f", "", b"x");
    stop(server);
    assert_eq!(stored_rows(&data_dir.join("gearbox.sqlite")), 1);
}

#[test]
fn builtin_keeps_nothing() {
    let dir = TempDir::new();
    let server = start(&["-q", "builtin"]);
    submit(&mut server.connect(), SUBMIT_JOB_BG, "f", "", b"x");
    stop(server);
    let server = start(&["-q", "builtin"]);
    assert_eq!(show_jobs(&server), BTreeSet::new());
    // The SQLite-only flags have no effect and say so; no data directory appears.
    let data_dir = dir.join("unused");
    let mut quiet = start(&["-q", "builtin", "--data-dir", data_dir.to_str().unwrap()]);
    quiet.wait_for_stderr(|l| l.contains("--data-dir has no effect"));
    assert!(!data_dir.exists());
    quiet.signal(libc::SIGTERM);
    assert!(quiet.wait_exit().success());
    stop(server);
}

//! docs/migrating-from-gearmand.md, run against the real gearmand: jobs the C++ gearmand
//! queued in its SQLite queue move into gearboxd (gearmand's own flags), and back again with
//! the page's rollback SQL, after which gearmand hands every one of them to a worker.

mod support;

use gearbox_testkit::gearmand::Gearmand;
use support::jobs::{
    run_all_on, status, stop, submit, Assigned, SUBMIT_JOB_BG, SUBMIT_JOB_HIGH_BG,
};
use support::{Conn, Gearboxd, TempDir};

/// The SQL block of the migration page that starts with `-- rollback: sqlite`.
fn rollback_sql() -> String {
    let page = include_str!("../../../docs/migrating-from-gearmand.md");
    let start = page
        .find("-- rollback: sqlite")
        .expect("the page has the SQLite rollback");
    let block = &page[start..];
    block[..block.find("```").unwrap()].to_owned()
}

fn jobs(ran: Vec<Assigned>) -> Vec<(String, Vec<u8>)> {
    let mut jobs: Vec<_> = ran.into_iter().map(|a| (a.unique, a.data)).collect();
    jobs.sort();
    jobs
}

/// The C++ gearmand on a free loopback port with its SQLite queue in `db_arg`; `None` (after
/// saying why) where it is not installed.
async fn start_gearmand(db_arg: &str) -> Option<Gearmand> {
    Gearmand::start_with(&["-q", "libsqlite3", db_arg]).await
}

#[tokio::test]
async fn a_gearmand_sqlite_queue_moves_to_gearboxd_and_back() {
    let dir = TempDir::new();
    let db = dir.join("queue.sqlite3");
    let db_arg = format!("--libsqlite3-db={}", db.display());

    // gearmand queues three background jobs in its SQLite queue (a commit per job), then is
    // killed (dropping it kills and reaps the process).
    let Some(gearmand) = start_gearmand(&db_arg).await else {
        return;
    };
    let mut client = Conn::connect(gearmand.addr);
    submit(&mut client, SUBMIT_JOB_HIGH_BG, "mig", "u-high", b"first");
    submit(&mut client, SUBMIT_JOB_BG, "mig", "u-1", b"second");
    submit(&mut client, SUBMIT_JOB_BG, "mig", "u-2", b"\x00binary\xff");
    drop(client);
    drop(gearmand);

    // gearboxd with gearmand's flags imports them, and takes one more job.
    let gearboxd = Gearboxd::start(&["-p", "0", "-L", "127.0.0.1", "-q", "libsqlite3", &db_arg]);
    assert_eq!(status(&gearboxd, "mig"), Some((3, 0)));
    submit(
        &mut gearboxd.connect(),
        SUBMIT_JOB_BG,
        "mig",
        "u-3",
        b"from gearboxd",
    );
    stop(gearboxd);

    // Going back: the page's SQL, then gearmand on the same file serves all four.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(&rollback_sql()).unwrap();
    drop(conn);
    let gearmand = start_gearmand(&db_arg)
        .await
        .expect("gearmand started the first time");
    let ran = run_all_on(Conn::connect(gearmand.addr), "mig");
    assert_eq!(
        jobs(ran),
        [
            ("u-1".to_owned(), b"second".to_vec()),
            ("u-2".to_owned(), b"\x00binary\xff".to_vec()),
            ("u-3".to_owned(), b"from gearboxd".to_vec()),
            ("u-high".to_owned(), b"first".to_vec()),
        ]
    );
    // Nothing is left behind in either table once gearmand has run them.
    drop(gearmand);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!((count("gearman_queue"), count("gearbox_jobs")), (0, 0));
}

//! docs/migrating-from-gearmand.md, run against the real gearmand: jobs the C++ gearmand
//! queued in its SQLite queue move into gearboxd (gearmand's own flags), and back again with
//! the page's rollback SQL, after which gearmand hands every one of them to a worker.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use gearbox_testkit::external;
use support::jobs::{
    run_all_on, status, stop, submit, Assigned, SUBMIT_JOB_BG, SUBMIT_JOB_HIGH_BG,
};
use support::{wait_until, Conn, Gearboxd, TempDir, TIMEOUT};

const GEARMAND: &str = "/usr/sbin/gearmand";

/// The C++ gearmand on a free loopback port with its SQLite queue in `db`; killed on drop.
struct Gearmand {
    child: Child,
    addr: SocketAddr,
}

impl Gearmand {
    fn start(db: &Path, log: &Path) -> Gearmand {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(GEARMAND)
            .args([
                "-L",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-q",
                "libsqlite3",
            ])
            .arg(format!("--libsqlite3-db={}", db.display()))
            .arg(format!("--log-file={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut g = Gearmand { child, addr };
        let up = wait_until(TIMEOUT, || {
            assert!(
                g.child.try_wait().unwrap().is_none(),
                "gearmand exited: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::net::TcpStream::connect(addr).is_ok()
        });
        assert!(up, "gearmand did not listen on {addr}");
        g
    }

    /// SIGTERM, and waits for the exit (gearmand has written its queue by then).
    fn stop(mut self) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let exited = wait_until(TIMEOUT, || self.child.try_wait().unwrap().is_some());
        assert!(exited, "gearmand did not stop");
    }
}

impl Drop for Gearmand {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

#[test]
fn a_gearmand_sqlite_queue_moves_to_gearboxd_and_back() {
    if external::require(GEARMAND, "the C++ gearmand, from gearman-job-server").is_none() {
        return;
    }
    let dir = TempDir::new();
    let db = dir.join("queue.sqlite3");
    let log = dir.join("gearmand.log");

    // gearmand queues three background jobs in its SQLite queue, then stops.
    let gearmand = Gearmand::start(&db, &log);
    let mut client = Conn::connect(gearmand.addr);
    submit(&mut client, SUBMIT_JOB_HIGH_BG, "mig", "u-high", b"first");
    submit(&mut client, SUBMIT_JOB_BG, "mig", "u-1", b"second");
    submit(&mut client, SUBMIT_JOB_BG, "mig", "u-2", b"\x00binary\xff");
    drop(client);
    gearmand.stop();

    // gearboxd with gearmand's flags imports them, and takes one more job.
    let db_arg = format!("--libsqlite3-db={}", db.display());
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
    let gearmand = Gearmand::start(&db, &log);
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
    gearmand.stop();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!((count("gearman_queue"), count("gearbox_jobs")), (0, 0));
}

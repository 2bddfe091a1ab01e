//! The functions loaded into a throwaway MariaDB (`--plugin-dir` = the directory holding the
//! freshly built `libgearbox_mysql_udf.so`), against an in-process gearbox server and a
//! blocking test worker. Skipped (with a printed reason) without mariadbd, except under CI.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use gearbox_client::blocking::worker::{Job, Worker};
use gearbox_client::worker::JobError;
use gearbox_testkit::servers::mariadb::MariaDb;
use gearbox_testkit::TestServer;
use mysql_async::prelude::Queryable;

/// Every function of the library: (name, returns).
const FUNCTIONS: &[&str] = &[
    "gman_servers_set",
    "gman_timeout_set",
    "gman_do",
    "gman_do_high",
    "gman_do_low",
    "gman_do_background",
    "gman_do_high_background",
    "gman_do_low_background",
];

/// The directory of the freshly built library: `target/<profile>/deps`, next to this test
/// binary (cargo builds the cdylib there for the tests; it copies it up to
/// `target/<profile>/` only for `cargo build`, so that copy may be stale or missing).
fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().expect("target/<profile>/deps").to_path_buf();
    let lib = dir.join("libgearbox_mysql_udf.so");
    assert!(
        lib.is_file(),
        "{} is missing: cargo builds it with the tests",
        lib.display()
    );
    dir
}

/// Runs `sql`, returning its single value (None for SQL NULL).
async fn value(conn: &mut mysql_async::Conn, sql: &str) -> Option<String> {
    let row: Option<Option<Vec<u8>>> = conn.query_first(sql).await.expect(sql);
    row.expect("one row")
        .map(|v| String::from_utf8(v).expect("utf-8"))
}

/// The test worker on `servers`: `rev` reverses, `fail` fails, `bg` hands each payload to the
/// returned receiver. Stop it by sending on the returned sender, then join the thread.
#[allow(clippy::type_complexity)]
fn start_worker(
    servers: &str,
) -> (
    mpsc::Receiver<String>,
    mpsc::Sender<()>,
    std::thread::JoinHandle<Result<(), gearbox_client::Error>>,
) {
    let (seen_tx, seen) = mpsc::channel::<String>();
    let seen_tx = std::sync::Mutex::new(seen_tx);
    let worker = Worker::builder()
        .servers(servers)
        .concurrency(2)
        .register("rev", |job: &Job| {
            Ok::<_, JobError>(job.payload().iter().rev().copied().collect::<Vec<u8>>())
        })
        .register("fail", |_job: &Job| Err::<&str, _>(JobError::Fail))
        .register("bg", move |job: &Job| {
            let _ = seen_tx.lock().unwrap().send(job.payload_str()?.to_owned());
            Ok::<_, JobError>("")
        })
        .build()
        .expect("worker");
    let (stop, stop_rx) = mpsc::channel::<()>();
    let worker = std::thread::spawn(move || worker.run_until(stop_rx).map(|_| ()));
    (seen, stop, worker)
}

/// A connection to `db` with every function created and `servers` set.
async fn connect(db: &MariaDb, servers: &str) -> mysql_async::Conn {
    let mut conn = db.conn().await;
    for f in FUNCTIONS {
        conn.query_drop(format!(
            "CREATE FUNCTION {f} RETURNS STRING SONAME 'libgearbox_mysql_udf.so'"
        ))
        .await
        .expect(f);
    }
    let set = format!("SELECT gman_servers_set('{servers}')");
    assert_eq!(value(&mut conn, &set).await.as_deref(), Some(servers));
    conn
}

/// A throwaway MariaDB with the library's directory as its plugin directory, an in-process
/// gearbox server, and the test worker on it.
struct Fixture {
    db: MariaDb,
    rt: tokio::runtime::Runtime,
    _server: TestServer,
    servers: String,
    seen: mpsc::Receiver<String>,
    stop: mpsc::Sender<()>,
    worker: std::thread::JoinHandle<Result<(), gearbox_client::Error>>,
}

impl Fixture {
    /// None (the test is skipped, with the reason printed) without mariadbd outside CI.
    fn start(test: &str) -> Option<Fixture> {
        let db = MariaDb::start_with_plugins(test, &plugin_dir())?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let server = rt.block_on(TestServer::start());
        let servers = format!("127.0.0.1:{}", server.port());
        let (seen, stop, worker) = start_worker(&servers);
        Some(Fixture {
            db,
            rt,
            _server: server,
            servers,
            seen,
            stop,
            worker,
        })
    }

    /// Stops the test worker and checks that it ended cleanly.
    fn finish(self) {
        self.stop.send(()).expect("worker running");
        self.worker.join().expect("worker thread").expect("worker");
    }
}

#[test]
fn udfs_submit_jobs_from_sql() {
    let Some(fx) = Fixture::start("udfs_submit_jobs_from_sql") else {
        return;
    };
    let (seen, servers) = (&fx.seen, fx.servers.clone());
    fx.rt.block_on(async {
        let mut conn = connect(&fx.db, &servers).await;

        // Foreground: the worker's result, for every priority; NULL payload is empty.
        for f in ["gman_do", "gman_do_high", "gman_do_low"] {
            let out = value(&mut conn, &format!("SELECT {f}('rev', 'abc')")).await;
            assert_eq!(out.as_deref(), Some("cba"), "{f}");
        }
        let out = value(&mut conn, "SELECT gman_do('rev', NULL)").await;
        assert_eq!(out.as_deref(), Some(""));

        // Background: a job handle, and the worker gets the payload.
        for f in [
            "gman_do_background",
            "gman_do_high_background",
            "gman_do_low_background",
        ] {
            let handle = value(&mut conn, &format!("SELECT {f}('bg', '{f}')")).await;
            let handle = handle.unwrap_or_else(|| panic!("{f} returned NULL"));
            assert!(handle.starts_with("H:test"), "{f}: handle {handle:?}");
            let got = seen.recv_timeout(Duration::from_secs(10)).expect(f);
            assert_eq!(got, *f);
        }

        // A unique id as the third argument: a job still queued is not submitted twice
        // (nobody serves `held`, so the first stays queued), and foreground jobs take one too.
        let first = value(&mut conn, "SELECT gman_do_background('held', 'x', 'once')").await;
        let again = value(&mut conn, "SELECT gman_do_background('held', 'y', 'once')").await;
        assert!(first.is_some());
        assert_eq!(first, again, "the same unique id, the same job");
        let other = value(&mut conn, "SELECT gman_do_background('held', 'x', NULL)").await;
        assert!(
            other.is_some() && other != first,
            "NULL: no unique id, a new job"
        );
        let out = value(&mut conn, "SELECT gman_do('rev', 'abc', 'u-fg')").await;
        assert_eq!(out.as_deref(), Some("cba"));

        // Errors are NULL results, not crashes: a NULL function name.
        assert_eq!(value(&mut conn, "SELECT gman_do(NULL, 'x')").await, None);
        // A wrong argument count is refused when the statement is prepared.
        let err = conn
            .query_drop("SELECT gman_do('rev')")
            .await
            .expect_err("one argument");
        assert!(err.to_string().contains("takes 2 or 3 arguments"), "{err}");
        // The connection still works.
        let out = value(&mut conn, "SELECT gman_do('rev', 'xy')").await;
        assert_eq!(out.as_deref(), Some("yx"));

        // A foreground call with no worker ends at the timeout.
        assert_eq!(
            value(&mut conn, "SELECT gman_timeout_set(0.5)")
                .await
                .as_deref(),
            Some("0.5")
        );
        let started = std::time::Instant::now();
        assert_eq!(
            value(&mut conn, "SELECT gman_do('nobody', 'x')").await,
            None
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let out = value(&mut conn, "SELECT gman_do('rev', 'ab')").await;
        assert_eq!(out.as_deref(), Some("ba"));

        // A failed job and an unreachable server: NULL, and the connection goes on.
        assert_eq!(value(&mut conn, "SELECT gman_do('fail', 'x')").await, None);
        let free = gearbox_testkit::servers::free_port();
        let set = format!("SELECT gman_servers_set('127.0.0.1:{free}')");
        assert!(value(&mut conn, &set).await.is_some());
        let started = std::time::Instant::now();
        assert_eq!(
            value(&mut conn, "SELECT gman_do_background('bg', 'x')").await,
            None
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
        drop(conn);
    });

    fx.finish();
}

/// The trigger example of the crate's README: an `AFTER INSERT` trigger submits one
/// background job per row, with the row's id in the payload.
#[test]
fn an_insert_trigger_submits_a_job_per_row() {
    let Some(fx) = Fixture::start("an_insert_trigger_submits_a_job_per_row") else {
        return;
    };
    let (seen, servers) = (&fx.seen, fx.servers.clone());
    fx.rt.block_on(async {
        let mut conn = connect(&fx.db, &servers).await;
        conn.query_drop("CREATE TABLE pages (id INT PRIMARY KEY, body TEXT) ENGINE=InnoDB")
            .await
            .expect("table");
        conn.query_drop(
            "CREATE TRIGGER pages_reindex AFTER INSERT ON pages FOR EACH ROW \
             SET @gearman_handle = gman_do_background('bg', CONCAT('reindex ', NEW.id))",
        )
        .await
        .expect("trigger");
        conn.query_drop("INSERT INTO pages VALUES (1, 'a'), (2, 'b'), (3, 'c')")
            .await
            .expect("insert");
        let mut got: Vec<String> = (0..3)
            .map(|_| {
                seen.recv_timeout(Duration::from_secs(10))
                    .expect("a job per row")
            })
            .collect();
        got.sort();
        assert_eq!(got, ["reindex 1", "reindex 2", "reindex 3"]);
        let handle = value(&mut conn, "SELECT @gearman_handle").await;
        assert!(handle.is_some_and(|h| h.starts_with("H:test")));
        drop(conn);
    });
    fx.finish();
}

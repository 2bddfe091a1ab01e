//! The fixture of `sql_mysql.rs`: a throwaway MariaDB with `libgearbox_mysql_udf.so` loaded,
//! the real `gearboxd`, and a test worker.

use std::path::PathBuf;
use std::sync::{mpsc, Mutex};

use gearbox_client::blocking::worker::{Job, Worker};
use gearbox_client::worker::JobError;
use gearbox_testkit::servers::mariadb::MariaDb;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::support::{Gearboxd, TIMEOUT};

/// Every function of the library.
pub const FUNCTIONS: &[&str] = &[
    "gman_servers_set",
    "gman_timeout_set",
    "gman_do",
    "gman_do_high",
    "gman_do_low",
    "gman_do_background",
    "gman_do_high_background",
    "gman_do_low_background",
];

/// `target/<profile>/deps`, holding the library cargo built for this test.
fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().expect("target/<profile>/deps").to_path_buf();
    let lib = dir.join("libgearbox_mysql_udf.so");
    assert!(
        lib.is_file(),
        "{} is missing: cargo builds it as a dev-dependency of gearboxd",
        lib.display()
    );
    dir
}

/// Runs `sql` and returns its single value as bytes (None for SQL NULL).
pub async fn bytes(conn: &mut Conn, sql: &str) -> Option<Vec<u8>> {
    let row: Option<Option<Vec<u8>>> = conn.query_first(sql).await.expect(sql);
    row.expect("one row")
}

/// [`bytes`] as text.
pub async fn text(conn: &mut Conn, sql: &str) -> Option<String> {
    bytes(conn, sql)
        .await
        .map(|v| String::from_utf8(v).expect("utf-8"))
}

/// The test worker: `rev` reverses the payload's bytes, `fail` fails, `exc` raises an
/// exception, `bg` hands each payload to the fixture's `seen` receiver. Nobody serves
/// `nobody`.
fn worker(servers: &str, seen: mpsc::Sender<Vec<u8>>) -> Worker {
    let seen = Mutex::new(seen);
    Worker::builder()
        .servers(servers)
        .concurrency(2)
        .register("rev", |job: &Job| {
            Ok::<_, JobError>(job.payload().iter().rev().copied().collect::<Vec<u8>>())
        })
        .register("fail", |_: &Job| Err::<&str, _>(JobError::Fail))
        .register("exc", |_: &Job| {
            Err::<&str, _>(JobError::exception("no such page"))
        })
        .register("bg", move |job: &Job| {
            let _ = seen.lock().unwrap().send(job.payload().to_vec());
            Ok::<_, JobError>("")
        })
        .build()
        .expect("worker")
}

/// A throwaway MariaDB with the library, a real gearboxd (`-q builtin`), the test worker.
pub struct Fixture {
    pub db: MariaDb,
    pub rt: tokio::runtime::Runtime,
    pub gearboxd: Gearboxd,
    /// `127.0.0.1:PORT` of gearboxd.
    pub servers: String,
    /// The payloads of the `bg` jobs, in the order the worker got them.
    pub seen: mpsc::Receiver<Vec<u8>>,
    pub stop: mpsc::Sender<()>,
    pub worker: std::thread::JoinHandle<Result<(), gearbox_client::Error>>,
}

impl Fixture {
    /// None (the test is skipped, with the reason printed) without mariadbd outside CI.
    pub fn start(test: &str) -> Option<Fixture> {
        Fixture::start_with(test, &[])
    }

    /// [`Fixture::start`] with more MariaDB options.
    pub fn start_with(test: &str, options: &[&str]) -> Option<Fixture> {
        let db = MariaDb::start_with_plugins_and(test, &plugin_dir(), options)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let gearboxd = Gearboxd::start(&["-p", "0", "-L", "127.0.0.1", "-q", "builtin"]);
        let servers = format!("127.0.0.1:{}", gearboxd.addr.port());
        let (seen_tx, seen) = mpsc::channel();
        let w = worker(&servers, seen_tx);
        let (stop, stop_rx) = mpsc::channel::<()>();
        let worker = std::thread::spawn(move || w.run_until(stop_rx).map(|_| ()));
        let fx = Fixture {
            db,
            rt,
            gearboxd,
            servers,
            seen,
            stop,
            worker,
        };
        fx.rt.block_on(async {
            let mut conn = fx.db.conn().await;
            for f in FUNCTIONS {
                let sql =
                    format!("CREATE FUNCTION {f} RETURNS STRING SONAME 'libgearbox_mysql_udf.so'");
                conn.query_drop(sql).await.expect(f);
            }
            let set = format!("SELECT gman_servers_set('{}')", fx.servers);
            assert_eq!(text(&mut conn, &set).await, Some(fx.servers.clone()));
        });
        Some(fx)
    }

    /// The next `bg` payload the worker got.
    pub fn next_seen(&self) -> Vec<u8> {
        self.seen.recv_timeout(TIMEOUT).expect("a bg job")
    }

    /// Stops the test worker, checks that it ended cleanly, and that gearboxd still runs.
    pub fn finish(mut self) {
        self.stop.send(()).expect("worker running");
        self.worker.join().expect("worker thread").expect("worker");
        assert!(self.gearboxd.running(), "{}", self.gearboxd.stderr_text());
    }
}

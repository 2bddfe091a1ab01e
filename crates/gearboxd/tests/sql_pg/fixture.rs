//! The set-up of the `gearbox` PostgreSQL extension's tests: a throwaway PostgreSQL with the
//! extension created, the real `gearboxd`, and a test worker.

use std::path::PathBuf;
use std::sync::{mpsc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use gearbox_client::blocking::worker::{Job, Worker};
use gearbox_client::worker::JobError;
use gearbox_testkit::external::in_ci;
use gearbox_testkit::servers::postgres::PgServer;

use crate::support::{Gearboxd, TIMEOUT};

/// What the test worker saw of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The function.
    pub function: String,
    /// The unique id.
    pub unique: Vec<u8>,
    /// The payload.
    pub payload: Vec<u8>,
}

/// The `gearbox.control` files of the installed PostgreSQL versions that have the extension.
fn installed_control() -> Option<PathBuf> {
    let versions = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    versions.flatten().find_map(|v| {
        let pg_config = v.path().join("bin/pg_config");
        let out = std::process::Command::new(&pg_config)
            .arg("--sharedir")
            .output()
            .ok()?;
        let share = String::from_utf8(out.stdout).ok()?;
        let control = PathBuf::from(share.trim()).join("extension/gearbox.control");
        control.is_file().then_some(control)
    })
}

/// Whether the extension is installed; if not, says why the test is skipped (panics in CI).
fn extension_installed(test: &str) -> bool {
    if installed_control().is_some() {
        return true;
    }
    let msg = "the gearbox PostgreSQL extension is not installed \
               (no gearbox.control in `pg_config --sharedir`/extension); run \
               `bash .ci/build-pg-extension`";
    if in_ci() {
        panic!("CI=true but {test} cannot run: {msg}");
    }
    println!("SKIPPED: {test}: {msg}");
    eprintln!("SKIPPED: {test}: {msg}");
    false
}

/// The test worker: `rev` reverses, `echo` returns the payload, `fail` fails, `exc` raises the
/// exception `boom: <payload>`; every job it runs is also sent to the returned receiver.
fn start_worker(
    servers: &str,
) -> (
    mpsc::Receiver<Seen>,
    mpsc::Sender<()>,
    JoinHandle<Result<(), gearbox_client::Error>>,
) {
    let (seen_tx, seen) = mpsc::channel::<Seen>();
    let seen_tx = std::sync::Arc::new(Mutex::new(seen_tx));
    let record = move |job: &Job| {
        let _ = seen_tx.lock().unwrap().send(Seen {
            function: job.function().to_owned(),
            unique: job.unique().to_vec(),
            payload: job.payload().to_vec(),
        });
    };
    let mut builder = Worker::builder().servers(servers).concurrency(1);
    for f in ["rev", "echo", "fail", "exc", "reindex", "row"] {
        let record = record.clone();
        builder = builder.register(f, move |job: &Job| {
            record(job);
            match job.function() {
                "rev" => Ok(job.payload().iter().rev().copied().collect::<Vec<u8>>()),
                "fail" => Err(JobError::Fail),
                "exc" => Err(JobError::exception(format!(
                    "boom: {}",
                    String::from_utf8_lossy(job.payload())
                ))),
                _ => Ok(job.payload().to_vec()),
            }
        });
    }
    let worker = builder.build().expect("worker");
    let (stop, stop_rx) = mpsc::channel::<()>();
    let worker = std::thread::spawn(move || worker.run_until(stop_rx).map(|_| ()));
    (seen, stop, worker)
}

/// A throwaway PostgreSQL with `CREATE EXTENSION gearbox` done and `gearbox.servers` set (for
/// the database) to a real `gearboxd`, which has the test worker.
pub struct Fixture {
    /// The database server.
    pub pg: PgServer,
    /// The job server.
    pub server: Gearboxd,
    /// `127.0.0.1:<port>` of the job server.
    pub servers: String,
    seen: mpsc::Receiver<Seen>,
    stop: mpsc::Sender<()>,
    worker: JoinHandle<Result<(), gearbox_client::Error>>,
}

impl Fixture {
    /// None (the test is skipped, with the reason printed) without PostgreSQL or the
    /// extension, outside CI.
    pub fn start(test: &str) -> Option<Fixture> {
        if !extension_installed(test) {
            return None;
        }
        let pg = PgServer::start(test)?;
        let server = Gearboxd::start(&["-p", "0", "-L", "127.0.0.1", "-q", "builtin"]);
        let servers = server.addr.to_string();
        pg.query(&format!(
            "CREATE EXTENSION gearbox; ALTER DATABASE postgres SET gearbox.servers = '{servers}'"
        ));
        let (seen, stop, worker) = start_worker(&servers);
        Some(Fixture {
            pg,
            server,
            servers,
            seen,
            stop,
            worker,
        })
    }

    /// A new database connection (a new backend).
    pub async fn client(&self) -> tokio_postgres::Client {
        self.pg.client().await
    }

    /// The next job the worker ran; fails the test after [`TIMEOUT`].
    pub fn next_seen(&self) -> Seen {
        self.seen
            .recv_timeout(TIMEOUT)
            .expect("the worker ran no job in time")
    }

    /// The next `n` jobs the worker ran, in order.
    pub fn seen(&self, n: usize) -> Vec<Seen> {
        (0..n).map(|_| self.next_seen()).collect()
    }

    /// The connections to the job server without functions (clients): this listing's own and
    /// the backends'.
    pub fn clients(&self) -> usize {
        self.server
            .connect()
            .admin_listing("workers")
            .into_iter()
            .filter(|l| l.trim_end().ends_with(':'))
            .count()
    }

    /// Checks that the worker ran nothing else, and stops it.
    pub fn finish(self) {
        assert_eq!(
            self.seen.recv_timeout(Duration::ZERO).ok(),
            None,
            "the worker ran a job no check expected"
        );
        self.stop.send(()).expect("worker running");
        self.worker.join().expect("worker thread").expect("worker");
    }
}

/// The first column of the single row `sql` returns, as text.
pub async fn text(c: &tokio_postgres::Client, sql: &str) -> Option<String> {
    c.query_one(sql, &[]).await.expect(sql).get(0)
}

/// The message of the error `sql` fails with (the test fails if it succeeds).
pub async fn error(c: &tokio_postgres::Client, sql: &str) -> (String, String) {
    let e = c
        .batch_execute(sql)
        .await
        .expect_err(&format!("{sql} should fail"));
    let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e}"));
    (db.code().code().to_owned(), db.message().to_owned())
}

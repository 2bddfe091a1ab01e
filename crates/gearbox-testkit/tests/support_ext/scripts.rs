//! Third-party client libraries (PHP's pecl gearman, Perl's Gearman::Client, Python's gear)
//! driven by the scripts in `tests/scripts/` against an in-process gearbox. Each script prints
//! `ALL OK` last when every check it made passed.

use std::path::{Path, PathBuf};

use gearbox_testkit::process::{self, Finished, Proc};
use gearbox_testkit::{external, RawConn, TestServer};

/// A script in `tests/scripts/`.
pub fn script(name: &str) -> String {
    format!("{}/tests/scripts/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `program` if it runs `probe` successfully (i.e. has the Gearman library), else `None`
/// after printing that it `lacks` it (a failure under CI).
pub async fn interpreter(program: &str, why: &str, probe: &[&str], lacks: &str) -> Option<PathBuf> {
    external::require_probed(program, why, probe, |out| {
        format!(
            "{program} lacks {lacks} ({}), as .ci/install-deps installs",
            out.stderr.trim()
        )
    })
    .await
}

/// Perl with Gearman::Client and Gearman::Worker (Debian `libgearman-client-perl`), for `why`.
pub async fn perl(why: &str) -> Option<PathBuf> {
    let probe = ["-MGearman::Client", "-MGearman::Worker", "-e", "1"];
    let lacks = "Gearman::Client (Debian libgearman-client-perl)";
    interpreter("perl", why, &probe, lacks).await
}

/// PHP with the pecl gearman extension (Debian `php-gearman`), for `why`.
pub async fn php(why: &str) -> Option<PathBuf> {
    let probe = ["-r", "exit(extension_loaded('gearman') ? 0 : 1);"];
    let lacks = "the gearman extension (Debian php-gearman)";
    interpreter("php", why, &probe, lacks).await
}

/// Python 3 with `gear` (from PyPI), for `why`.
pub async fn python_gear(why: &str) -> Option<PathBuf> {
    let lacks = "gear (`pip install gear`)";
    interpreter("python3", why, &["-c", "import gear"], lacks).await
}

/// Runs `program args... PORT` to completion against `server`, and asserts it succeeded and
/// printed `ALL OK` last.
pub async fn run_client(server: &TestServer, program: &Path, args: &[&str]) -> Finished {
    let out = process::run(program, &with_port(args, server), b"").await;
    out.assert_success(&format!("{args:?}"));
    assert!(out.stdout.ends_with("ALL OK\n"), "{args:?} output: {out:?}");
    out
}

/// Starts the worker script `program worker... PORT`, then runs the client script
/// `program client... PORT` against a fresh gearbox: the client must pass (`ALL OK`), the
/// worker must have run the client's background job (`bg:bgdata`) and exit cleanly when the
/// client tells it to (`worker done`), and no job may be left behind. Returns the server,
/// for checks of what the scripts left.
pub async fn client_and_worker(program: &Path, worker: &[&str], client: &[&str]) -> TestServer {
    let server = TestServer::start().await;
    let mut w = Proc::spawn(program, &with_port(worker, &server));
    run_client(&server, program, client).await;
    assert_eq!(
        w.read_line().await.as_deref(),
        Some("bg:bgdata\n"),
        "the worker ran the background job"
    );
    let out = w.finish().await;
    out.assert_success(&format!("{worker:?}"));
    assert_eq!(out.stdout, "worker done\n");
    assert_no_jobs(&server).await;
    server
}

/// Starts the worker script `program worker... PORT`, runs the client script `program
/// client... PORT` against a fresh gearbox (it must print `ALL OK`), then waits for the worker
/// to exit cleanly (`worker done`) once the client has told it to.
pub async fn worker_then_client(program: &Path, worker: &[&str], client: &[&str]) -> TestServer {
    let server = TestServer::start().await;
    let w = Proc::spawn(program, &with_port(worker, &server));
    run_client(&server, program, client).await;
    let out = w.finish().await;
    out.assert_success(&format!("{worker:?}"));
    assert_eq!(out.stdout, "worker done\n");
    server
}

/// Asserts that `server` holds no job (`show jobs` lists none); returns the admin connection.
pub async fn assert_no_jobs(server: &TestServer) -> RawConn {
    let mut a = server.connect().await;
    assert_eq!(a.admin("show jobs").await, ".\n", "no job left behind");
    a
}

fn with_port(args: &[&str], server: &TestServer) -> Vec<String> {
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    v.push(server.port());
    v
}

//! Third-party clients and workers in a gearbox cluster, each pointed at only one member:
//! Debian's `gearman` tool (libgearman), PHP's pecl `gearman`, Python's `gear` and Perl's
//! `Gearman::Client`/`Gearman::Worker`. Every client is connected to another member than the
//! worker that runs its job, so foreground jobs cross a bridge and background jobs the shared
//! queue, and nothing in the libraries knows.
//!
//! Needs PostgreSQL and the libraries (`.ci/install-deps`): each part is SKIPPED with a
//! printed reason when its program is missing, and fails under `CI=true`.

mod support;

use std::time::Duration;

use gearbox_testkit::external::{require, require_probed};
use gearbox_testkit::process::Proc;
use gearbox_testkit::servers::postgres::PgServer;
use support::cluster::members;
use support::Gearboxd;

const TIMEOUT: Duration = Duration::from_secs(30);

fn script(name: &str) -> String {
    format!("{}/tests/scripts/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn port(s: &Gearboxd) -> String {
    s.addr.port().to_string()
}

/// `program` if it runs `probe` (which loads its Gearman library), else `None` after saying
/// why (a failure under CI).
async fn library(program: &str, probe: &[&str]) -> Option<std::path::PathBuf> {
    require_probed(program, "the cluster interop test", probe, |out| {
        format!(
            "{program} lacks its Gearman library ({}), as .ci/install-deps installs",
            out.stderr.trim()
        )
    })
    .await
}

/// Debian's `gearman` tool on the member at 127.0.0.1:`port`, with `args`.
fn tool(gearman: &std::path::Path, port: &str, args: &[&str]) -> Proc {
    let mut all = vec!["-h", "127.0.0.1", "-p", port];
    all.extend_from_slice(args);
    Proc::spawn(gearman, &all)
}

/// Starts `program args` as a worker and waits for its `READY` line.
async fn start_worker(program: &std::path::Path, args: &[&str]) -> Proc {
    let mut worker = Proc::spawn(program, args);
    let line = worker.read_line().await.expect("the worker's READY line");
    assert_eq!(line.trim(), "READY");
    worker
}

/// Runs a client to completion and returns its standard output, checking `ALL OK`.
async fn run_client(program: &std::path::Path, args: &[&str]) -> String {
    let out = Proc::spawn(program, args).finish_within(TIMEOUT).await;
    out.assert_success(&format!("{program:?} {args:?}"));
    assert!(out.stdout.ends_with("ALL OK\n"), "{out:?}");
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn libgearman_tool_client_and_worker_on_different_members() {
    let Some(gearman) = require("/usr/bin/gearman", "Debian's gearman tool (gearman-tools)") else {
        return;
    };
    let Some(pg) = PgServer::start("libgearman_tool_client_and_worker_on_different_members") else {
        return;
    };
    let servers = members(&pg, 3);
    let (p1, p2, p3) = (port(&servers[0]), port(&servers[1]), port(&servers[2]));
    let dir = support::TempDir::new();
    let log_path = dir.join("keep.log").to_str().unwrap().to_owned();
    // Workers on s2: `rev` reverses; `keep` appends its payload to a file.
    let _rev = tool(&gearman, &p2, &["-w", "-f", "cl_rev", "--", "rev"]);
    let keep = format!("cat >> {log_path}; echo >> {log_path}");
    let _keep = tool(
        &gearman,
        &p2,
        &["-w", "-f", "cl_keep", "--", "sh", "-c", &keep],
    );
    // A foreground job from s1 and a background job from s3.
    let out = tool(&gearman, &p1, &["-f", "cl_rev", "across"])
        .finish_within(TIMEOUT)
        .await;
    out.assert_success("gearman client on s1");
    assert_eq!(out.stdout.trim(), "ssorca");
    let bg = tool(&gearman, &p3, &["-b", "-f", "cl_keep", "from-s3"])
        .finish_within(TIMEOUT)
        .await;
    bg.assert_success("gearman background client on s3");
    let ran = support::wait_until(TIMEOUT, || {
        std::fs::read_to_string(&log_path).is_ok_and(|t| t.contains("from-s3"))
    });
    assert!(ran, "the background job from s3 ran on s2's worker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn php_python_and_perl_clients_and_workers_on_different_members() {
    let php = library("php", &["-r", "exit(extension_loaded('gearman') ? 0 : 1);"]).await;
    let python = library("python3", &["-c", "import gear"]).await;
    let perl = library(
        "perl",
        &["-MGearman::Client", "-MGearman::Worker", "-e", "1"],
    )
    .await;
    let Some(pg) = PgServer::start("php_python_and_perl_clients_and_workers_on_different_members")
    else {
        return;
    };
    let servers = members(&pg, 3);
    let (p1, p2, p3) = (port(&servers[0]), port(&servers[1]), port(&servers[2]));
    let host = "127.0.0.1";
    if let Some(php) = &php {
        let s = script("cluster_php.php");
        let _worker = start_worker(php, &[&s, "worker", host, &p3]).await;
        let out = run_client(php, &[&s, "client", host, &p1]).await;
        assert_eq!(
            out, "status 1/2\ndata chunk\ncomplete ACROSS MEMBERS\nALL OK\n",
            "PHP's client on s1 sees every callback of the worker on s3"
        );
    }
    if let Some(python) = &python {
        let s = script("cluster_gear.py");
        let worker = start_worker(python, &[&s, "worker", host, &p1]).await;
        let out = run_client(python, &[&s, "client", host, &p2]).await;
        assert!(out.starts_with("result 12\n"), "{out}");
        worker
            .finish_within(TIMEOUT)
            .await
            .assert_success("gear worker on s1");
    }
    if let Some(perl) = &perl {
        let s = script("cluster_perl.pl");
        let _worker = start_worker(perl, &[&s, "worker", host, &p3]).await;
        let out = run_client(perl, &[&s, "client", host, &p2]).await;
        assert!(out.starts_with("result abab\n"), "{out}");
    }
}

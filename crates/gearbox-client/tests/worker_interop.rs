//! Interop: the C `gearman` command-line client (libgearman) submits jobs that our worker
//! runs, on gearbox and on gearmand: results, data chunks and status, failures, and
//! exceptions in both [`ExceptionMode`]s.

mod worker_support;

use gearbox_client::worker::{ExceptionMode, Job, JobError, Worker};
use gearbox_testkit::{external, process};
use worker_support::{builder, on_both_servers, spawn, Server};

fn worker(server: &Server, mode: ExceptionMode) -> Worker {
    builder(&server.list())
        .exception_mode(mode)
        .register("upper", |job: Job| async move {
            Ok::<_, JobError>(job.payload_str()?.to_uppercase())
        })
        .register("chunks", |job: Job| async move {
            job.send_data("one,").await?;
            job.send_status(1, 2).await?;
            job.send_data("two,").await?;
            Ok::<_, JobError>("three")
        })
        .register("raise", |_job: Job| async {
            Err::<String, _>(JobError::exception("boom"))
        })
        .register("fail", |_job: Job| async {
            Err::<String, _>(JobError::Fail)
        })
        .build()
        .expect("worker builds")
}

/// Runs `gearman -h 127.0.0.1 -p PORT args...`; `None` when the tool is missing outside CI.
async fn gearman(server: &Server, args: &[&str]) -> Option<process::Finished> {
    let bin = external::require("gearman", "the C gearman client")?;
    let port = server.port();
    let mut all = vec!["-h", "127.0.0.1", "-p", port.as_str()];
    all.extend_from_slice(args);
    Some(process::run(bin, &all, b"").await)
}

on_both_servers!(
    c_client_runs_jobs_on_our_worker,
    warning_then_fail_reaches_c_clients
);

async fn c_client_runs_jobs_on_our_worker(server: Server) {
    let w = spawn(worker(&server, ExceptionMode::Exception));
    let Some(out) = gearman(&server, &["-f", "upper", "hello"]).await else {
        return;
    };
    out.assert_success("gearman -f upper");
    assert_eq!(out.stdout, "HELLO", "{}", server.name());

    let out = gearman(&server, &["-f", "chunks", "x"])
        .await
        .expect("found");
    out.assert_success("gearman -f chunks");
    // Data chunks and the result as they arrive, then the progress line.
    assert_eq!(
        out.stdout,
        "one,two,three50% Complete\n",
        "{}",
        server.name()
    );

    let out = gearman(&server, &["-f", "fail", "x"]).await.expect("found");
    assert_eq!(out.status.code(), Some(1), "{}", server.name());
    assert_eq!(out.stderr, "Job failed\n");
    w.stop().await;
}

async fn warning_then_fail_reaches_c_clients(server: Server) {
    let w = spawn(worker(&server, ExceptionMode::WarningThenFail));
    let Some(out) = gearman(&server, &["-f", "raise", "x"]).await else {
        return;
    };
    assert_eq!(out.status.code(), Some(1), "{}: {out:?}", server.name());
    // The tool prints the warning, then its failure line.
    assert_eq!(out.stderr, "boomJob failed\n", "{}", server.name());
    w.stop().await;
}

/// With the default mode, the server turns our WORK_EXCEPTION into a WORK_FAIL for the C
/// client (which does not ask for exceptions). gearbox's is well-formed; gearmand 1.1.20's
/// has a trailing NUL after the handle, so libgearman never matches it and waits until its
/// own timeout: the reason for `ExceptionMode::WarningThenFail`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exception_reaches_c_clients_as_failure() {
    let server = Server::gearbox().await;
    let w = spawn(worker(&server, ExceptionMode::Exception));
    let Some(out) = gearman(&server, &["-f", "raise", "x"]).await else {
        return;
    };
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stderr, "Job failed\n");
    w.stop().await;

    let Some(server) = Server::gearmand().await else {
        return;
    };
    let w = spawn(worker(&server, ExceptionMode::Exception));
    let out = gearman(&server, &["-t", "1000", "-f", "raise", "x"])
        .await
        .expect("found");
    assert!(
        out.stderr.contains("timeout reached"),
        "gearmand's WORK_FAIL after an exception is no longer ignored by libgearman: \
         revisit ExceptionMode's docs. {out:?}"
    );
    w.stop().await;
}

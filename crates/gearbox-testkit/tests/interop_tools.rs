//! Debian's C tools against the in-process gearbox: `gearman` (libgearman's client and worker
//! CLI) and `gearadmin` (the admin CLI), with every option users type.
//!
//! Each tool runs as a child process killed when its guard drops, so a failing test leaves
//! nothing behind; every wait is bounded. Without the tools installed the tests skip with a
//! printed reason (and fail under `CI=true`).

mod support_ext;

use std::path::PathBuf;

use gearbox_proto::{Request, Response};
use gearbox_testkit::process::{Finished, Proc};
use gearbox_testkit::{external, TestServer};
use support_ext::{admin, b, wait_admin, wait_for_clients};

struct Tools {
    gearman: PathBuf,
    gearadmin: PathBuf,
}

fn tools() -> Option<Tools> {
    Some(Tools {
        gearman: external::require("gearman", "Debian gearman-tools: the libgearman CLI")?,
        gearadmin: external::require("gearadmin", "Debian gearman-tools: the admin CLI")?,
    })
}

fn args(server: &TestServer, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        "-h".to_string(),
        "127.0.0.1".into(),
        "-p".into(),
        server.port(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

impl Tools {
    /// Starts `gearman -h 127.0.0.1 -p PORT extra...`.
    fn gearman(&self, server: &TestServer, extra: &[&str]) -> Proc {
        Proc::spawn(&self.gearman, &args(server, extra))
    }

    /// Runs `gearman ... extra` with `stdin` and waits for it.
    async fn gearman_run(&self, server: &TestServer, extra: &[&str], stdin: &[u8]) -> Finished {
        gearbox_testkit::process::run(&self.gearman, &args(server, extra), stdin).await
    }

    /// Runs `gearadmin -h 127.0.0.1 -p PORT extra...` and waits for it.
    async fn gearadmin(&self, server: &TestServer, extra: &[&str]) -> Finished {
        let out = gearbox_testkit::process::run(&self.gearadmin, &args(server, extra), b"").await;
        // gearadmin exits 0 even when the server answers ERR (printed on stderr).
        out.assert_success(&format!("gearadmin {extra:?}"));
        out
    }
}

/// A scratch file for a worker command to write into; removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        Scratch(std::env::temp_dir().join(format!("gearbox-interop-{}-{name}", std::process::id())))
    }
    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
    fn read(&self) -> String {
        std::fs::read_to_string(&self.0).unwrap_or_default()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `gearman -f rev hello` with a one-shot worker `gearman -w -c 1 -f rev -- rev`: the client
/// prints the worker command's output, and the worker exits after its one job.
#[tokio::test]
async fn client_and_one_shot_worker_round_trip() {
    let Some(t) = tools() else { return };
    let server = TestServer::start().await;
    let client = t.gearman(&server, &["-f", "rev", "hello"]);
    let worker = t.gearman(&server, &["-w", "-c", "1", "-f", "rev", "--", "rev"]);
    let out = client.finish().await;
    out.assert_success("gearman client");
    assert_eq!(out.stdout.trim_end(), "olleh");
    worker.finish().await.assert_success("gearman -w -c 1");
    // The worker's disconnect reaches the server shortly after it exits.
    let mut a = server.connect().await;
    wait_admin(&mut a, "status", "job done, worker gone", |s| {
        s == "rev\t0\t0\t0\n.\n"
    })
    .await;
}

/// `-n`: one job per input line (newline kept), `-N`: the same with the newline stripped,
/// `-P`: each result prefixed with the function name.
#[tokio::test]
async fn one_job_per_line_and_prefix() {
    let Some(t) = tools() else { return };
    let server = TestServer::start().await;
    let worker = t.gearman(
        &server,
        &["-w", "-c", "4", "-f", "up", "--", "tr", "a-z", "A-Z"],
    );
    let out = t
        .gearman_run(&server, &["-f", "up", "-n"], b"abc\ndef\n")
        .await;
    out.assert_success("gearman -n");
    assert_eq!(out.stdout, "ABC\nDEF\n");
    let out = t
        .gearman_run(&server, &["-f", "up", "-N", "-P"], b"abc\ndef\n")
        .await;
    out.assert_success("gearman -N -P");
    assert_eq!(out.stdout, "up: ABCup: DEF");
    worker.finish().await.assert_success("gearman -w -c 4");
}

/// `-s`: no stdin, an empty payload; `-c 2`: the worker exits after two jobs and leaves the
/// third queued.
#[tokio::test]
async fn no_stdin_and_job_count() {
    let Some(t) = tools() else { return };
    let server = TestServer::start().await;
    let worker = t.gearman(
        &server,
        &[
            "-w",
            "-c",
            "1",
            "-f",
            "show",
            "--",
            "sh",
            "-c",
            r#"printf '[%s]' "$(cat)""#,
        ],
    );
    let out = t.gearman(&server, &["-s", "-f", "show"]).finish().await;
    out.assert_success("gearman -s");
    assert_eq!(out.stdout, "[]");
    worker.finish().await.assert_success("worker");

    for data in ["1", "2", "3"] {
        t.gearman_run(&server, &["-b", "-f", "count", data], b"")
            .await
            .assert_success("gearman -b");
    }
    t.gearman(&server, &["-w", "-c", "2", "-f", "count", "--", "cat"])
        .finish()
        .await
        .assert_success("gearman -w -c 2");
    let mut a = server.connect().await;
    let left = "count\t1\t0\t0\nshow\t0\t0\t0\n.\n";
    wait_admin(&mut a, "status", "one job left, no worker", |s| s == left).await;
}

/// `-b` background jobs at `-I` (high), default and `-L` (low) priority: queued as such
/// (`gearadmin --priority-status`), then run highest first by a worker writing each payload to
/// a file.
#[tokio::test]
async fn background_jobs_and_priorities() {
    let Some(t) = tools() else { return };
    let server = TestServer::start().await;
    for (flag, data) in [("-L", "low"), ("", "normal"), ("-I", "high")] {
        let mut a = vec!["-b", "-f", "prio"];
        if !flag.is_empty() {
            a.push(flag);
        }
        a.push(data);
        let out = t.gearman_run(&server, &a, b"").await;
        out.assert_success("gearman -b");
        assert_eq!(out.stdout, "", "a background submit prints nothing");
    }
    assert_eq!(
        t.gearadmin(&server, &["--priority-status"]).await.stdout,
        "prio\t1\t1\t1\t0\n.\n"
    );
    assert_eq!(
        t.gearadmin(&server, &["--status"]).await.stdout,
        "prio\t3\t0\t0\n.\n"
    );
    let file = Scratch::new("prio");
    let cmd = format!("cat >> '{}'; echo >> '{}'", file.path(), file.path());
    t.gearman(
        &server,
        &["-w", "-c", "3", "-f", "prio", "--", "sh", "-c", &cmd],
    )
    .finish()
    .await
    .assert_success("worker");
    assert_eq!(file.read(), "high\nnormal\nlow\n");
    let mut a = server.connect().await;
    wait_admin(&mut a, "status", "queue drained, worker gone", |s| {
        s == "prio\t0\t0\t0\n.\n"
    })
    .await;
}

/// `-u UNIQUE`: background submits with one unique are one job; two foreground clients with
/// one unique share one job, so a one-shot worker answers both.
#[tokio::test]
async fn unique_ids_coalesce() {
    let Some(t) = tools() else { return };
    let server = TestServer::start().await;
    for data in ["first", "second"] {
        t.gearman_run(&server, &["-b", "-u", "same", "-f", "uq", data], b"")
            .await
            .assert_success("gearman -b -u");
    }
    assert_eq!(
        t.gearadmin(&server, &["--show-unique-jobs"]).await.stdout,
        "same\n.\n"
    );
    assert_eq!(
        t.gearadmin(&server, &["--status"]).await.stdout,
        "uq\t1\t0\t0\n.\n"
    );

    let c1 = t.gearman(&server, &["-u", "k", "-f", "rev", "abc"]);
    let c2 = t.gearman(&server, &["-u", "k", "-f", "rev", "abc"]);
    wait_for_clients(server.addr, "k", 2).await;
    let worker = t.gearman(&server, &["-w", "-c", "1", "-f", "rev", "--", "rev"]);
    for c in [c1, c2] {
        let out = c.finish().await;
        out.assert_success("gearman -u k");
        assert_eq!(out.stdout.trim_end(), "cba");
    }
    worker
        .finish()
        .await
        .assert_success("one job served both clients");
}

/// A worker command exiting non-zero: the client is told the job failed and exits non-zero.
#[tokio::test]
async fn worker_command_failure_fails_the_job() {
    let Some(t) = tools() else { return };
    let server = TestServer::start().await;
    let client = t.gearman(&server, &["-f", "failer", "input"]);
    let worker = t.gearman(
        &server,
        &[
            "-w",
            "-c",
            "1",
            "-f",
            "failer",
            "--",
            "sh",
            "-c",
            "cat >/dev/null; exit 3",
        ],
    );
    let out = client.finish().await;
    assert!(!out.status.success(), "client must fail: {out:?}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("Job failed"),
        "client stderr: {:?}",
        out.stderr
    );
    worker.finish().await;
    let mut a = server.connect().await;
    assert_eq!(
        admin(&mut a, "show jobs").await,
        ".\n",
        "the failed job is gone"
    );
}

/// Every `gearadmin` flag against gearbox.
#[tokio::test]
async fn gearadmin_every_flag() {
    let Some(t) = tools() else { return };
    let server = TestServer::start().await;
    let mut w = server.connect().await;
    w.send(&Request::SetClientId { id: b("wk") }).await;
    w.send(&Request::CanDo {
        function: b("busy"),
    })
    .await;
    w.assert_quiet().await;
    let mut c = server.connect().await;
    let h = support_ext::handle_of(
        &support_ext::RawConnExt::ask(
            &mut c,
            &support_ext::submit("queued", "u1", "d", gearbox_proto::Priority::Low, true),
        )
        .await,
    );
    assert_eq!(h, b("H:test:1"));

    assert_eq!(
        t.gearadmin(&server, &["--status"]).await.stdout,
        "busy\t0\t0\t1\nqueued\t1\t0\t0\n.\n"
    );
    assert_eq!(
        t.gearadmin(&server, &["--priority-status"]).await.stdout,
        "busy\t0\t0\t0\t1\nqueued\t0\t0\t1\t0\n.\n"
    );
    let workers = t.gearadmin(&server, &["--workers"]).await.stdout;
    let lines: Vec<&str> = workers.lines().collect();
    assert_eq!(lines.last(), Some(&"."), "{workers:?}");
    // The worker, and without an id the client and gearadmin itself (and maybe earlier
    // gearadmin runs whose disconnect the server has not processed yet).
    let named = lines
        .iter()
        .filter(|l| l.ends_with(" 127.0.0.1 wk : busy"))
        .count();
    assert_eq!(named, 1, "{workers:?}");
    let anonymous = lines
        .iter()
        .filter(|l| l.ends_with(" 127.0.0.1 - :"))
        .count();
    assert!(anonymous >= 2, "{workers:?}");
    assert_eq!(
        anonymous + 2,
        lines.len(),
        "only those and the dot line: {workers:?}"
    );
    for l in &lines[..lines.len() - 1] {
        let fd = l.split(' ').next().unwrap_or_default();
        assert!(fd.parse::<u32>().is_ok(), "fd column: {l:?}");
    }
    assert_eq!(
        t.gearadmin(&server, &["--server-version"]).await.stdout,
        format!("{}\n", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        t.gearadmin(&server, &["--server-verbose"]).await.stdout,
        "ERROR\n"
    );
    assert_eq!(
        t.gearadmin(&server, &["--getpid"]).await.stdout,
        format!("{}\n", std::process::id())
    );
    assert_eq!(
        t.gearadmin(&server, &["--show-jobs"]).await.stdout,
        "H:test:1\t0\t0\t1\n.\n"
    );
    assert_eq!(
        t.gearadmin(&server, &["--show-unique-jobs"]).await.stdout,
        "u1\n.\n"
    );

    let out = t.gearadmin(&server, &["--cancel-job", "H:test:1"]).await;
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("OK\n", ""));
    assert_eq!(t.gearadmin(&server, &["--show-jobs"]).await.stdout, ".\n");
    let out = t.gearadmin(&server, &["--cancel-job", "H:test:1"]).await;
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("", "Error: UNKNOWN_JOB\r\n")
    );

    let out = t.gearadmin(&server, &["--create-function", "made"]).await;
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("OK\n", ""));
    let st = wait_admin(&mut c, "status", "created function listed", |s| {
        s.contains("made\t0\t0\t0\n")
    })
    .await;
    assert!(st.contains("made\t0\t0\t0\n"));
    let out = t.gearadmin(&server, &["--drop-function", "made"]).await;
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("OK\n", ""));
    let out = t.gearadmin(&server, &["--drop-function", "made"]).await;
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("", "Error: function not found\r\n")
    );
    let out = t.gearadmin(&server, &["--drop-function", "busy"]).await;
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        (
            "",
            "Error: there are still connected workers or executing clients\r\n"
        )
    );
    // The worker connection saw none of this.
    w.send(&Request::EchoReq {
        data: b("still here"),
    })
    .await;
    assert_eq!(
        w.recv().await,
        Response::EchoRes {
            data: b("still here")
        }
    );
}

//! Debian's C tools against the in-process gearbox: `gearman` (libgearman's client and worker
//! CLI) and `gearadmin` (the admin CLI), with every option users type.
//!
//! Each tool runs as a child process killed when its guard drops, so a failing test leaves
//! nothing behind; every wait is bounded. Without the tools installed the tests skip with a
//! printed reason (and fail under `CI=true`).

mod support_ext;

use std::path::PathBuf;

use gearbox_proto::{Priority, Request};
use gearbox_testkit::process::{self, Finished, Proc};
use gearbox_testkit::{external, TestServer};
use support_ext::{b, can_do, submit, wait_admin, wait_for_clients};

/// Debian's tools and a fresh gearbox for them to talk to.
struct Tools {
    gearman: PathBuf,
    gearadmin: PathBuf,
    server: TestServer,
}

/// The tools, or `None` (reason printed) when they are not installed outside CI, and a fresh
/// gearbox.
async fn tools() -> Option<Tools> {
    Some(Tools {
        gearman: external::require("gearman", "Debian gearman-tools: the libgearman CLI")?,
        gearadmin: external::require("gearadmin", "Debian gearman-tools: the admin CLI")?,
        server: TestServer::start().await,
    })
}

impl Tools {
    /// `-h 127.0.0.1 -p PORT extra...`.
    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut v = vec!["-h".to_string(), "127.0.0.1".into(), "-p".into()];
        v.push(self.server.port());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    /// Starts `gearman -h 127.0.0.1 -p PORT extra...`.
    fn gearman(&self, extra: &[&str]) -> Proc {
        Proc::spawn(&self.gearman, &self.args(extra))
    }

    /// Runs `gearman ... extra` with `stdin` and waits for it.
    async fn gearman_run(&self, extra: &[&str], stdin: &[u8]) -> Finished {
        process::run(&self.gearman, &self.args(extra), stdin).await
    }

    /// Runs `gearadmin -h 127.0.0.1 -p PORT extra...` and waits for it.
    async fn gearadmin(&self, extra: &[&str]) -> Finished {
        let out = process::run(&self.gearadmin, &self.args(extra), b"").await;
        // gearadmin exits 0 even when the server answers ERR (printed on stderr).
        out.assert_success(&format!("gearadmin {extra:?}"));
        out
    }

    /// Runs `gearadmin extra...` and expects it to print `stdout` and `stderr`.
    async fn gearadmin_says(&self, extra: &[&str], stdout: &str, stderr: &str) {
        let out = self.gearadmin(extra).await;
        let said = (out.stdout.as_str(), out.stderr.as_str());
        assert_eq!(said, (stdout, stderr), "gearadmin {extra:?}");
    }

    /// Waits until the admin `status` listing is exactly `listing` (a tool's disconnect
    /// reaches the server shortly after it exits).
    async fn wait_status(&self, what: &str, listing: &str) {
        let mut a = self.server.connect().await;
        wait_admin(&mut a, "status", what, |s| s == listing).await;
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
    let Some(t) = tools().await else { return };
    let client = t.gearman(&["-f", "rev", "hello"]);
    let worker = t.gearman(&["-w", "-c", "1", "-f", "rev", "--", "rev"]);
    let out = client.finish().await;
    out.assert_success("gearman client");
    assert_eq!(out.stdout.trim_end(), "olleh");
    worker.finish().await.assert_success("gearman -w -c 1");
    // The worker's disconnect reaches the server shortly after it exits.
    t.wait_status("job done, worker gone", "rev\t0\t0\t0\n.\n")
        .await;
}

/// `-n`: one job per input line (newline kept), `-N`: the same with the newline stripped,
/// `-P`: each result prefixed with the function name.
#[tokio::test]
async fn one_job_per_line_and_prefix() {
    let Some(t) = tools().await else { return };
    let worker = t.gearman(&["-w", "-c", "4", "-f", "up", "--", "tr", "a-z", "A-Z"]);
    let out = t.gearman_run(&["-f", "up", "-n"], b"abc\ndef\n").await;
    out.assert_success("gearman -n");
    assert_eq!(out.stdout, "ABC\nDEF\n");
    let out = t
        .gearman_run(&["-f", "up", "-N", "-P"], b"abc\ndef\n")
        .await;
    out.assert_success("gearman -N -P");
    assert_eq!(out.stdout, "up: ABCup: DEF");
    worker.finish().await.assert_success("gearman -w -c 4");
}

/// `-s`: no stdin, an empty payload; `-c 2`: the worker exits after two jobs and leaves the
/// third queued.
#[tokio::test]
async fn no_stdin_and_job_count() {
    let Some(t) = tools().await else { return };
    let worker = t.gearman(&[
        "-w",
        "-c",
        "1",
        "-f",
        "show",
        "--",
        "sh",
        "-c",
        r#"printf '[%s]' "$(cat)""#,
    ]);
    let out = t.gearman(&["-s", "-f", "show"]).finish().await;
    out.assert_success("gearman -s");
    assert_eq!(out.stdout, "[]");
    worker.finish().await.assert_success("worker");

    for data in ["1", "2", "3"] {
        t.gearman_run(&["-b", "-f", "count", data], b"")
            .await
            .assert_success("gearman -b");
    }
    t.gearman(&["-w", "-c", "2", "-f", "count", "--", "cat"])
        .finish()
        .await
        .assert_success("gearman -w -c 2");
    let left = "count\t1\t0\t0\nshow\t0\t0\t0\n.\n";
    t.wait_status("one job left, no worker", left).await;
}

/// `-b` background jobs at `-I` (high), default and `-L` (low) priority: queued as such
/// (`gearadmin --priority-status`), then run highest first by a worker writing each payload to
/// a file.
#[tokio::test]
async fn background_jobs_and_priorities() {
    let Some(t) = tools().await else { return };
    for (flag, data) in [("-L", "low"), ("", "normal"), ("-I", "high")] {
        let mut a = vec!["-b", "-f", "prio"];
        if !flag.is_empty() {
            a.push(flag);
        }
        a.push(data);
        let out = t.gearman_run(&a, b"").await;
        out.assert_success("gearman -b");
        assert_eq!(out.stdout, "", "a background submit prints nothing");
    }
    t.gearadmin_says(&["--priority-status"], "prio\t1\t1\t1\t0\n.\n", "")
        .await;
    t.gearadmin_says(&["--status"], "prio\t3\t0\t0\n.\n", "")
        .await;
    let file = Scratch::new("prio");
    let cmd = format!("cat >> '{}'; echo >> '{}'", file.path(), file.path());
    t.gearman(&["-w", "-c", "3", "-f", "prio", "--", "sh", "-c", &cmd])
        .finish()
        .await
        .assert_success("worker");
    assert_eq!(file.read(), "high\nnormal\nlow\n");
    t.wait_status("queue drained, worker gone", "prio\t0\t0\t0\n.\n")
        .await;
}

/// `-u UNIQUE`: background submits with one unique are one job; two foreground clients with
/// one unique share one job, so a one-shot worker answers both.
#[tokio::test]
async fn unique_ids_coalesce() {
    let Some(t) = tools().await else { return };
    for data in ["first", "second"] {
        t.gearman_run(&["-b", "-u", "same", "-f", "uq", data], b"")
            .await
            .assert_success("gearman -b -u");
    }
    t.gearadmin_says(&["--show-unique-jobs"], "same\n.\n", "")
        .await;
    t.gearadmin_says(&["--status"], "uq\t1\t0\t0\n.\n", "")
        .await;

    let c1 = t.gearman(&["-u", "k", "-f", "rev", "abc"]);
    let c2 = t.gearman(&["-u", "k", "-f", "rev", "abc"]);
    wait_for_clients(t.server.addr, "k", 2).await;
    let worker = t.gearman(&["-w", "-c", "1", "-f", "rev", "--", "rev"]);
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
    let Some(t) = tools().await else { return };
    let client = t.gearman(&["-f", "failer", "input"]);
    let worker = t.gearman(&[
        "-w",
        "-c",
        "1",
        "-f",
        "failer",
        "--",
        "sh",
        "-c",
        "cat >/dev/null; exit 3",
    ]);
    let out = client.finish().await;
    assert!(!out.status.success(), "client must fail: {out:?}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("Job failed"),
        "client stderr: {:?}",
        out.stderr
    );
    worker.finish().await;
    let jobs = t.server.connect().await.admin("show jobs").await;
    assert_eq!(jobs, ".\n", "the failed job is gone");
}

/// Every `gearadmin` flag against gearbox.
#[tokio::test]
async fn gearadmin_every_flag() {
    let Some(t) = tools().await else { return };
    let mut w = t.server.connect().await;
    w.send(&Request::SetClientId { id: b("wk") }).await;
    w.send(&can_do("busy")).await;
    w.assert_quiet().await;
    let mut c = t.server.connect().await;
    let h = c
        .submit(&submit("queued", "u1", "d", Priority::Low, true))
        .await;
    assert_eq!(h, b("H:test:1"));

    let version = format!("{}\n", env!("CARGO_PKG_VERSION"));
    let pid = format!("{}\n", std::process::id());
    for (flag, stdout) in [
        ("--status", "busy\t0\t0\t1\nqueued\t1\t0\t0\n.\n"),
        (
            "--priority-status",
            "busy\t0\t0\t0\t1\nqueued\t0\t0\t1\t0\n.\n",
        ),
        ("--server-version", &version),
        ("--server-verbose", "ERROR\n"),
        ("--getpid", &pid),
        ("--show-jobs", "H:test:1\t0\t0\t1\n.\n"),
        ("--show-unique-jobs", "u1\n.\n"),
    ] {
        t.gearadmin_says(&[flag], stdout, "").await;
    }
    let workers = t.gearadmin(&["--workers"]).await.stdout;
    let lines: Vec<&str> = workers.lines().collect();
    assert_eq!(lines.last(), Some(&"."), "{workers:?}");
    // The worker, and without an id the client and gearadmin itself (and maybe earlier
    // gearadmin runs whose disconnect the server has not processed yet).
    let count = |suffix: &str| lines.iter().filter(|l| l.ends_with(suffix)).count();
    assert_eq!(count(" 127.0.0.1 wk : busy"), 1, "{workers:?}");
    let anonymous = count(" 127.0.0.1 - :");
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

    let cancel = ["--cancel-job", "H:test:1"];
    t.gearadmin_says(&cancel, "OK\n", "").await;
    t.gearadmin_says(&["--show-jobs"], ".\n", "").await;
    t.gearadmin_says(&cancel, "", "Error: UNKNOWN_JOB\r\n")
        .await;

    t.gearadmin_says(&["--create-function", "made"], "OK\n", "")
        .await;
    wait_admin(&mut c, "status", "created function listed", |s| {
        s.contains("made\t0\t0\t0\n")
    })
    .await;
    let drop_made = ["--drop-function", "made"];
    t.gearadmin_says(&drop_made, "OK\n", "").await;
    t.gearadmin_says(&drop_made, "", "Error: function not found\r\n")
        .await;
    let busy = "Error: there are still connected workers or executing clients\r\n";
    t.gearadmin_says(&["--drop-function", "busy"], "", busy)
        .await;
    // The worker connection saw none of this.
    w.assert_quiet().await;
}

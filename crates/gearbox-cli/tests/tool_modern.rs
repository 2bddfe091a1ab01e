//! The modern `gearbox` subcommands on gearbox and gearmand: admin tables and their
//! `--json`, `submit` (foreground, background, `--at`, progress, failures) with `work`, and
//! `watch`.

mod tool_support;

use bytes::Bytes;
use gearbox_proto::{Priority, Request};
use gearbox_testkit::build::{b, submit};
use gearbox_testkit::process::Proc;
use serde_json::Value;
use tool_support::{gearbox, raw_worker_take, run, submit_bg, Server};

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s:?}"))
}

#[tokio::test]
async fn admin_subcommands_print_tables_and_json() {
    for s in Server::both().await {
        let who = s.name();
        let list = s.list();
        let mut w = s.raw().await;
        w.send(&Request::SetClientId { id: b("wk") }).await;
        w.send(&Request::CanDo {
            function: b("busy"),
        })
        .await;
        w.assert_quiet().await;
        let mut c = s.raw().await;
        for p in [Priority::High, Priority::Low] {
            c.send(&submit("q", "", "d", p, true)).await;
            let _ = c.recv().await;
        }
        let h = submit_bg(&mut c, "victim", "v", "d").await;

        let out = run(gearbox(&list, &["status"]), b"").await;
        out.assert_success("status");
        assert_eq!(
            out.stdout,
            "FUNCTION  QUEUED  RUNNING  WORKERS\n\
             busy           0        0        1\n\
             q              2        0        0\n\
             victim         1        0        0\n",
            "{who}"
        );
        let out = run(gearbox(&list, &["status", "--priority", "--json"]), b"").await;
        let v = json(&out.stdout);
        let q = &v.as_array().unwrap()[1];
        assert_eq!(
            (
                q["function"].as_str(),
                q["high"].as_u64(),
                q["low"].as_u64()
            ),
            (Some("q"), Some(1), Some(1))
        );
        assert_eq!(q["server"].as_str(), Some(list.as_str()));

        let out = run(gearbox(&list, &["workers"]), b"").await;
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{who}: only the worker: {lines:?}");
        assert!(
            lines[0].starts_with("FD") && lines[1].ends_with("127.0.0.1  wk         busy"),
            "{lines:?}"
        );
        let out = run(gearbox(&list, &["workers", "--all", "--json"]), b"").await;
        let all = json(&out.stdout);
        assert!(all.as_array().unwrap().len() >= 3, "{all}");

        let out = run(gearbox(&list, &["jobs", "--json"]), b"").await;
        let jobs = json(&out.stdout);
        assert_eq!(jobs.as_array().unwrap().len(), 3, "{jobs}");
        assert!(jobs
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["background"] == true));
        let out = run(gearbox(&list, &["jobs", "--unique"]), b"").await;
        assert!(
            out.stdout.starts_with("UNIQUE\n") && out.stdout.contains("\nv\n"),
            "{out:?}"
        );
        let out = run(gearbox(&list, &["jobs"]), b"").await;
        // Column widths depend on the handle's length (gearmand puts its host name in it).
        let row: Vec<&str> = out
            .stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|cells| cells.first() == Some(&h.as_str()))
            .unwrap_or_default();
        assert_eq!(row, [h.as_str(), "0", "background", "no"], "{who}: {out:?}");

        let out = run(gearbox(&list, &["cancel", &h]), b"").await;
        assert_eq!(out.stdout, format!("cancelled {h} on {list}\n"));
        let out = run(gearbox(&list, &["cancel", "H:none:1"]), b"").await;
        assert_eq!(out.status.code(), Some(1));
        assert!(
            out.stderr.contains("no server knows job H:none:1"),
            "{out:?}"
        );

        let out = run(gearbox(&list, &["maxqueue", "q", "2"]), b"").await;
        assert_eq!(out.stdout, format!("{list}: maxqueue q: 2\n"));
        let out = run(gearbox(&list, &["submit", "-b", "q", "more"]), b"").await;
        assert_eq!(out.status.code(), Some(1), "{who}: queue full: {out:?}");
        assert!(out.stderr.contains("full"), "{out:?}");
        let out = run(gearbox(&list, &["maxqueue", "q", "--json"]), b"").await;
        assert_eq!(json(&out.stdout)["limits"], serde_json::json!([]));
        let out = run(gearbox(&list, &["maxqueue", "q", "1", "2"]), b"").await;
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        drop(w);
    }
}

/// Several servers: a SERVER column; an unreachable one is reported, the others shown.
#[tokio::test]
async fn many_servers_and_an_unreachable_one() {
    let servers = Server::both().await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut names = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        let mut c = s.raw().await;
        submit_bg(&mut c, &format!("f{i}"), "", "x").await;
        names.push(s.list());
    }
    names.push(dead.clone());
    let list = names.join(",");
    let out = run(gearbox(&list, &["status"]), b"").await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr
            .starts_with(&format!("gearbox: {dead}: no server reachable")),
        "{out:?}"
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("SERVER") && lines.len() == servers.len() + 1,
        "{lines:?}"
    );
    for (i, s) in servers.iter().enumerate() {
        assert!(lines[i + 1].starts_with(&s.list()) && lines[i + 1].contains(&format!("f{i}")));
    }
}

/// `work` runs a command per job for `submit`; failures, background, `--at`, stdin.
#[tokio::test]
async fn submit_and_work() {
    for s in Server::both().await {
        let who = s.name();
        let list = s.list();
        let worker = Proc::spawn_cmd(gearbox(
            &list,
            &["work", "up", "--count", "3", "--", "tr", "a-z", "A-Z"],
        ));
        let out = run(gearbox(&list, &["submit", "up", "hello"]), b"").await;
        assert_eq!(
            (out.status.code(), out.stdout.as_str()),
            (Some(0), "HELLO"),
            "{who}: {out:?}"
        );
        let out = run(gearbox(&list, &["submit", "up"]), b"from stdin").await;
        assert_eq!(out.stdout, "FROM STDIN");
        let out = run(
            gearbox(
                &list,
                &["--json", "submit", "--high", "-u", "k1", "up", "j"],
            ),
            b"",
        )
        .await;
        let v = json(&out.stdout);
        assert_eq!(
            (v["status"].as_str(), v["result"].as_str()),
            (Some("complete"), Some("J")),
            "{v}"
        );
        let wout = worker.finish().await;
        wout.assert_success("gearbox work --count 3");
        assert_eq!(wout.stderr.lines().count(), 3, "one line per job: {wout:?}");

        let cmd = [
            "work",
            "bad",
            "--count",
            "1",
            "--json",
            "--",
            "sh",
            "-c",
            "echo oops; exit 3",
        ];
        let worker = Proc::spawn_cmd(gearbox(&list, &cmd));
        let out = run(gearbox(&list, &["submit", "bad", "x"]), b"").await;
        assert_eq!(
            (out.status.code(), out.stdout.as_str()),
            (Some(1), "oops\n"),
            "{out:?}"
        );
        assert!(out.stderr.contains("failed (WORK_FAIL)"), "{out:?}");
        let wout = worker.finish().await;
        let line = json(wout.stdout.trim());
        assert_eq!(
            (line["ok"].as_bool(), line["exit_code"].as_i64()),
            (Some(false), Some(3))
        );

        let out = run(
            gearbox(&list, &["submit", "-b", "--low", "later", "p"]),
            b"",
        )
        .await;
        out.assert_success("submit -b");
        let handle = out.stdout.trim_end().to_string();
        assert!(handle.starts_with("H:"), "{out:?}");
        let out = run(
            gearbox(
                &list,
                &[
                    "--json",
                    "submit",
                    "--at",
                    "2999-01-01T00:00:00Z",
                    "later",
                    "p",
                ],
            ),
            b"",
        )
        .await;
        let at = json(&out.stdout);
        assert!(
            at["handle"].as_str().is_some_and(|h| h.starts_with("H:")),
            "{at}"
        );
        let out = run(gearbox(&list, &["status", "--priority"]), b"").await;
        assert!(
            out.stdout.contains("later        0       1    1        0"),
            "{who}: {out:?}"
        );
    }
}

/// Progress and data chunks as they arrive: from a scripted worker, without a terminal.
#[tokio::test]
async fn submit_shows_progress_data_and_warnings() {
    for s in Server::both().await {
        let mut p = Proc::spawn_cmd(gearbox(&s.list(), &["submit", "prog", "in"]));
        let mut w = s.raw().await;
        let (h, _) = raw_worker_take(&mut w, "prog").await;
        let d = |x: &str| Bytes::copy_from_slice(x.as_bytes());
        w.send(&Request::WorkStatus {
            handle: h.clone(),
            numerator: d("1"),
            denominator: d("2"),
        })
        .await;
        w.send(&Request::WorkData {
            handle: h.clone(),
            data: d("chunk\n"),
        })
        .await;
        // The chunk is on standard output before the job ends.
        assert_eq!(p.read_line().await.as_deref(), Some("chunk\n"));
        w.send(&Request::WorkWarning {
            handle: h.clone(),
            data: d("careful"),
        })
        .await;
        w.send(&Request::WorkComplete {
            handle: h,
            data: d("done"),
        })
        .await;
        let out = p.finish().await;
        out.assert_success("submit");
        assert_eq!(out.stdout, "done");
        assert_eq!(
            out.stderr,
            "progress 1/2 (50%)\nwarning: careful\n",
            "{}",
            s.name()
        );
    }
}

/// `watch`: frames as tables or JSON lines; `q` on standard input quits.
#[tokio::test]
async fn watch_draws_frames_and_quits_on_q() {
    for s in Server::both().await {
        let list = s.list();
        let mut w = s.raw().await;
        w.send(&Request::SetClientId { id: b("watcher") }).await;
        w.send(&Request::CanDo {
            function: b("seen"),
        })
        .await;
        w.assert_quiet().await;
        let out = run(gearbox(&list, &["watch", "--iterations", "1"]), b"").await;
        out.assert_success("watch");
        assert!(
            out.stdout.starts_with("gearbox watch: 1 server(s)"),
            "{out:?}"
        );
        assert!(
            out.stdout.contains(&format!(
                "{list}  seen           0     0       0    0        0        1"
            )),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout
                .contains(&format!("{list}  watcher    127.0.0.1  seen")),
            "{}",
            out.stdout
        );
        let out = run(
            gearbox(
                &list,
                &["--json", "watch", "-n", "0.05", "--iterations", "2"],
            ),
            b"",
        )
        .await;
        let frames: Vec<Value> = out.stdout.lines().map(json).collect();
        assert_eq!(frames.len(), 2);
        assert_eq!(
            frames[1]["servers"][0]["workers"][0]["client_id"],
            "watcher"
        );

        let mut p = Proc::spawn_cmd(gearbox(&list, &["--json", "watch", "-n", "0.05"]));
        assert!(p.read_line().await.is_some(), "a first frame");
        p.write_stdin(b"q").await;
        p.finish().await.assert_success("watch quits on q");

        let mut p = Proc::spawn_cmd(gearbox(&list, &["watch", "-n", "0.05"]));
        assert!(p.read_line().await.is_some(), "a first frame");
        let pid = i32::try_from(p.id().expect("running")).unwrap();
        // SAFETY: sends SIGINT to our own child process.
        unsafe { libc::kill(pid, libc::SIGINT) };
        p.finish().await.assert_success("watch quits on Ctrl-C");
    }
}

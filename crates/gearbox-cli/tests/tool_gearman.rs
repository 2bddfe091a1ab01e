//! The `gearman` drop-in against the real `/usr/bin/gearman`: the same output for the same
//! events (data, progress, warnings, failures, `-P`, `-v`, `-n`/`-N`), the same usage and
//! error texts and exit statuses, and interoperation in both directions (our `gearman -w`
//! with the C client, the C `gearman -w` with our client), on gearbox and gearmand.

mod tool_support;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use gearbox_proto::Request;
use gearbox_testkit::process::{Finished, Proc};
use tool_support::{
    assert_same, c_tool, command, no_pid, our, raw_worker_take, run, submit_bg, Server,
};

/// Both `gearman` programs: the C one and ours.
fn tools() -> Option<[PathBuf; 2]> {
    Some([c_tool("gearman")?, our("gearman")])
}

fn with_server<'a>(s: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["-h", "127.0.0.1", "-p", s];
    v.extend_from_slice(args);
    v
}

fn gearman(tool: &Path, port: &str, args: &[&str]) -> Proc {
    let mut c = command(tool, "gearman", &with_server(port, args));
    c.kill_on_drop(true);
    Proc::spawn_cmd(c)
}

/// Replaces what legitimately differs between two runs: `pid(N)` and job handles.
fn normal(s: &str) -> String {
    no_pid(s)
        .split("H:")
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part.to_string()
            } else {
                let end = part.find(['\n', ' ']).unwrap_or(part.len());
                format!("HANDLE{}", &part[end..])
            }
        })
        .collect()
}

fn assert_same_normal(what: &str, c: &Finished, ours: &Finished) {
    assert_eq!(
        (c.status.code(), normal(&c.stdout), normal(&c.stderr)),
        (
            ours.status.code(),
            normal(&ours.stdout),
            normal(&ours.stderr)
        ),
        "{what}: the C tool (left) and ours (right) differ"
    );
}

#[tokio::test]
async fn usage_and_local_errors_match() {
    let Some(tools) = tools() else { return };
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port().to_string()
    };
    let cases: Vec<Vec<&str>> = vec![
        vec![],
        vec!["-H"],
        vec!["-f", "x", "-H"],
        vec!["-v", "-b", "-N", "-w", "-f", "x", "-H"],
        vec!["-n", "-f", "x", "-H"],
        vec!["-f", "x", "-z"],
        vec!["--help"],
        vec!["-f", "x", "-u"],
        vec!["-w"],
        vec!["-h", "127.0.0.1", "-p", &dead, "-f", "x", "hi"],
        vec!["-h", "127.0.0.1", "-p", &dead, "-b", "-f", "x", "hi"],
        vec!["-h", "nonexistent.invalid", "-f", "x", "hi"],
        vec!["-h", "nonexistent.invalid", "-w", "-f", "x"],
        vec!["-h", "127.0.0.1", "-p", &dead, "-w", "-c", "1", "-f", "x"],
    ];
    for args in &cases {
        let [c, o] = &tools;
        let theirs = run(command(c, "gearman", args), b"").await;
        let ours = run(command(o, "gearman", args), b"").await;
        assert_same_normal(&format!("gearman {args:?}"), &theirs, &ours);
    }
    let [c, o] = &tools;
    let env = |tool: &Path| {
        let mut cmd = command(tool, "gearman", &["-b", "-f", "x", "hi"]);
        cmd.env("GEARMAN_SERVER", "nonexistent.invalid:abc");
        run(cmd, b"")
    };
    let (theirs, ours) = (env(c).await, env(o).await);
    assert_same_normal("GEARMAN_SERVER that does not resolve", &theirs, &ours);
}

/// A scripted raw worker sends data, progress, a warning and the result (or a failure); the
/// two clients must print the same bytes, in the same order, with each flag.
#[tokio::test]
async fn client_output_matches_for_every_event() {
    let Some(tools) = tools() else { return };
    for s in Server::both().await {
        let port = s.port();
        let flag_sets: [&[&str]; 4] = [&[], &["-P"], &["-v"], &["-P", "-v"]];
        for (k, flags) in flag_sets.iter().enumerate() {
            for fail in [false, true] {
                let mut outs = Vec::new();
                for (i, tool) in tools.iter().enumerate() {
                    let f = format!("ev{k}{}{i}", u8::from(fail));
                    let mut args: Vec<&str> = flags.to_vec();
                    args.extend(["-f", &f, "payload"]);
                    let client = gearman(tool, &port, &args);
                    let mut w = s.raw().await;
                    let (h, data) = raw_worker_take(&mut w, &f).await;
                    assert_eq!(data, "payload");
                    let d = |x: &str| Bytes::copy_from_slice(x.as_bytes());
                    w.send(&Request::WorkData {
                        handle: h.clone(),
                        data: d("D1\n"),
                    })
                    .await;
                    w.send(&Request::WorkStatus {
                        handle: h.clone(),
                        numerator: d("1"),
                        denominator: d("3"),
                    })
                    .await;
                    w.send(&Request::WorkWarning {
                        handle: h.clone(),
                        data: d("W1\n"),
                    })
                    .await;
                    w.send(&Request::WorkStatus {
                        handle: h.clone(),
                        numerator: d("2"),
                        denominator: d("3"),
                    })
                    .await;
                    w.send(&Request::WorkData {
                        handle: h.clone(),
                        data: d("D2"),
                    })
                    .await;
                    if fail {
                        w.send(&Request::WorkFail { handle: h }).await;
                    } else {
                        w.send(&Request::WorkComplete {
                            handle: h,
                            data: d("R"),
                        })
                        .await;
                    }
                    let mut out = client.finish().await;
                    out.stdout = out.stdout.replace(&f, "FN");
                    out.stderr = out.stderr.replace(&f, "FN");
                    outs.push(out);
                }
                let what = format!("{}: flags {flags:?}, fail {fail}", s.name());
                assert_same_normal(&what, &outs[0], &outs[1]);
            }
        }
    }
}

/// Our `gearman -w` serves the C client, the C worker serves our client: results,
/// failures (non-zero exit: output as data, then `Job failed`, exit 1), and a worker
/// without a command (prints the payload).
#[tokio::test]
async fn workers_and_clients_interoperate_both_ways() {
    let Some([c, o]) = tools() else { return };
    for s in Server::both().await {
        let who = s.name();
        let port = s.port();
        for (worker, client) in [(&o, &c), (&c, &o)] {
            let w = gearman(worker, &port, &["-w", "-c", "2", "-f", "rev", "--", "rev"]);
            for word in ["hello", "abc"] {
                let out = gearman(client, &port, &["-f", "rev", word]).finish().await;
                out.assert_success("client");
                let want: String = word.chars().rev().collect();
                assert_eq!(
                    out.stdout.trim_end(),
                    want,
                    "{who}: {worker:?} -> {client:?}"
                );
            }
            w.finish().await.assert_success("worker -c 2");

            let fail = [
                "-w",
                "-c",
                "1",
                "-f",
                "bad",
                "--",
                "sh",
                "-c",
                "echo partial; exit 3",
            ];
            let w = gearman(worker, &port, &fail);
            let out = gearman(client, &port, &["-f", "bad", "x"]).finish().await;
            assert_eq!(
                (out.status.code(), out.stdout.as_str(), out.stderr.as_str()),
                (Some(1), "partial\n", "Job failed\n"),
                "{who}: {worker:?} -> {client:?}"
            );
            let wout = w.finish().await;
            assert_eq!(
                (wout.status.code(), wout.stderr.as_str()),
                (
                    Some(0),
                    "gearman: gearman_worker_work : GEARMAN_UNKNOWN_STATE\n"
                )
            );

            let w = gearman(worker, &port, &["-w", "-c", "1", "-f", "show"]);
            let out = gearman(client, &port, &["-f", "show", "payload!"])
                .finish()
                .await;
            assert_eq!((out.status.code(), out.stdout.as_str()), (Some(0), ""));
            assert_eq!(w.finish().await.stdout, "payload!");
        }
    }
}

/// `-n` (one job per line) and `-N -P` (newline stripped, output prefixed) with the C
/// worker: both clients print the same.
#[tokio::test]
async fn one_job_per_line() {
    let Some(tools) = tools() else { return };
    for s in Server::both().await {
        let port = s.port();
        let w = gearman(
            &tools[0],
            &port,
            &["-w", "-c", "18", "-f", "up", "--", "tr", "a-z", "A-Z"],
        );
        for flags in [&["-n"][..], &["-N", "-P"], &["-n", "-P"]] {
            let mut outs = Vec::new();
            for tool in &tools {
                let mut args = flags.to_vec();
                args.extend(["-f", "up"]);
                let cmd = command(tool, "gearman", &with_server(&port, &args));
                outs.push(run(cmd, b"abc\ndef\nxy").await);
            }
            assert_same(&format!("{}: {flags:?}", s.name()), &outs[0], &outs[1]);
        }
        w.finish().await.assert_success("C worker");
    }
}

/// `-b` at `-I`/default/`-L`, `-u` coalescing, `-s`, `-v` with `-b`: the server ends up with
/// the same jobs whichever tool submitted them, and the tools print the same.
#[tokio::test]
async fn background_priorities_uniques_and_no_stdin() {
    let Some(tools) = tools() else { return };
    for s in Server::both().await {
        let port = s.port();
        let mut listings = Vec::new();
        for (i, tool) in tools.iter().enumerate() {
            let f = format!("bg{i}");
            let runs: [&[&str]; 6] = [
                &["-b", "-L", "low"],
                &["-b", "normal"],
                &["-b", "-I", "-v", "high"],
                &["-b", "-u", "same", "first"],
                &["-b", "-u", "same", "second"],
                &["-b", "-s"],
            ];
            let mut printed = String::new();
            for r in runs {
                let mut args = vec!["-f", f.as_str()];
                args.extend_from_slice(r);
                let out = run(command(tool, "gearman", &with_server(&port, &args)), b"").await;
                out.assert_success("gearman -b");
                printed.push_str(&normal(&out.stdout));
            }
            assert_eq!(printed, "Task created: HANDLE\n", "{}: {tool:?}", s.name());
            let mut c = s.raw().await;
            let prio = c.admin_list("prioritystatus").await;
            let line = prio.lines().find(|l| l.starts_with(&f)).unwrap_or_default();
            listings.push(line.replacen(&f, "FN", 1));
        }
        // HIGH 1, NORMAL 3 (normal, the coalesced "same", -s), LOW 1.
        assert_eq!(listings, vec!["FN\t1\t3\t1\t0"; 2], "{}", s.name());
    }
}

/// Our worker: `-c` leaves later jobs queued; `-n` sends each output line once as data.
#[tokio::test]
async fn our_worker_counts_jobs_and_streams_lines() {
    let Some([c, o]) = tools() else { return };
    for s in Server::both().await {
        let port = s.port();
        let mut raw = s.raw().await;
        for d in ["1", "2", "3"] {
            submit_bg(&mut raw, "count", "", d).await;
        }
        gearman(&o, &port, &["-w", "-c", "2", "-f", "count", "--", "cat"])
            .finish()
            .await
            .assert_success("gearman -w -c 2");
        s.wait_admin("status", "one job left", |st| {
            st.contains("count\t1\t0\t0\n")
        })
        .await;

        let w = gearman(
            &o,
            &port,
            &[
                "-w", "-c", "1", "-n", "-f", "lines", "--", "printf", "a\\nb\\n",
            ],
        );
        let out = gearman(&c, &port, &["-f", "lines", "x"]).finish().await;
        // The C worker would send "a\n", then "a\nb\n" (it never clears its line buffer).
        assert_eq!(out.stdout, "a\nb\n", "{}", s.name());
        w.finish().await.assert_success("gearman -w -n");
    }
}

/// `-t`: a job nobody takes times out with libgearman's message (exit status 0); a worker
/// that gets no job prints the message per timeout and counts it against `-c`.
#[tokio::test]
async fn timeouts_match() {
    let Some(tools) = tools() else { return };
    for s in Server::both().await {
        let port = s.port();
        for args in [
            &["-t", "200", "-f", "nobody", "hi"][..],
            &["-w", "-t", "200", "-c", "2", "-f", "idle"],
        ] {
            let mut outs = Vec::new();
            for tool in &tools {
                outs.push(run(command(tool, "gearman", &with_server(&port, args)), b"").await);
            }
            assert_same_normal(&format!("{}: {args:?}", s.name()), &outs[0], &outs[1]);
            assert!(outs[1].stderr.contains("GEARMAN_TIMEOUT"), "{:?}", outs[1]);
        }
    }
}

/// `-i PIDFILE` holds the worker's pid while it runs and is removed at exit;
/// `GEARMAN_SERVER` replaces `-h`/`-p`.
#[tokio::test]
async fn pid_file_and_server_from_the_environment() {
    let Some([c, o]) = tools() else { return };
    for s in Server::both().await {
        let pid_file = std::env::temp_dir().join(format!(
            "gearbox-tool-test-{}-{}.pid",
            std::process::id(),
            s.name()
        ));
        let path = pid_file.to_str().unwrap();
        let mut cmd = command(
            &o,
            "gearman",
            &["-w", "-c", "1", "-i", path, "-f", "pf", "--", "cat"],
        );
        cmd.env("GEARMAN_SERVER", s.list()).kill_on_drop(true);
        let w = Proc::spawn_cmd(cmd);
        let pid = w.id().expect("running");
        s.wait_workers("pf", 1).await;
        assert_eq!(
            std::fs::read_to_string(&pid_file).unwrap(),
            format!("{pid}\n")
        );
        let mut client = command(&c, "gearman", &["-f", "pf", "via env"]);
        client.env("GEARMAN_SERVER", s.list());
        assert_eq!(run(client, b"").await.stdout, "via env");
        w.finish().await.assert_success("gearman -w -i");
        assert!(!pid_file.exists(), "pid file removed at exit");
    }
}

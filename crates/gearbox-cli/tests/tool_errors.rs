//! Every error path of the `gearman` and `gearadmin` drop-ins against the C tools, byte for
//! byte: each case runs `/usr/bin/gearman` (or `gearadmin`) and ours with the same arguments
//! and environment against the same target (a scripted fake server, a real gearbox/gearmand,
//! a closed port or a name that does not resolve) and requires the same standard output,
//! standard error and exit status (or signal). Only `pid(N)` in libgearman's messages is
//! normalised.

mod tool_support;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use bytes::Bytes;
use gearbox_proto::Response;
use gearbox_testkit::process::Finished;
use tool_support::fake::{created, error, Fake, Reply, Script};
use tool_support::{c_tool, command, no_pid, our, run, submit_bg, Server};

/// One case: arguments, environment, standard input.
struct Case<'a> {
    args: Vec<String>,
    env: Vec<(&'a str, String)>,
}

fn case<'a>(args: &[&str], env: &[(&'a str, &str)]) -> Case<'a> {
    Case {
        args: args.iter().map(|s| s.to_string()).collect(),
        env: env.iter().map(|(k, v)| (*k, v.to_string())).collect(),
    }
}

type Outcome = (Option<i32>, Option<i32>, String, String);

fn outcome(f: &Finished) -> Outcome {
    (
        f.status.code(),
        f.status.signal(),
        no_pid(&f.stdout),
        no_pid(&f.stderr),
    )
}

/// Runs `tool` (the C one and ours) for `c`; returns both outcomes.
async fn both(tools: &[PathBuf; 2], name: &str, c: &Case<'_>) -> [Outcome; 2] {
    let mut outs = Vec::new();
    for tool in tools {
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let mut cmd = command(tool, name, &args);
        for (k, v) in &c.env {
            cmd.env(k, v);
        }
        no_core_dumps(&mut cmd);
        outs.push(outcome(&run(cmd, b"").await));
    }
    [outs[0].clone(), outs[1].clone()]
}

/// The C tool aborts on a bad `GEARMAN_SERVERS` (and so do we): no core files.
fn no_core_dumps(cmd: &mut tokio::process::Command) {
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            Ok(())
        });
    }
}

async fn assert_cases(tools: &[PathBuf; 2], name: &str, cases: &[Case<'_>]) {
    for c in cases {
        let [theirs, ours] = both(tools, name, c).await;
        assert_eq!(
            theirs, ours,
            "{name} {:?} env {:?}: the C tool (left) and ours (right) differ",
            c.args, c.env
        );
    }
}

fn gearman_tools() -> Option<[PathBuf; 2]> {
    Some([c_tool("gearman")?, our("gearman")])
}

/// A port nobody listens on.
fn dead_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port().to_string()
}

fn at(port: &str, rest: &[&str]) -> Vec<String> {
    let mut v = vec![
        "-h".to_string(),
        "127.0.0.1".into(),
        "-p".into(),
        port.into(),
    ];
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

fn work(kind: fn(Bytes, Bytes) -> Response, data: &str) -> Response {
    kind(
        Bytes::from_static(b"HANDLE"),
        Bytes::copy_from_slice(data.as_bytes()),
    )
}

/// ERROR packets (known code, unknown code, a code libgearman keeps no message for, SUCCESS),
/// a connection closed after the submit, WORK_FAIL, WORK_EXCEPTION, a background job whose
/// connection closes after JOB_CREATED, tasks libgearman refuses, and a `-t` timeout.
#[tokio::test]
async fn gearman_client_errors_from_the_server() {
    let Some(tools) = gearman_tools() else { return };
    let exception = |h, d| Response::WorkException { handle: h, data: d };
    let scripted: Vec<(Reply, Vec<&[&str]>)> = vec![
        (
            Reply::Packets(vec![error("QUEUE_ERROR", "Job queue is full")]),
            vec![&["-f", "x", "hi"], &["-b", "-f", "x", "-f", "y", "a", "b"]],
        ),
        (
            Reply::Packets(vec![error("NO_SUCH_CODE", "some text")]),
            vec![&["-f", "x", "hi"]],
        ),
        (
            Reply::Packets(vec![error("WORK_FAIL", "ignored")]),
            vec![&["-f", "x", "hi"]],
        ),
        (
            Reply::Packets(vec![error("SUCCESS", "ignored")]),
            vec![&["-f", "x", "hi"]],
        ),
        (
            Reply::Packets(vec![created(), error("JOB_NOT_FOUND", "gone")]),
            vec![&["-v", "-f", "x", "hi"]],
        ),
        (
            Reply::ThenClose(vec![]),
            vec![&["-f", "x", "a", "b"], &["-b", "-f", "x", "hi"]],
        ),
        (
            Reply::ThenClose(vec![created()]),
            vec![&["-v", "-b", "-f", "x", "hi"], &["-f", "x", "hi"]],
        ),
        (
            Reply::Packets(vec![
                created(),
                Response::WorkFail {
                    handle: Bytes::from_static(b"HANDLE"),
                },
            ]),
            vec![&["-f", "x", "hi"], &["-P", "-f", "x", "hi"]],
        ),
        (
            Reply::Packets(vec![created(), work(exception, "boom")]),
            vec![&["-f", "x", "hi"], &["-P", "-f", "x", "hi"]],
        ),
        (
            Reply::Packets(vec![created()]),
            vec![&["-t", "200", "-f", "x", "hi"]],
        ),
    ];
    let long_unique = "u".repeat(65);
    let long_function = "f".repeat(513);
    for (reply, runs) in scripted {
        let fake = Fake::start(Script::submit(reply.clone())).await;
        let port = fake.port();
        let mut cases: Vec<Case> = runs
            .iter()
            .map(|r| Case {
                args: at(&port, r),
                env: vec![],
            })
            .collect();
        if matches!(&reply, Reply::Packets(p) if matches!(p[..], [Response::Error { .. }])) {
            // Refused tasks are reported before the others run.
            cases.push(Case {
                args: at(&port, &["-b", "-u", &long_unique, "-f", "x", "hi"]),
                env: vec![],
            });
            cases.push(Case {
                args: at(&port, &["-f", &long_function, "-f", "x", "hi"]),
                env: vec![],
            });
        }
        assert_cases(&tools, "gearman", &cases).await;
    }
}

/// QUEUE_ERROR from real servers: a function's queue is over its limit (three jobs queued,
/// then maxqueue 1), so each tool's background and foreground submits are refused with the
/// server's text.
#[tokio::test]
async fn gearman_queue_full_on_real_servers() {
    let Some(tools) = gearman_tools() else { return };
    for s in Server::both().await {
        let mut conn = s.raw().await;
        for data in ["1", "2", "3"] {
            submit_bg(&mut conn, "full", "", data).await;
        }
        assert_eq!(conn.admin_line("maxqueue full 1").await.trim_end(), "OK");
        let port = s.port();
        let cases = [
            Case {
                args: at(&port, &["-b", "-f", "full", "second"]),
                env: vec![],
            },
            Case {
                args: at(&port, &["-t", "2000", "-f", "full", "second"]),
                env: vec![],
            },
        ];
        assert_cases(&tools, "gearman", &cases).await;
        let [theirs, _] = both(&tools, "gearman", &cases[0]).await;
        assert!(
            theirs.3.contains("(GEARMAN_QUEUE_ERROR) QUEUE_ERROR:"),
            "{}: {theirs:?}",
            s.name()
        );
    }
}

/// The server list from the environment: `GEARMAN_SERVERS` is added before `GEARMAN_SERVER`
/// or `-h`/`-p` (the first added is the one named when none answers), `GEARMAN_SERVER`
/// replaces `-h`/`-p` even when empty, lists split as libgearman splits them (no IPv6
/// brackets), and a `GEARMAN_SERVERS` that does not resolve kills the C tool with
/// `std::runtime_error` and SIGABRT. Also a pid file that cannot be written (exit 1, silent).
#[tokio::test]
async fn gearman_server_lists_from_the_environment() {
    let Some(tools) = gearman_tools() else { return };
    let (d1, d2) = (dead_port(), dead_port());
    let dead1 = format!("127.0.0.1:{d1}");
    let dead2 = format!("127.0.0.1:{d2}");
    let both_dead = format!("{dead1},{dead2}");
    let bracketed = format!("[::1]:{d1}");
    let half_bad = format!("{dead1},nonexistent.invalid");
    let e = |k: &'static str, v: &str| vec![(k, v.to_string())];
    let cases = vec![
        Case {
            args: vec!["-f".into(), "x".into(), "hi".into()],
            env: e("GEARMAN_SERVERS", &dead1),
        },
        Case {
            args: at(&d2, &["-f", "x", "hi"]),
            env: e("GEARMAN_SERVERS", &dead1),
        },
        Case {
            args: at(&d2, &["-b", "-f", "x", "hi"]),
            env: e("GEARMAN_SERVER", &both_dead),
        },
        Case {
            args: at(&d2, &["-f", "x", "hi"]),
            env: vec![
                ("GEARMAN_SERVERS", dead1.clone()),
                ("GEARMAN_SERVER", dead2.clone()),
            ],
        },
        Case {
            args: at(&d2, &["-f", "x", "hi"]),
            env: e("GEARMAN_SERVER", &bracketed),
        },
        Case {
            args: at(&d2, &["-f", "x", "hi"]),
            env: e("GEARMAN_SERVER", "nonexistent.invalid:99999"),
        },
        Case {
            args: at(&d2, &["-w", "-c", "1", "-f", "x"]),
            env: e("GEARMAN_SERVER", "nonexistent.invalid"),
        },
        Case {
            args: at(&d2, &["-w", "-c", "2", "-f", "x"]),
            env: e("GEARMAN_SERVERS", &dead1),
        },
        Case {
            args: vec!["-f".into(), "x".into(), "hi".into()],
            env: e("GEARMAN_SERVERS", &half_bad),
        },
        Case {
            args: vec!["-w".into(), "-f".into(), "x".into()],
            env: e("GEARMAN_SERVERS", "nonexistent.invalid"),
        },
        Case {
            args: at(&d2, &["-h", "nonexistent.invalid", "-w", "-f", "x"]),
            env: vec![],
        },
        Case {
            args: at(
                &d2,
                &["-i", "/nonexistent/dir/gearman.pid", "-f", "x", "hi"],
            ),
            env: vec![],
        },
    ];
    assert_cases(&tools, "gearman", &cases).await;
    let [theirs, _] = both(&tools, "gearman", &cases[9]).await;
    assert_eq!(theirs.1, Some(libc::SIGABRT), "{theirs:?}");
}

/// `gearman -w`: a server answering GRAB_JOB_ALL with ERROR gives one UNEXPECTED_PACKET
/// message per round, each counted against `-c`; a function name libgearman refuses (empty,
/// longer than 512 bytes) stops the worker before it connects, exit status 1.
#[tokio::test]
async fn gearman_worker_errors() {
    let Some(tools) = gearman_tools() else { return };
    let fake = Fake::start(Script {
        submit: Reply::Nothing,
        grab: Reply::Packets(vec![error("QUEUE_ERROR", "no")]),
        admin: None,
    })
    .await;
    let port = fake.port();
    let long_function = "f".repeat(513);
    let cases = [
        Case {
            args: at(&port, &["-w", "-c", "2", "-f", "x"]),
            env: vec![],
        },
        Case {
            args: at(&port, &["-w", "-c", "1", "-f", "x", "-f", &long_function]),
            env: vec![],
        },
        Case {
            args: at(&port, &["-w", "-c", "1", "-f", ""]),
            env: vec![],
        },
    ];
    assert_cases(&tools, "gearman", &cases).await;
}

/// `gearadmin`: a server that closes the connection instead of answering, or answers ERR to
/// everything; an option gearadmin 1.1.20 does not have; the environment is ignored.
#[tokio::test]
async fn gearadmin_errors() {
    let Some(c) = c_tool("gearadmin") else { return };
    let tools = [c, our("gearadmin")];
    let closing = Fake::start(Script::submit(Reply::Nothing)).await;
    let erring = Fake::start(Script {
        submit: Reply::Nothing,
        grab: Reply::Nothing,
        admin: Some(b"ERR UNKNOWN_COMMAND Unknown+server+command\r\n"),
    })
    .await;
    let dead = dead_port();
    let mut cases = Vec::new();
    for (host, port) in [("127.0.0.1", closing.port()), ("localhost", closing.port())] {
        for op in [
            &["--drop-function", "f"][..],
            &["--cancel-job", "H:x:1"],
            &["--create-function", "f"],
            &["--status"],
        ] {
            let mut args = vec!["-h", host, "-p", &port];
            args.extend_from_slice(op);
            cases.push(case(&args, &[]));
        }
    }
    let port = erring.port();
    for op in [
        &["--drop-function", "f"][..],
        &["--show-unique-jobs"],
        &["--status", "--getpid"],
        &["--server-version", "--workers"],
    ] {
        let mut args = vec!["-h", "127.0.0.1", "-p", &port];
        args.extend_from_slice(op);
        cases.push(case(&args, &[]));
    }
    let live = format!("127.0.0.1:{port}");
    cases.push(case(&["--shutdown"], &[]));
    cases.push(case(
        &["-h", "127.0.0.1", "-p", &dead, "--status"],
        &[("GEARMAN_SERVERS", &live), ("GEARMAN_SERVER", &live)],
    ));
    assert_cases(&tools, "gearadmin", &cases).await;
}

/// gearmand's stand-in for a WORK_EXCEPTION (a WORK_FAIL whose handle ends in a stray NUL)
/// leaves the C client waiting forever; ours reports the job as failed (a deliberate
/// difference, docs/differences.md).
#[tokio::test]
async fn gearman_malformed_fail_is_a_failure() {
    let fake = Fake::start(Script::submit(Reply::Packets(vec![
        created(),
        Response::WorkFail {
            handle: Bytes::from_static(b"HANDLE\0"),
        },
    ])))
    .await;
    let port = fake.port();
    let args = ["-h", "127.0.0.1", "-p", &port, "-f", "x", "hi"];
    let out = run(command(our("gearman"), "gearman", &args), b"").await;
    assert_eq!(
        (out.status.code(), out.stdout.as_str(), out.stderr.as_str()),
        (Some(1), "", "Job failed\n")
    );
}

/// A worker command that cannot be started fails the job, with the C tool's `perror` words
/// (the C tool prints nothing and lets its forked child carry on as a second worker).
#[tokio::test]
async fn gearman_worker_command_that_cannot_start() {
    let server = gearbox_testkit::TestServer::start().await;
    let port = server.port();
    let at = |rest: &[&'static str]| {
        let mut v = vec!["-h", "127.0.0.1", "-p", port.as_str()];
        v.extend_from_slice(rest);
        v
    };
    let worker_args = at(&["-w", "-c", "1", "-f", "nocmd", "--", "/nonexistent/cmd"]);
    let mut worker = command(our("gearman"), "gearman", &worker_args);
    worker.kill_on_drop(true);
    let worker = gearbox_testkit::process::Proc::spawn_cmd(worker);
    let client = run(
        command(our("gearman"), "gearman", &at(&["-f", "nocmd", "x"])),
        b"",
    )
    .await;
    assert_eq!(
        (
            client.status.code(),
            client.stdout.as_str(),
            client.stderr.as_str()
        ),
        (Some(1), "", "Job failed\n")
    );
    let w = worker.finish().await;
    assert_eq!(
        (w.status.code(), w.stderr.as_str()),
        (
            Some(0),
            "gearman: execvp (No such file or directory)\n\
             gearman: gearman_worker_work : GEARMAN_UNKNOWN_STATE\n"
        )
    );
}

/// With several servers the job goes where libgearman sends it: the server added last
/// (`-h`/`-p` after `GEARMAN_SERVERS`, the last entry of a list). Each fake names itself in
/// its ERROR text, so the message shows which one was asked.
#[tokio::test]
async fn gearman_asks_the_newest_server_first() {
    let Some(tools) = gearman_tools() else { return };
    let first = Fake::start(Script::submit(Reply::Packets(vec![error(
        "QUEUE_ERROR",
        "first",
    )])))
    .await;
    let second = Fake::start(Script::submit(Reply::Packets(vec![error(
        "QUEUE_ERROR",
        "second",
    )])))
    .await;
    let (a, b) = (first.addr.to_string(), second.addr.to_string());
    let list = format!("{a},{b}");
    let cases = [
        Case {
            args: at(&second.port(), &["-f", "x", "hi"]),
            env: vec![("GEARMAN_SERVERS", a.clone())],
        },
        Case {
            args: vec!["-b".into(), "-f".into(), "x".into(), "hi".into()],
            env: vec![("GEARMAN_SERVER", list.clone())],
        },
        Case {
            args: vec!["-f".into(), "x".into(), "hi".into()],
            env: vec![("GEARMAN_SERVERS", list)],
        },
    ];
    assert_cases(&tools, "gearman", &cases).await;
    let [_, ours] = both(&tools, "gearman", &cases[0]).await;
    assert!(ours.3.contains("QUEUE_ERROR:second"), "{ours:?}");
}

/// SIGTERM ends a `gearman -w` with the signal's status, as the C tool (which has no
/// handler); ours removes its pid file first (the C tool leaves it behind).
#[tokio::test]
async fn gearman_worker_dies_of_sigterm() {
    let Some(tools) = gearman_tools() else { return };
    let server = Server::Gearbox(gearbox_testkit::TestServer::start().await);
    let port = server.port();
    for (i, tool) in tools.iter().enumerate() {
        let pid_file =
            std::env::temp_dir().join(format!("gearbox-sigterm-{}-{i}.pid", std::process::id()));
        let function = format!("sig{i}");
        let path = pid_file.to_str().expect("utf-8 path");
        let args = at(&port, &["-w", "-i", path, "-f", &function]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = command(tool, "gearman", &args);
        cmd.kill_on_drop(true);
        let worker = gearbox_testkit::process::Proc::spawn_cmd(cmd);
        server.wait_workers(&function, 1).await;
        let pid = worker.id().expect("running") as libc::pid_t;
        // SAFETY: signalling our own child, still running (its pid cannot be reused yet).
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let out = worker.finish().await;
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGTERM),
            "{tool:?}: {out:?}"
        );
        assert_eq!(
            pid_file.exists(),
            i == 0,
            "{tool:?}: pid file left only by C"
        );
        let _ = std::fs::remove_file(&pid_file);
    }
}

//! The `gearadmin` drop-in against the real `/usr/bin/gearadmin`: for every flag, both run
//! against the same server (gearbox and gearmand) and must print the same bytes on standard
//! output and standard error and exit with the same status.

mod tool_support;

use gearbox_proto::Request;
use gearbox_testkit::build::b;
use gearbox_testkit::process::Finished;
use tool_support::{assert_same, c_tool, command, our, run, submit_bg, Server};

/// Runs the C gearadmin, then ours, with the same arguments (and `argv[0]`).
async fn both(c: &std::path::Path, server: Option<&Server>, args: &[&str]) -> (Finished, Finished) {
    let mut full: Vec<String> = Vec::new();
    if let Some(s) = server {
        full.extend(["-h".into(), "127.0.0.1".into(), "-p".into(), s.port()]);
    }
    full.extend(args.iter().map(|a| a.to_string()));
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    let theirs = run(command(c, "gearadmin", &full), b"").await;
    let ours = run(command(our("gearadmin"), "gearadmin", &full), b"").await;
    (theirs, ours)
}

/// `--workers` as a sorted set of lines. Line order is the server's (gearmand's changes as
/// connections come and go, e.g. the polling one between the two runs), and the first column
/// is compared as "a number" (see below).
fn workers_lines(s: &str) -> Vec<String> {
    let mut lines: Vec<String> = s
        .lines()
        .map(|l| match l.split_once(' ') {
            // The fd column: gearbox numbers connections its own way, and even gearmand may
            // give each tool's own connection a different descriptor when the previous one's
            // close is still being processed on a loaded machine.
            Some((fd, rest)) if fd.bytes().all(|c| c.is_ascii_digit()) => {
                format!("N {rest}")
            }
            _ => l.to_string(),
        })
        .collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn every_flag_prints_what_gearadmin_prints() {
    let Some(c) = c_tool("gearadmin") else { return };
    for s in Server::both().await {
        let who = s.name();
        let mut w = s.raw().await;
        w.send(&Request::SetClientId { id: b("wid1") }).await;
        for f in ["zeta", "b_fn"] {
            w.send(&Request::CanDo { function: b(f) }).await;
        }
        w.assert_quiet().await;
        let mut cl = s.raw().await;
        submit_bg(&mut cl, "alpha", "u1", "d").await;
        submit_bg(&mut cl, "alpha", "", "d").await;
        let victims = [
            submit_bg(&mut cl, "victim", "v1", "d").await,
            submit_bg(&mut cl, "victim", "v2", "d").await,
        ];
        // Worker, client, and the polling connection itself.
        s.wait_connections(3).await;

        let same = [
            vec!["--status"],
            vec!["--priority-status"],
            vec!["--server-version"],
            vec!["--server-verbose"],
            vec!["--getpid"],
            vec!["--show-jobs"],
            vec!["--show-unique-jobs"],
            vec!["--cancel-job", "H:nowhere:1"],
            vec!["--drop-function", "nosuchfn"],
            vec!["--drop-function", "zeta"],
            vec![
                "--status",
                "--getpid",
                "--server-version",
                "--show-jobs",
                "--priority-status",
            ],
            vec!["--stat"],
            vec!["--host=127.0.0.1", "--getpid"],
            // `-S` is not compared: Debian's C tool ignores it, ours means TLS (tool_tls.rs).
        ];
        for args in &same {
            let (theirs, ours) = both(&c, Some(&s), args).await;
            assert_same(&format!("{who}: gearadmin {args:?}"), &theirs, &ours);
            s.wait_connections(3).await;
        }

        // Each tool's own connection is listed: let the first one's close be processed.
        let port = s.port();
        let args = ["-h", "127.0.0.1", "-p", &port, "--workers"];
        let theirs = run(command(&c, "gearadmin", &args), b"").await;
        s.wait_connections(3).await;
        let ours = run(command(our("gearadmin"), "gearadmin", &args), b"").await;
        let t = workers_lines(&theirs.stdout);
        let o = workers_lines(&ours.stdout);
        assert_eq!(t, o, "{who}: --workers");
        assert!(
            o.iter().any(|l| l.ends_with(" 127.0.0.1 wid1 : b_fn zeta")),
            "{who}: {o:?}"
        );
        assert_eq!(
            (theirs.status.code(), theirs.stderr),
            (ours.status.code(), ours.stderr)
        );
        s.wait_connections(3).await;

        // State-changing flags: each tool acts on its own object, the output must match.
        for (i, tool) in [c.clone(), our("gearadmin")].iter().enumerate() {
            let port = s.port();
            let f = format!("made{i}");
            let run1 = |args: Vec<&str>| {
                let mut all = vec!["-h", "127.0.0.1", "-p", &port];
                all.extend(args);
                run(command(tool, "gearadmin", &all), b"")
            };
            let created = run1(vec!["--create-function", &f]).await;
            assert_eq!(
                (created.stdout.as_str(), created.stderr.as_str()),
                ("OK\n", "")
            );
            let dropped = run1(vec!["--drop-function", &f]).await;
            assert_eq!(
                (dropped.stdout.as_str(), dropped.stderr.as_str()),
                ("OK\n", "")
            );
            let cancelled = run1(vec!["--cancel-job", &victims[i]]).await;
            assert_eq!(
                (cancelled.stdout.as_str(), cancelled.status.code()),
                ("OK\n", Some(0)),
                "{who}: {tool:?}"
            );
        }
        drop(w);
    }
}

/// Usage errors, help, and unreachable servers need no server at all.
#[tokio::test]
async fn usage_errors_and_connection_failures_match() {
    let Some(c) = c_tool("gearadmin") else { return };
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port().to_string()
    };
    let cases: Vec<Vec<&str>> = vec![
        vec![],
        vec!["--help"],
        vec!["--help", "--status"],
        vec!["-x"],
        vec!["--bogus=1"],
        vec!["--s"],
        vec!["--c"],
        vec!["--Status"],
        vec!["--status=1"],
        vec!["--cancel-job"],
        vec!["--status", "--status"],
        vec!["-p", "1", "-p", "2", "--status"],
        vec!["--"],
        vec!["-h", "127.0.0.1", "-p", &dead, "--status"],
        vec!["-h", "nonexistent.invalid", "--status"],
        vec!["-h", "127.0.0.1", "-p", "no-such-service", "--getpid"],
    ];
    for args in &cases {
        let (theirs, ours) = both(&c, None, args).await;
        assert_same(&format!("gearadmin {args:?}"), &theirs, &ours);
    }
}

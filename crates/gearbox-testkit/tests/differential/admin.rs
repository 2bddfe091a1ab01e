//! Admin commands: replies byte for byte, on an idle server and with jobs; maxqueue.

use gearbox_proto::{Priority, Request};

use crate::support_ext::{
    b, bg, can_do, differential, fg, handle_of, normalise_admin, submit, wait_admin, Target,
    Transcript,
};

/// Every admin command and malformed variant on an otherwise idle server.
#[tokio::test]
async fn admin_commands_on_an_idle_server() {
    differential(|t: Target, mut tr: Transcript| async move {
        let mut a = t.connect().await;
        let lines = [
            "status",
            "prioritystatus",
            "workers",
            "show jobs",
            "show unique jobs",
            // Command words are case-insensitive.
            "STATUS",
            "PriorityStatus",
            "SHOW JOBS",
            "Show Unique Jobs",
            // Extra words after argument-less commands are ignored.
            "status extra",
            "workers x",
            "verbose",
            "verbose x",
            // maxqueue: no function is an error; otherwise OK.
            "maxqueue",
            "create function f",
            "maxqueue f",
            "maxqueue f 3",
            "maxqueue f 1 2",
            "maxqueue f 1 2 3",
            "MAXQUEUE f -1",
            // create / drop function.
            "create function",
            "create foo g",
            "create function g h",
            "create function g",
            "CREATE FUNCTION g2",
            "drop",
            "drop function",
            "drop function nope",
            "drop function g2",
            // cancel: fewer than three words is an unknown command, a wrong shape is
            // UNKNOWN_ERROR, an unknown handle UNKNOWN_JOB.
            "cancel",
            "cancel job",
            "cancel job H:nowhere:1",
            "CANCEL JOB H:nowhere:1",
            "cancel foo bar",
            "cancel job a b",
            // show: bare is unknown, anything but `jobs` / `unique jobs` is
            // UNKNOWN_SHOW_ARGUMENTS.
            "show",
            "show foo",
            "show unique",
            "show unique foo",
            "show jobs x",
            "show unique jobs x",
            // Unknown commands echo the command word (not its arguments).
            "bogus",
            "bogus x y",
            "bogus a b c d",
            // An empty line: gearmand 1.1.20 answers with an empty command word.
            "",
            // Only a single space separates words; a tab is part of the word.
            "status\tx",
            "maxqueue\tf",
            // Only one `\r` before the `\n` is stripped.
            "status\r\r\n",
            "status",
        ];
        tr.admin_each(&mut a, &lines).await;

        // Deliberate differences in parsing (docs/differences.md), each on its own connection
        // because gearmand may close it:
        // - more than five words: gearmand drops the connection without a reply; we answer
        //   INVALID_ARGUMENTS and keep it open.
        for line in ["maxqueue f 1 2 3 4", "bogus a b c d e"] {
            let mut c = t.connect().await;
            c.send_raw(format!("{line}\r\n").as_bytes()).await;
            let got = String::from_utf8_lossy(&if t.is_gearbox() {
                c.read_line().await.into_bytes()
            } else {
                c.read_to_close().await
            })
            .into_owned();
            let word = line.split(' ').next().unwrap_or_default();
            let ours = format!(
                "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+{word}\r\n"
            );
            t.expect_differs(line, &got, "", &ours);
        }
        // - leading and trailing spaces: gearmand reads them as empty words (` status` is the
        //   empty command, `show jobs ` has three words); we ignore them.
        let lenient = [
            (" status", "ERR UNKNOWN_COMMAND Unknown+server+command\r\n", "f\t0\t0\t0\ng\t0\t0\t0\n.\n"),
            ("show jobs ", "ERR UNKNOWN_SHOW_ARGUMENTS\r\n", ".\n"),
            ("cancel job H:nowhere:1 ", "ERR UNKNOWN_ERROR\r\n", "ERR UNKNOWN_JOB\r\n"),
            ("create function g3 ", "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+create\r\n", "OK\r\n"),
        ];
        for (line, theirs, ours) in lenient {
            let got = a.admin(line).await;
            t.expect_differs(line, &normalise_admin(&got), theirs, ours);
        }
        // - maxqueue on a function never seen: both answer OK; gearmand ignores it, we create
        //   the function (so it is listed at 0 0 0) and apply the limit.
        tr.admin(&mut a, "maxqueue unseen 2").await;
        let got = normalise_admin(&a.admin("status").await);
        t.expect_differs(
            "status after maxqueue on an unseen function",
            &got,
            "f\t0\t0\t0\ng\t0\t0\t0\n.\n",
            "f\t0\t0\t0\ng\t0\t0\t0\ng3\t0\t0\t0\nunseen\t0\t0\t0\n.\n",
        );

        // getpid answers the server's own pid.
        let pid = a.admin("getpid").await;
        assert_eq!(pid, format!("OK {}\n", t.pid()), "{}: getpid", t.name());
        tr.push("getpid", "matches the process id");

        // version: the same shape, different versions (deliberate: we report our own).
        let v = a.admin("version").await;
        let v = v.strip_prefix("OK ").and_then(|v| v.strip_suffix('\n')).unwrap_or("");
        t.expect_differs("version", v, "1.1.20+ds", env!("CARGO_PKG_VERSION"));
        tr.push("version", "OK <version>\\n");

        // Binary packets and admin lines share one connection, in either order.
        a.send(&Request::EchoReq { data: b("mixed") }).await;
        tr.recv("echo between admin lines", &mut a).await;
        tr.admin(&mut a, "verbose").await;
        tr
    })
    .await;
}

/// Admin replies echo the bytes received, UTF-8 or not. (Not compared: a NUL inside a word,
/// which gearmand cuts the word at, C-string style.)
#[tokio::test]
async fn admin_replies_echo_raw_bytes() {
    differential(|t: Target, mut tr: Transcript| async move {
        let mut a = t.connect().await;
        for line in [
            &b"\x01\x02\x03\r\n"[..],
            b"\xff\xfe x\r\n",
            b"create function caf\xe9\r\n",
            b"status\r\n",
            b"drop function caf\xe9\r\n",
            b"status\r\n",
        ] {
            a.send_raw(line).await;
            let mut reply = a.read_line_bytes().await;
            while !(reply.starts_with(b"OK")
                || reply.starts_with(b"ERR")
                || reply.ends_with(b"\n.\n")
                || reply == b".\n")
            {
                reply.extend_from_slice(&a.read_line_bytes().await);
            }
            tr.push(
                line.escape_ascii().to_string(),
                reply.escape_ascii().to_string(),
            );
        }
        tr
    })
    .await;
}

/// `status`, `prioritystatus`, `workers`, `show jobs` and `show unique jobs` with queued,
/// running, abandoned and future jobs; `drop function` and `cancel job` on them.
#[tokio::test]
async fn admin_listings_with_jobs() {
    differential(|t: Target, mut tr: Transcript| async move {
        let [mut a, mut w, mut c, mut gone] = t.connections().await;
        w.send(&Request::SetClientId { id: b("wid1") }).await;
        for f in ["zeta", "b_fn", "a_fn"] {
            w.send(&can_do(f)).await;
        }
        tr.quiet("worker registered", &mut w).await;
        let alpha = tr.ask("bg alpha/u1", &mut c, &bg("alpha", "u1", "d")).await;
        tr.ask("bg zeta/u2", &mut c, &bg("zeta", "u2", "d")).await;
        tr.ask("fg mid/u3", &mut gone, &fg("mid", "u3", "d")).await;
        let pf =
            |unique, data, priority, background| submit("pf", unique, data, priority, background);
        let epoch = Request::SubmitEpoch {
            function: b("efn"),
            unique: b("eu"),
            epoch: 4_000_000_000,
            data: b("later"),
        };
        let steps = [
            ("high bg pf", pf("", "h1", Priority::High, true)),
            ("high bg pf", pf("", "h2", Priority::High, true)),
            ("normal bg pf", pf("", "n1", Priority::Normal, true)),
            ("low bg pf", pf("u4", "l1", Priority::Low, true)),
            ("fg high pf", pf("u5", "h3", Priority::High, false)),
            ("future epoch job", epoch),
        ];
        tr.ask_each(&mut c, &steps).await;
        // The worker takes zeta's job: most recent CAN_DO (a_fn, b_fn) have none.
        tr.ask("grab", &mut w, &Request::GrabJobUniq).await;
        let listings = [
            "status",
            "prioritystatus",
            "workers",
            "show jobs",
            "show unique jobs",
        ];
        tr.admin_each(&mut a, &listings).await;
        // Deliberate: the only client of the foreground job leaves. gearmand keeps it listed
        // (flagged ignored) and counted until a worker would take it; gearbox drops it at once.
        drop(gone);
        let ignored_row = "H:3\t0\t1\t0\n";
        let noticed = |listing: &str| {
            if t.is_gearbox() {
                !listing.contains("H:3\t")
            } else {
                listing.contains(ignored_row)
            }
        };
        let jobs = wait_admin(&mut a, "show jobs", "the client left", noticed).await;
        let listed = if jobs.contains("H:3\t") {
            "listed"
        } else {
            "dropped"
        };
        t.expect_differs(
            "a queued foreground job whose only client left",
            listed,
            "listed",
            "dropped",
        );

        let drops = [
            "drop function zeta", // a worker and a running job
            "drop function a_fn", // a worker
            "create function idle",
            "drop function idle",
            "drop function idle",
        ];
        tr.admin_each(&mut a, &drops).await;
        // Deliberate: gearmand drops a function with queued jobs (and loses them); we refuse.
        let got = a.admin("drop function pf").await;
        t.expect_differs(
            "drop function with queued jobs",
            &got,
            "OK\r\n",
            "ERR there are still queued jobs for this function\r\n",
        );

        // Deliberate: cancelling a queued job removes it at once; gearmand keeps listing it
        // (ignored, not queued) and counting it until a worker would take it.
        let h = handle_of(&alpha);
        tr.admin(
            &mut a,
            &format!("cancel job {}", String::from_utf8_lossy(&h)),
        )
        .await;
        let got = normalise_admin(&a.admin("status").await);
        let alpha_row = got
            .lines()
            .find(|l| l.starts_with("alpha\t"))
            .unwrap_or("")
            .to_string();
        t.expect_differs(
            "status of a cancelled job's function",
            &alpha_row,
            "alpha\t1\t0\t0",
            "alpha\t0\t0\t0",
        );
        tr
    })
    .await;
}

/// maxqueue limits: one N for every priority, three per-priority limits compared with the
/// function's total, running jobs counting, coalescing while full, and resetting.
#[tokio::test]
async fn maxqueue_limits() {
    differential(|t: Target, mut tr: Transcript| async move {
        let [mut a, mut c, mut w] = t.connections().await;
        let mq =
            |unique, data, priority, background| submit("mq", unique, data, priority, background);
        tr.admin_each(&mut a, &["create function mq", "maxqueue mq 2"])
            .await;
        let full = [
            ("mq #1", bg("mq", "k1", "1")),
            ("mq #2", bg("mq", "", "2")),
            ("mq #3 full", bg("mq", "", "3")),
            ("mq high full", mq("", "4", Priority::High, true)),
            ("mq low fg full", mq("", "5", Priority::Low, false)),
            ("mq duplicate while full", bg("mq", "k1", "6")),
        ];
        tr.ask_each(&mut c, &full).await;
        tr.admin(&mut a, "maxqueue mq").await;
        tr.ask("mq after reset", &mut c, &bg("mq", "", "7")).await;

        // Per priority: HIGH limited to 1, NORMAL and LOW to 5, each compared with the total.
        tr.admin_each(&mut a, &["create function g", "maxqueue g 1 5 5"])
            .await;
        let g = |data, priority| submit("g", "", data, priority, true);
        let per_priority = [
            ("g normal #1", g("1", Priority::Normal)),
            ("g high #1", g("2", Priority::High)),
            ("g normal #2", g("3", Priority::Normal)),
            ("g low #1", g("4", Priority::Low)),
        ];
        tr.ask_each(&mut c, &per_priority).await;
        tr.admin(&mut a, "prioritystatus").await;

        // A running job counts.
        tr.admin_each(&mut a, &["create function r", "maxqueue r 1"])
            .await;
        tr.ask("r #1", &mut c, &bg("r", "", "1")).await;
        w.send(&can_do("r")).await;
        tr.ask("r grabbed", &mut w, &Request::GrabJob).await;
        tr.ask("r #2 while #1 runs", &mut c, &bg("r", "", "2"))
            .await;
        tr.admin(&mut a, "status").await;
        tr
    })
    .await;
}

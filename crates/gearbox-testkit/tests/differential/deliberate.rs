//! Documented, deliberate differences: each server's own behaviour asserted.

use bytes::Bytes;
use gearbox_proto::{Request, Response};

use crate::support_ext::{
    self, b, bg, can_do, differential, fg, normalise_admin, Target, Transcript, Work,
};

/// Where gearbox deliberately differs (docs/differences.md): each server's own behaviour is
/// asserted, gearmand's as observed and gearbox's as documented.
#[tokio::test]
async fn deliberate_differences() {
    differential(|t: Target, tr: Transcript| async move {
        let mut a = t.connect().await;

        // Admin lines ending in a bare `\n`: gearmand's `create function` drops the name's last
        // character; we read the line correctly.
        assert_eq!(a.admin("create function newfn\n").await, "OK\r\n");
        let st = normalise_admin(&a.admin("status\n").await);
        t.expect_differs("create function with a bare \\n", &st, "newf\t0\t0\t0\n.\n", "newfn\t0\t0\t0\n.\n");

        // `shutdown`: removed from gearmand; we accept it from loopback (not sent here: it
        // would stop the server; see `shutdown_from_loopback` below). With a wrong argument:
        let got = a.admin("shutdown now").await;
        t.expect_differs(
            "shutdown now",
            &got,
            "ERR UNKNOWN_COMMAND Unknown+server+commandshutdown\r\n",
            "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+shutdown\r\n",
        );

        // SUBMIT_JOB_SCHED: gearmand rejects it; we run it as a repeating cron job.
        let mut c = t.connect().await;
        let sched = Request::SubmitSched {
            function: b("cron"),
            unique: b("c1"),
            schedule: Box::new([b("*"), b("*"), b("*"), b("*"), b("*")]),
            data: b("tick"),
        };
        c.send(&sched).await;
        let got = support_ext::error_code(&c.recv().await);
        let handle = norm_handle_of_created(&got);
        t.expect_differs("SUBMIT_JOB_SCHED", &handle, "ERROR INVALID_COMMAND", "JOB_CREATED H:1");

        // A 64-byte unique: gearmand stores 63 bytes and never coalesces it again; we keep it
        // whole (65 bytes is ARGUMENT_TOO_LARGE on both, see `unique_ids`).
        let u64b = "u".repeat(64);
        let first = c.ask(&bg("long", &u64b, "1")).await;
        let again = c.ask(&bg("long", &u64b, "2")).await;
        t.expect_differs("64-byte unique coalesces", &(first == again).to_string(), "false", "true");

        // A worker sending CAN_DO twice for one function: gearmand registers it twice (listed
        // twice by `workers`, counted twice by `status`); we register it once.
        let mut w2 = t.connect().await;
        w2.send(&Request::SetClientId { id: b("twice") }).await;
        w2.send(&can_do("pf")).await;
        w2.send(&can_do("pf")).await;
        w2.assert_quiet().await;
        let workers = normalise_admin(&a.admin("workers").await);
        let line = workers.lines().find(|l| l.contains(" twice ")).unwrap_or("").to_string();
        t.expect_differs("duplicate CAN_DO in workers", &line, "FD 127.0.0.1 twice : pf pf", "FD 127.0.0.1 twice : pf");

        // `drop function` matches names case-insensitively in gearmand (so it may drop a
        // different function than named); we match exactly.
        assert_eq!(a.admin("create function CaSe").await, "OK\r\n");
        let got = a.admin("drop function case").await;
        t.expect_differs("drop function, other case", &got, "OK\r\n", "ERR function not found\r\n");
        tr
    })
    .await;
}

/// `JOB_CREATED H:n` from a shown packet, or the text itself.
fn norm_handle_of_created(shown: &str) -> String {
    support_ext::norm_handles_in(shown)
}

/// Handles: both servers default to `H:<hostname>:<n>`, counting from 1.
#[tokio::test]
async fn default_handle_format() {
    let Some(g) = Target::gearmand().await else {
        return;
    };
    let ours = gearbox_testkit::TestServer::start_with(gearbox_server::Config::default()).await;
    let host = gearbox_server::config::hostname();
    for (name, addr) in [("gearmand", g.addr()), ("gearbox", ours.addr)] {
        let mut c = gearbox_testkit::RawConn::connect(addr).await;
        let r = c.ask(&bg("h", "", "x")).await;
        assert_eq!(
            r,
            Response::JobCreated {
                handle: Bytes::from(format!("H:{host}:1"))
            },
            "{name}"
        );
    }
}

/// CAN_DO_TIMEOUT expiry: gearmand re-queues the job and tells nobody; gearbox's default
/// (`timeout_action = fail`) fails it so the client learns at once, and drops the worker's late
/// result without an ERROR (as the Perl server). `1` is one second for gearbox (the default
/// unit) and one millisecond for gearmand, which checks about once a second.
/// docs/differences.md.
#[tokio::test]
async fn can_do_timeout_expiry() {
    differential(|t: Target, tr: Transcript| async move {
        let [mut w, mut c, mut a] = t.connections().await;
        w.send(&Request::CanDoTimeout {
            function: b("slow"),
            timeout: b("1"),
        })
        .await;
        let h = c.submit(&fg("slow", "", "x")).await;
        assert!(matches!(
            w.ask(&Request::GrabJob).await,
            Response::JobAssign { .. }
        ));
        if t.is_gearbox() {
            let failed = Work::Fail.response(&h);
            assert_eq!(c.recv().await, failed, "gearbox fails the job");
            w.send(&Work::Complete("late").request(&h)).await;
            w.assert_quiet().await;
            c.assert_quiet().await;
        } else {
            let jobs = support_ext::wait_admin(&mut a, "show jobs", "gearmand re-queues", |s| {
                s.contains("\t1\t0\t0\n")
            })
            .await;
            assert_eq!(jobs, "H:1\t1\t0\t0\n.\n");
            c.assert_quiet().await;
        }
        tr
    })
    .await;
}

/// Admin `shutdown` from loopback stops gearbox (gearmand 1.1.20 has no such command).
#[tokio::test]
async fn shutdown_from_loopback() {
    if let Some(g) = Target::gearmand().await {
        let mut a = g.connect().await;
        assert_eq!(
            a.admin("shutdown").await,
            "ERR UNKNOWN_COMMAND Unknown+server+commandshutdown\r\n"
        );
        assert_eq!(
            a.admin("getpid").await,
            format!("OK {}\n", g.pid()),
            "gearmand still running"
        );
    }
    let ours = gearbox_testkit::TestServer::start().await;
    let mut a = ours.connect().await;
    assert_eq!(a.admin("shutdown").await, "OK\r\n");
    ours.wait_stopped().await;
}

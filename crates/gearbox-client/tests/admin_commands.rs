//! Every admin command of [`gearbox_client::admin::Admin`] against the in-process gearbox and
//! the real gearmand, with the server state set up by raw packets.

mod admin_support;

use admin_support::{b, grab, server_addr, submit_bg, worker, Server};
use gearbox_client::admin::{Admin, FunctionStatus, JobInfo, MaxQueue, PriorityStatus};
use gearbox_client::Error;
use gearbox_proto::{Priority, Response};
use gearbox_server::ShutdownMode;
use gearbox_testkit::{build, Poller};

async fn admin(s: &Server) -> Admin {
    Admin::connect(server_addr(s)).await.expect("connect")
}

fn fs(function: &str, total: u64, running: u64, workers: u64) -> FunctionStatus {
    FunctionStatus {
        function: b(function),
        total,
        running,
        workers,
    }
}

/// A worker `wid1` (zeta, b_fn) running a zeta job, a queued LOW alpha job: every listing
/// typed, field by field.
#[tokio::test]
async fn listings_are_parsed_field_by_field() {
    for s in Server::both().await {
        let who = s.name();
        let mut w = worker(&s, "wid1", &["zeta", "b_fn"]).await;
        let mut c = s.connect().await;
        let queued = submit_bg(&mut c, "alpha", "u1", Priority::Low).await;
        let running = submit_bg(&mut c, "zeta", "u2", Priority::Normal).await;
        assert_eq!(grab(&mut w).await, running);
        let mut a = admin(&s).await;

        let mut st = a.status().await.expect("status");
        st.sort_by(|x, y| x.function.cmp(&y.function));
        let want = vec![
            fs("alpha", 1, 0, 0),
            fs("b_fn", 0, 0, 1),
            fs("zeta", 1, 1, 1),
        ];
        assert_eq!(st, want, "{who}");
        assert_eq!(st[0].queued(), 1);

        let mut ps = a.priority_status().await.expect("prioritystatus");
        ps.sort_by(|x, y| x.function.cmp(&y.function));
        let alpha = PriorityStatus {
            function: b("alpha"),
            high: 0,
            normal: 0,
            low: 1,
            workers: 0,
        };
        assert_eq!(ps[0], alpha, "{who}");
        assert_eq!(
            (ps[2].high, ps[2].normal, ps[2].low, ps[2].workers),
            (0, 0, 0, 1)
        );

        let ws = a.workers().await.expect("workers");
        let named: Vec<_> = ws.iter().filter(|w| w.client_id == "wid1").collect();
        assert_eq!(named.len(), 1, "{who}: {ws:?}");
        let mut fns = named[0].functions.clone();
        fns.sort();
        assert_eq!(fns, vec![b("b_fn"), b("zeta")], "{who}");
        assert_eq!(named[0].ip, "127.0.0.1");
        assert!(named[0].fd.iter().all(u8::is_ascii_digit), "{who}: {ws:?}");
        // The client and this admin connection: no id, no functions.
        let anonymous = ws.iter().filter(|w| w.client_id == "-").count();
        assert!(anonymous >= 2, "{who}: {ws:?}");
        assert!(ws
            .iter()
            .filter(|w| w.client_id == "-")
            .all(|w| w.functions.is_empty()));

        let mut jobs = a.show_jobs().await.expect("show jobs");
        jobs.sort_by_key(|j| j.handle != queued);
        let job = |handle, background| JobInfo {
            handle,
            retries: 0,
            ignored: false,
            background,
        };
        assert_eq!(
            jobs,
            vec![job(queued, true), job(running.clone(), true)],
            "{who}"
        );

        let mut uniques = a.show_unique_jobs().await.expect("show unique jobs");
        uniques.sort();
        assert_eq!(uniques, vec![b("u1"), b("u2")], "{who}");

        // A lost worker re-queues its job and counts a retry; a foreground job shows 0.
        drop(w);
        let fg = {
            c.send(&build::submit("fg", "", "x", Priority::High, false))
                .await;
            match c.recv().await {
                Response::JobCreated { handle } => handle,
                other => panic!("{other:?}"),
            }
        };
        let mut poll = Poller::new("the lost worker's job re-queued");
        let jobs = loop {
            let jobs = a.show_jobs().await.expect("show jobs");
            let requeued = jobs.iter().any(|j| j.handle == running && j.retries == 1);
            if requeued {
                break jobs;
            }
            poll.again().await;
        };
        let fg_job = jobs.iter().find(|j| j.handle == fg).expect("fg job listed");
        assert!(!fg_job.background && !fg_job.ignored, "{who}: {jobs:?}");
    }
}

/// `version`, `getpid`, `verbose`.
#[tokio::test]
async fn one_line_answers() {
    for s in Server::both().await {
        let mut a = admin(&s).await;
        let v = a.version().await.expect("version");
        if s.is_gearmand() {
            assert!(v.starts_with("1."), "gearmand version {v:?}");
        } else {
            assert_eq!(v, env!("CARGO_PKG_VERSION"));
        }
        assert_eq!(a.getpid().await.expect("getpid"), s.pid(), "{}", s.name());
        assert_eq!(a.verbose().await.expect("verbose"), "ERROR", "{}", s.name());
    }
}

/// `metrics`: gearbox's Prometheus text, with the queued job counted; gearmand has no such
/// command and answers `ERR`.
#[tokio::test]
async fn metrics_is_gearboxs_own() {
    for s in Server::both().await {
        let mut c = s.connect().await;
        submit_bg(&mut c, "mfn", "m1", Priority::High).await;
        let mut a = admin(&s).await;
        let m = a.metrics().await;
        if s.is_gearmand() {
            assert!(matches!(m, Err(Error::Admin { .. })), "{m:?}");
            // The connection is still usable after the ERR.
            assert!(a.version().await.is_ok());
        } else {
            let m = m.expect("metrics");
            assert!(
                m.lines()
                    .any(|l| l == "gearbox_queued_jobs{function=\"mfn\",priority=\"high\"} 1"),
                "{m}"
            );
            assert!(!m.ends_with(".\n"), "{m}");
        }
    }
}

/// `maxqueue` with one limit, per priority, and reset to unlimited.
#[tokio::test]
async fn maxqueue_limits_submits() {
    for s in Server::both().await {
        let who = s.name();
        let mut a = admin(&s).await;
        // gearmand ignores maxqueue for functions it has not seen yet.
        a.create_function("mq").await.expect("create");
        a.maxqueue("mq", MaxQueue::All(1)).await.expect("maxqueue");
        let mut c = s.connect().await;
        submit_bg(&mut c, "mq", "", Priority::Normal).await;
        c.send(&build::submit("mq", "", "d", Priority::High, true))
            .await;
        match c.recv().await {
            Response::Error { code, .. } => assert_eq!(code, "QUEUE_ERROR", "{who}"),
            other => panic!("{who}: expected QUEUE_ERROR, got {other:?}"),
        }
        a.maxqueue("mq", MaxQueue::Unlimited).await.expect("reset");
        submit_bg(&mut c, "mq", "", Priority::High).await;
        let per = MaxQueue::ByPriority {
            high: 1,
            normal: 5,
            low: 5,
        };
        a.maxqueue("mq", per).await.expect("per priority");
        // Two jobs held: HIGH (limit 1) is refused, NORMAL (limit 5) accepted.
        c.send(&build::submit("mq", "", "d", Priority::High, true))
            .await;
        assert!(matches!(c.recv().await, Response::Error { .. }), "{who}");
        submit_bg(&mut c, "mq", "", Priority::Normal).await;
        let st = a.status().await.expect("status");
        assert!(st.contains(&fs("mq", 3, 0, 0)), "{who}: {st:?}");
        let bad = a.maxqueue("two words", MaxQueue::All(1)).await;
        assert!(matches!(bad, Err(Error::InvalidArgument(_))), "{bad:?}");
    }
}

/// `cancel job`, `create function`, `drop function`, and their ERR replies as typed errors.
#[tokio::test]
async fn cancel_create_and_drop() {
    for s in Server::both().await {
        let who = s.name();
        let mut a = admin(&s).await;
        let mut c = s.connect().await;
        let h = submit_bg(&mut c, "victim", "v1", Priority::Normal).await;
        a.cancel(&h).await.expect("cancel");
        let gone = a.cancel(b"H:nowhere:999").await.expect_err("unknown job");
        assert_eq!(gone.admin_code(), Some("UNKNOWN_JOB"), "{who}: {gone}");
        assert!(
            matches!(&gone, Error::Admin { command, reply }
                if command == "cancel job H:nowhere:999" && reply == "ERR UNKNOWN_JOB"),
            "{gone:?}"
        );

        a.create_function("newfn").await.expect("create");
        assert!(a.status().await.unwrap().contains(&fs("newfn", 0, 0, 0)));
        a.drop_function("newfn").await.expect("drop");
        assert!(!a
            .status()
            .await
            .unwrap()
            .iter()
            .any(|f| f.function == "newfn"));
        let again = a.drop_function("newfn").await.expect_err("dropped twice");
        assert!(
            matches!(&again, Error::Admin { reply, .. } if reply == "ERR function not found"),
            "{who}: {again:?}"
        );
        let _w = worker(&s, "w", &["busy"]).await;
        let busy = a.drop_function("busy").await.expect_err("has a worker");
        assert!(
            matches!(&busy, Error::Admin { reply, .. }
                if reply == "ERR there are still connected workers or executing clients"),
            "{who}: {busy:?}"
        );
        // The connection is still usable after ERR replies.
        assert_eq!(a.getpid().await.expect("getpid"), s.pid());
    }
}

/// `raw` returns replies byte for byte, listings up to `.\n`, ERR lines included.
#[tokio::test]
async fn raw_replies_are_exact() {
    for s in Server::both().await {
        let mut a = admin(&s).await;
        a.create_function("rawfn").await.unwrap();
        assert_eq!(&a.raw("status").await.unwrap()[..], b"rawfn\t0\t0\t0\n.\n");
        assert_eq!(&a.raw("show jobs\r\n").await.unwrap()[..], b".\n");
        assert_eq!(
            &a.raw("bogus arg").await.unwrap()[..],
            b"ERR UNKNOWN_COMMAND Unknown+server+commandbogus\r\n"
        );
        assert_eq!(&a.raw("maxqueue rawfn 3").await.unwrap()[..], b"OK\r\n");
        assert_eq!(
            &a.raw("show foo").await.unwrap()[..],
            b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n"
        );
        let pid = format!("OK {}\n", s.pid());
        assert_eq!(&a.raw("GETPID").await.unwrap()[..], pid.as_bytes());
        let two = a.raw("version\ngetpid").await;
        assert!(matches!(two, Err(Error::InvalidArgument(_))), "{two:?}");
    }
}

/// `shutdown`: gearbox stops (loopback peer); gearmand 1.1 has no such command.
#[tokio::test]
async fn shutdown_stops_gearbox_and_is_refused_by_gearmand() {
    for s in Server::both().await {
        let mut a = admin(&s).await;
        match s {
            Server::Gearbox(server) => {
                a.shutdown(true).await.expect("graceful shutdown");
                server.wait_stopped().await;
            }
            Server::Gearmand(_) => {
                let e = a.shutdown(false).await.expect_err("no shutdown command");
                assert_eq!(e.admin_code(), Some("UNKNOWN_COMMAND"), "{e}");
            }
        }
    }
    let server = gearbox_testkit::TestServer::start().await;
    let addr = gearbox_client::ServerAddr::new("127.0.0.1", server.addr.port());
    Admin::connect(addr)
        .await
        .unwrap()
        .shutdown(false)
        .await
        .unwrap();
    server.stop(ShutdownMode::Immediate).await;
}

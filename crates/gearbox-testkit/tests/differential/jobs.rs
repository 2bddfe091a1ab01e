//! Packet flows: job life cycles, endings, priorities, GRAB variants, unique ids.

use bytes::Bytes;
use gearbox_proto::{Priority, Request, Response};
use gearbox_testkit::RawConn;

use crate::support_ext::{
    b, bg, can_do, differential, fg, get_status, get_status_unique, option, show, submit,
    wait_admin, Target, Transcript, Work,
};

/// A foreground job from submit to completion: wake-up, coalescing, every WORK_* packet
/// forwarded to every attached client, GET_STATUS and GET_STATUS_UNIQUE along the way.
#[tokio::test]
async fn foreground_job_life_cycle() {
    differential(|t: Target, mut tr: Transcript| async move {
        let [mut w, mut c1, mut c2, mut q] = t.connections().await;
        w.send(&Request::SetClientId { id: b("w1") }).await;
        w.send(&can_do("rev")).await;
        w.send(&Request::PreSleep).await;
        tr.quiet("worker asleep", &mut w).await;
        tr.ask("option exceptions", &mut c1, &option("exceptions"))
            .await;
        tr.ask("option bogus", &mut c1, &option("bogus")).await;

        tr.ask("c1 submits", &mut c1, &fg("rev", "u1", "abc")).await;
        tr.recv("worker woken", &mut w).await;
        let high = submit("rev", "u1", "other", Priority::High, false);
        tr.ask("c2 coalesces", &mut c2, &high).await;
        let low_bg = submit("rev", "u1", "x", Priority::Low, true);
        tr.ask("background duplicate", &mut q, &low_bg).await;
        let unique_status = get_status_unique("u1");
        tr.ask("unique status queued", &mut q, &unique_status).await;
        let h = match tr.ask("grab", &mut w, &Request::GrabJobUniq).await {
            Response::JobAssignUniq { handle, .. } => handle,
            other => panic!("{}: expected JOB_ASSIGN_UNIQ, got {other:?}", t.name()),
        };
        tr.ask("status running", &mut q, &get_status(&h)).await;
        w.send(&Work::Status("3", "10").request(&h)).await;
        tr.recv("c1 status", &mut c1).await;
        tr.recv("c2 status", &mut c2).await;
        tr.ask("status 3/10", &mut q, &get_status(&h)).await;
        // Non-numeric WORK_STATUS is relayed verbatim by both, and stored through atoi, so
        // GET_STATUS then reports 0/0.
        w.send(&Work::Status("abc", "xyz").request(&h)).await;
        tr.recv("c1 non-numeric status", &mut c1).await;
        tr.recv("c2 non-numeric status", &mut c2).await;
        let r = show(&q.ask(&get_status(&h)).await);
        let zero = "STATUS_RES H:1 1 1 \"0\" \"0\"";
        t.expect_same("GET_STATUS after a non-numeric WORK_STATUS", &r, zero);
        w.send(&Work::Status("3", "10").request(&h)).await;
        tr.recv("c1 status again", &mut c1).await;
        tr.recv("c2 status again", &mut c2).await;
        tr.ask("unique status 3/10", &mut q, &unique_status).await;
        // A duplicate while it runs attaches and hears what follows.
        let mut c3 = t.connect().await;
        tr.ask(
            "c3 coalesces while running",
            &mut c3,
            &fg("rev", "u1", "abc"),
        )
        .await;
        tr.ask("unique status, three clients", &mut q, &unique_status)
            .await;
        for work in [
            Work::Data("d\0ata"),
            Work::Warning("warn"),
            Work::Complete("cba"),
        ] {
            w.send(&work.request(&h)).await;
        }
        for (name, c) in [("c1", &mut c1), ("c2", &mut c2), ("c3", &mut c3)] {
            tr.recv(format!("{name} data"), c).await;
            tr.recv(format!("{name} warning"), c).await;
            tr.recv(format!("{name} complete"), c).await;
            tr.quiet(format!("{name} nothing more"), c).await;
        }
        tr.ask("status after completion", &mut q, &get_status(&h))
            .await;
        tr.ask("unique status after completion", &mut q, &unique_status)
            .await;
        let late = Work::Complete("again").request(&h);
        tr.ask("late complete", &mut w, &late).await;
        tr.ask("worker's next grab", &mut w, &Request::GrabJob)
            .await;
        tr
    })
    .await;
}

/// Grabs one job for `step` with GRAB_JOB and returns its handle.
async fn grab(t: &Target, tr: &mut Transcript, step: &str, w: &mut RawConn) -> Bytes {
    match tr.ask(step, w, &Request::GrabJob).await {
        Response::JobAssign { handle, .. } => handle,
        other => panic!("{}: {step}: expected JOB_ASSIGN, got {other:?}", t.name()),
    }
}

/// How a job can end: WORK_FAIL, WORK_EXCEPTION (with and without the exceptions option),
/// the worker vanishing (re-queued, retry counted), the client vanishing (dropped at grab).
#[tokio::test]
async fn failures_exceptions_and_vanishing_peers() {
    differential(|t: Target, mut tr: Transcript| async move {
        let [mut a, mut w, mut c1, mut c2] = t.connections().await;
        w.send(&can_do("f")).await;
        tr.ask("exceptions option", &mut c1, &option("exceptions"))
            .await;

        tr.ask("fail: submit", &mut c1, &fg("f", "", "x")).await;
        let h = grab(&t, &mut tr, "fail: grab", &mut w).await;
        w.send(&Work::Fail.request(&h)).await;
        tr.recv("fail: client", &mut c1).await;

        tr.ask("exception: c1 submits", &mut c1, &fg("f", "ex", "x"))
            .await;
        tr.ask("exception: c2 coalesces", &mut c2, &fg("f", "ex", "x"))
            .await;
        let h = grab(&t, &mut tr, "exception: grab", &mut w).await;
        w.send(&Work::Exception("boom").request(&h)).await;
        tr.recv("exception: c1 asked for exceptions", &mut c1).await;
        // Deliberate: gearmand's substitute WORK_FAIL carries a stray trailing NUL.
        match c2.recv().await {
            Response::WorkFail { handle } => {
                let nul = handle.ends_with(b"\0");
                t.expect_differs("stray NUL in WORK_FAIL", &nul.to_string(), "true", "false");
                let clean = handle.strip_suffix(b"\0").unwrap_or(&handle);
                let name = t.name();
                assert_eq!(clean, &h[..], "{name}: WORK_FAIL for the excepted job");
                tr.push("exception: c2 gets WORK_FAIL", "WORK_FAIL");
            }
            other => panic!("{}: expected WORK_FAIL, got {other:?}", t.name()),
        }
        tr.ask("exception: job gone", &mut c2, &get_status(&h))
            .await;

        // A worker vanishing mid-job: the job is re-queued with a retry counted and the next
        // worker gets it; the client hears only the final result.
        tr.ask("lost worker: submit", &mut c1, &fg("f", "", "again"))
            .await;
        let mut w2 = t.connect().await;
        w2.send(&can_do("f")).await;
        let h = grab(&t, &mut tr, "lost worker: grab", &mut w2).await;
        drop(w2);
        tr.jobs_when("lost worker: show jobs", &mut a, "\t1\t0\t0")
            .await;
        tr.ask("lost worker: regrab", &mut w, &Request::GrabJob)
            .await;
        w.send(&Work::Complete("done").request(&h)).await;
        tr.recv("lost worker: client gets the result", &mut c1)
            .await;
        tr.quiet("lost worker: nothing else", &mut c1).await;

        // A foreground client vanishing before any worker took its job. Deliberate: gearmand
        // keeps the job listed (ignored) and counted until a worker would take it; gearbox
        // drops it at once. Either way no worker gets it.
        let mut c3 = t.connect().await;
        tr.ask("lost client: submit", &mut c3, &fg("f", "", "orphan"))
            .await;
        drop(c3);
        let noticed = |listing: &str| {
            if t.is_gearbox() {
                listing == ".\n"
            } else {
                listing.contains("\t0\t1\t0\n")
            }
        };
        let jobs = wait_admin(&mut a, "show jobs", "lost client", noticed).await;
        let listed = if jobs == ".\n" { "dropped" } else { "listed" };
        t.expect_differs("lost client: the orphan job", listed, "listed", "dropped");
        tr.ask("lost client: grab finds nothing", &mut w, &Request::GrabJob)
            .await;
        tr.admin_each(&mut a, &["status", "show jobs"]).await;
        tr
    })
    .await;
}

/// Priorities, GRAB variants, reduce and epoch jobs, sleep/wake, abilities.
#[tokio::test]
async fn priorities_grab_variants_and_wakeups() {
    differential(|t: Target, mut tr: Transcript| async move {
        let [mut w, mut c] = t.connections().await;
        for (data, p) in [
            ("low", Priority::Low),
            ("n1", Priority::Normal),
            ("high", Priority::High),
            ("n2", Priority::Normal),
        ] {
            let job = submit("p", "", data, p, true);
            tr.ask(format!("submit {data}"), &mut c, &job).await;
        }
        w.send(&can_do("p")).await;
        // PRE_SLEEP with work waiting: NOOP at once.
        w.send(&Request::PreSleep).await;
        tr.recv("pre-sleep with work queued", &mut w).await;
        for i in 0..4 {
            tr.ask(format!("grab {i}"), &mut w, &Request::GrabJob).await;
        }
        let empty = [
            ("grab when empty", Request::GrabJob),
            ("grab_uniq when empty", Request::GrabJobUniq),
            ("grab_all when empty", Request::GrabJobAll),
        ];
        tr.ask_each(&mut w, &empty).await;

        // GRAB_JOB_ALL: JOB_ASSIGN_UNIQ for a plain job, JOB_ASSIGN_ALL for a reduce job.
        tr.ask("plain", &mut c, &bg("p", "pu", "pd")).await;
        tr.ask("grab_all plain", &mut w, &Request::GrabJobAll).await;
        let reduce = |unique: &'static str| Request::SubmitReduce {
            function: b("p"),
            unique: b(unique),
            reducer: b("myreducer"),
            aggregator: b("myagg"),
            data: b("rdata"),
            background: true,
        };
        for (u, grab) in [
            ("r1", Request::GrabJobAll),
            ("r2", Request::GrabJobUniq),
            ("r3", Request::GrabJob),
        ] {
            tr.ask(format!("reduce {u}"), &mut c, &reduce(u)).await;
            tr.ask(format!("grab reduce {u}"), &mut w, &grab).await;
        }

        // Sleep and wake: a sleeping worker gets one NOOP per wake-up, not per job.
        w.send(&Request::PreSleep).await;
        tr.quiet("asleep", &mut w).await;
        tr.ask("wake-up job", &mut c, &bg("p", "", "w1")).await;
        tr.recv("noop", &mut w).await;
        tr.ask("second job before PRE_SLEEP", &mut c, &bg("p", "", "w2"))
            .await;
        tr.quiet("no second noop", &mut w).await;
        tr.ask("grab w1", &mut w, &Request::GrabJob).await;
        tr.ask("grab w2", &mut w, &Request::GrabJob).await;

        // EPOCH jobs: past epochs run at once, future ones are not handed out.
        let epoch = |u: &'static str, e: u64| Request::SubmitEpoch {
            function: b("p"),
            unique: b(u),
            epoch: e,
            data: b("ed"),
        };
        tr.ask("past epoch", &mut c, &epoch("e1", 1)).await;
        tr.ask("grab past epoch", &mut w, &Request::GrabJobUniq)
            .await;
        tr.ask("future epoch", &mut c, &epoch("e2", 4_000_000_000))
            .await;
        tr.ask("future epoch not handed out", &mut w, &Request::GrabJob)
            .await;

        // CANT_DO and RESET_ABILITIES.
        tr.ask("queued for q", &mut c, &bg("q", "", "qd")).await;
        w.send(&can_do("q")).await;
        w.send(&Request::CantDo { function: b("q") }).await;
        tr.ask("after CANT_DO", &mut w, &Request::GrabJob).await;
        w.send(&can_do("q")).await;
        w.send(&Request::ResetAbilities).await;
        tr.ask("after RESET_ABILITIES", &mut w, &Request::GrabJob)
            .await;
        w.send(&can_do("q")).await;
        tr.ask("after CAN_DO again", &mut w, &Request::GrabJob)
            .await;
        tr
    })
    .await;
}

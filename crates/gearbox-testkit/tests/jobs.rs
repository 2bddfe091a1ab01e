//! Submitting jobs, forwarding WORK_* packets, unique coalescing and abandoned jobs.

mod common;

use common::*;
use gearbox_proto::{Priority, Request, Response};

#[tokio::test]
async fn every_submit_variant_creates_a_job_with_an_increasing_handle() {
    let (server, [mut client]) = start().await;
    let mut n = 0;
    for background in [false, true] {
        for p in Priority::ALL {
            n += 1;
            let handle = submit_ok(
                &mut client,
                &submit("f", "", &format!("d{n}"), p, background),
            )
            .await;
            assert_eq!(handle, h(n));
        }
    }
    let mut w = worker(&server, &["f"]).await;
    // HIGH first, then NORMAL, then LOW; within a priority in submission order (fg before bg).
    for (handle, data) in [
        (1, "d1"),
        (4, "d4"),
        (2, "d2"),
        (5, "d5"),
        (3, "d3"),
        (6, "d6"),
    ] {
        let (got, function, _, payload) = grab_uniq(&mut w).await;
        assert_eq!((got, function, payload), (h(handle), b("f"), b(data)));
    }
    grab_none(&mut w).await;
}

#[tokio::test]
async fn every_work_packet_reaches_every_attached_client() {
    let (server, [mut c1, mut c2]) = start().await;
    let handle = submit_coalesced(&mut c1, &mut c2, &fg("f", "u", "x")).await;
    let mut w = worker(&server, &["f"]).await;
    assert_eq!(grab_uniq(&mut w).await.0, handle);
    let sent = [
        Work::Status("1", "4"),
        Work::Data("part\0one"),
        Work::Warning("careful"),
        Work::Complete("done"),
    ];
    for work in sent {
        w.send(&work.request(&handle)).await;
    }
    let expected = Work::responses(&sent, &handle);
    for c in [&mut c1, &mut c2] {
        for e in &expected {
            assert_eq!(&c.recv().await, e);
        }
        c.assert_quiet().await;
    }
    w.assert_quiet().await;
}

#[tokio::test]
async fn work_fail_and_work_exception_end_the_job_for_every_client() {
    let (server, [mut c1, mut c2]) = start().await;
    for c in [&mut c1, &mut c2] {
        c.enable_exceptions().await;
    }
    let mut w = worker(&server, &["f"]).await;

    let h1 = submit_coalesced(&mut c1, &mut c2, &fg("f", "a", "")).await;
    grab_uniq(&mut w).await;
    w.send(&Work::Fail.request(&h1)).await;
    for c in [&mut c1, &mut c2] {
        assert_eq!(c.recv().await, Work::Fail.response(&h1));
    }

    let h2 = submit_coalesced(&mut c1, &mut c2, &fg("f", "b", "")).await;
    grab_uniq(&mut w).await;
    w.send(&Work::Exception("boom").request(&h2)).await;
    for c in [&mut c1, &mut c2] {
        assert_eq!(c.recv().await, Work::Exception("boom").response(&h2));
        c.assert_quiet().await;
    }
    // Both jobs are over: the worker's further results are refused.
    expect_error(&mut w, &complete(&h2, "late"), "JOB_NOT_FOUND").await;
}

#[tokio::test]
async fn background_jobs_send_nothing_after_job_created() {
    let (server, [mut client]) = start().await;
    let handle = submit_ok(&mut client, &bg("f", "", "x")).await;
    let mut w = worker(&server, &["f"]).await;
    assert_eq!(grab_uniq(&mut w).await.0, handle);
    for work in [Work::Status("1", "2"), Work::Data("d"), Work::Complete("r")] {
        w.send(&work.request(&handle)).await;
    }
    w.assert_quiet().await;
    client.assert_quiet().await;
    assert_eq!(status(&mut client, "f").await, Some((0, 0, 1)));
}

#[tokio::test]
async fn unique_coalesces_per_function_and_never_when_empty() {
    let (_server, [mut c]) = start().await;
    let a = submit_ok(&mut c, &bg("f", "u1", "x")).await;
    // Same function and unique: the same job, whatever the payload, priority or mode.
    let high_fg = submit("f", "u1", "x", Priority::High, false);
    for same in [bg("f", "u1", "other payload"), high_fg] {
        assert_eq!(submit_ok(&mut c, &same).await, a, "{same:?}");
    }
    let other_fn = submit_ok(&mut c, &bg("g", "u1", "x")).await;
    assert_ne!(
        other_fn, a,
        "same unique, different function: a different job"
    );
    let e1 = submit_ok(&mut c, &bg("f", "", "x")).await;
    let e2 = submit_ok(&mut c, &bg("f", "", "x")).await;
    assert_ne!(e1, e2, "an empty unique never coalesces");
    assert_eq!(status(&mut c, "f").await, Some((3, 0, 0)));
    assert_eq!(status(&mut c, "g").await, Some((1, 0, 0)));
}

#[tokio::test]
async fn dash_unique_coalesces_by_payload() {
    // As gearmand: `-` jobs coalesce with each other by payload; the job keeps `-` as its
    // unique, and an explicit unique equal to the payload is a different job.
    let (server, [mut c]) = start().await;
    let a = submit_ok(&mut c, &bg("f", "-", "payload-1")).await;
    assert_eq!(submit_ok(&mut c, &bg("f", "-", "payload-1")).await, a);
    assert_ne!(
        submit_ok(&mut c, &bg("f", "payload-1", "zzz")).await,
        a,
        "an explicit unique never matches a `-` job"
    );
    assert_ne!(submit_ok(&mut c, &bg("f", "-", "payload-2")).await, a);
    let long = "p".repeat(200);
    let l1 = submit_ok(&mut c, &bg("f", "-", &long)).await;
    assert_eq!(
        submit_ok(&mut c, &bg("f", "-", &long)).await,
        l1,
        "no length limit on payloads"
    );
    let mut w = worker(&server, &["f"]).await;
    let (handle, _, unique, data) = grab_uniq(&mut w).await;
    assert_eq!((handle, unique, data), (a, b("-"), b("payload-1")));
}

#[tokio::test]
async fn foreground_duplicate_attaches_and_sees_work_from_then_on() {
    let (server, [mut c1, mut c2]) = start().await;
    let handle = submit_ok(&mut c1, &fg("f", "u", "x")).await;
    let mut w = worker(&server, &["f"]).await;
    grab_uniq(&mut w).await;
    w.send(&Work::Data("early").request(&handle)).await;
    assert_eq!(c1.recv().await, Work::Data("early").response(&handle));
    // A background duplicate of a running job does not attach.
    let mut c3 = server.connect().await;
    assert_eq!(submit_ok(&mut c3, &bg("f", "u", "x")).await, handle);
    assert_eq!(submit_ok(&mut c2, &fg("f", "u", "x")).await, handle);
    w.send(&complete(&handle, "late")).await;
    for c in [&mut c1, &mut c2] {
        assert_eq!(c.recv().await, Work::Complete("late").response(&handle));
        c.assert_quiet().await;
    }
    c3.assert_quiet().await;
}

#[tokio::test]
async fn a_finished_unique_creates_a_new_job() {
    let (server, [mut c]) = start().await;
    let mut w = worker(&server, &["f"]).await;
    let first = submit_ok(&mut c, &fg("f", "u", "x")).await;
    grab_uniq(&mut w).await;
    w.send(&complete(&first, "r")).await;
    assert_eq!(c.recv().await, Work::Complete("r").response(&first));
    let second = submit_ok(&mut c, &fg("f", "u", "x")).await;
    assert_ne!(second, first);
    assert_eq!(grab_uniq(&mut w).await.0, second);
}

/// A queued foreground job whose only client left is dropped as soon as the disconnect is
/// seen, not counted until a worker would take it (gearmand's way: see docs/differences.md).
#[tokio::test]
async fn abandoned_foreground_job_is_dropped_when_its_client_leaves() {
    let (server, [mut admin, mut gone]) = start().await;
    let abandoned = submit_ok(&mut gone, &fg("f", "", "x")).await;
    let mut c = server.connect().await;
    let kept = submit_ok(&mut c, &bg("f", "", "y")).await;
    drop(gone);
    wait_connections(&mut admin, 2).await;
    assert_eq!(
        status(&mut admin, "f").await,
        Some((1, 0, 0)),
        "not counted"
    );
    assert_eq!(show_job(&mut admin, &abandoned).await, None, "dropped");
    let mut w = worker(&server, &["f"]).await;
    assert_eq!(grab_uniq(&mut w).await.0, kept);
    assert_eq!(status(&mut admin, "f").await, Some((1, 1, 1)));
    grab_none(&mut w).await;
}

#[tokio::test]
async fn abandoned_foreground_job_alone_gives_no_job() {
    let (server, [mut admin, mut gone]) = start().await;
    submit_ok(&mut gone, &fg("f", "", "x")).await;
    drop(gone);
    wait_connections(&mut admin, 1).await;
    assert_eq!(status(&mut admin, "f").await, Some((0, 0, 0)));
    let mut w = worker(&server, &["f"]).await;
    grab_none(&mut w).await;
    assert_eq!(status(&mut admin, "f").await, Some((0, 0, 1)));
}

#[tokio::test]
async fn background_duplicate_keeps_an_abandoned_job_alive() {
    let (server, [mut admin, mut gone]) = start().await;
    let handle = submit_ok(&mut gone, &fg("f", "u", "x")).await;
    let mut c = server.connect().await;
    assert_eq!(submit_ok(&mut c, &bg("f", "u", "x")).await, handle);
    drop(gone);
    wait_connections(&mut admin, 2).await;
    // The background submitter was promised this job: it must still run.
    let mut w = worker(&server, &["f"]).await;
    assert_eq!(grab_uniq(&mut w).await.0, handle);
}

#[tokio::test]
async fn grab_variants_answer_with_their_assign_packet() {
    let (server, [mut c]) = start().await;
    let mut w = worker(&server, &["f"]).await;
    let reduce = |background| Request::SubmitReduce {
        function: b("f"),
        unique: b("r"),
        reducer: b("red"),
        aggregator: b(""),
        data: b("rd"),
        background,
    };

    // GRAB_JOB answers JOB_ASSIGN; GRAB_JOB_UNIQ, and GRAB_JOB_ALL for a plain job, answer
    // JOB_ASSIGN_UNIQ.
    let plain = [
        (Request::GrabJob, false),
        (Request::GrabJobUniq, true),
        (Request::GrabJobAll, true),
    ];
    for (n, (grab, with_unique)) in plain.into_iter().enumerate() {
        let (unique, data) = (format!("u{n}"), format!("d{n}"));
        let handle = submit_ok(&mut c, &fg("f", &unique, &data)).await;
        let (function, unique, data) = (b("f"), b(&unique), b(&data));
        let expected = if with_unique {
            Response::JobAssignUniq {
                handle,
                function,
                unique,
                data,
            }
        } else {
            Response::JobAssign {
                handle,
                function,
                data,
            }
        };
        assert_eq!(w.ask(&grab).await, expected, "{grab:?}");
    }

    for background in [false, true] {
        let hr = submit_ok(&mut c, &reduce(background)).await;
        let expected = Response::JobAssignAll {
            handle: hr.clone(),
            function: b("f"),
            unique: b("r"),
            reducer: b("red"),
            data: b("rd"),
        };
        assert_eq!(w.ask(&Request::GrabJobAll).await, expected);
        w.send(&complete(&hr, "")).await;
        if !background {
            assert_eq!(c.recv().await, Work::Complete("").response(&hr));
        }
    }
    for grab in [Request::GrabJob, Request::GrabJobUniq, Request::GrabJobAll] {
        assert_eq!(w.ask(&grab).await, Response::NoJob);
    }
}

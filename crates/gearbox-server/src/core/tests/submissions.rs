//! Clients attached once per foreground submission (as gearmand: libgearman counts on it),
//! and CAN_DO_TIMEOUT read in the configured unit.

use gearbox_proto::{Request, Response};

use super::{b, h, send, submit, Harness, C1, C2, T0};
use crate::core::{ConnId, CoreConfig, Effect, TimeoutAction, TimeoutUnit};

const W: ConnId = ConnId::new(3);

/// C1 submits `f`/`same` in the foreground twice, worker `W` takes the job.
fn twice_attached() -> Harness {
    let mut t = Harness::two(CoreConfig::default());
    t.connect(W);
    t.req(W, Request::CanDo { function: b("f") }, T0);
    for _ in 0..2 {
        let created = t.req(C1, submit("f", "same", false), T0);
        assert_eq!(created, [send(C1, Response::JobCreated { handle: h(1) })]);
    }
    t
}

#[test]
fn every_work_packet_goes_once_per_submission() {
    let mut t = twice_attached();
    let unique = Request::GetStatusUnique { unique: b("same") };
    assert!(matches!(
        t.req(C2, unique, T0)[..],
        [Effect::Send(
            C2,
            Response::StatusResUnique {
                client_count: 2,
                ..
            }
        )]
    ));
    assert!(matches!(
        t.req(W, Request::GrabJob, T0)[..],
        [Effect::Send(W, Response::JobAssign { .. })]
    ));
    let (handle, data) = (h(1), b("part"));
    let part = Response::WorkData { handle, data };
    let (handle, numerator, denominator) = (h(1), b("1"), b("2"));
    let status = Response::WorkStatus {
        handle,
        numerator,
        denominator,
    };
    let (handle, data) = (h(1), b("r"));
    let done = Response::WorkComplete { handle, data };
    for forwarded in [part, status, done] {
        let sent = t.req(W, as_request(&forwarded), T0);
        assert_eq!(sent, [send(C1, forwarded.clone()), send(C1, forwarded)]);
    }
    assert_eq!(t.core.job_count(), 0);
    assert!(t.core.conns[&C1].attached.is_empty());
}

/// The worker's packet that the server forwards as `r`.
fn as_request(r: &Response) -> Request {
    match r.clone() {
        Response::WorkData { handle, data } => Request::WorkData { handle, data },
        Response::WorkComplete { handle, data } => Request::WorkComplete { handle, data },
        Response::WorkStatus {
            handle,
            numerator,
            denominator,
        } => Request::WorkStatus {
            handle,
            numerator,
            denominator,
        },
        other => unreachable!("not a forwarded WORK_* packet: {other:?}"),
    }
}

#[test]
fn a_twice_attached_client_leaving_detaches_both_submissions() {
    let mut t = twice_attached();
    // A second client shares the job, then the first leaves: one attachment remains.
    t.req(C2, submit("f", "same", false), T0);
    t.core.disconnect(C1, T0, &mut t.out);
    assert!(t.take().is_empty());
    let id = t.core.job_by_handle(&h(1)).expect("held");
    assert_eq!(t.core.jobs[&id].clients(), [C2]);
    // The last one leaves too: nobody waits, so the job is dropped when a worker asks.
    t.core.disconnect(C2, T0, &mut t.out);
    t.take();
    assert_eq!(t.req(W, Request::GrabJob, T0), [send(W, Response::NoJob)]);
    assert_eq!(t.core.job_count(), 0);
}

#[test]
fn a_background_submission_adds_no_client() {
    let mut t = Harness::two(CoreConfig::default());
    t.req(C1, submit("f", "u", false), T0);
    t.req(C1, submit("f", "u", true), T0);
    let id = t.core.job_by_handle(&h(1)).expect("held");
    assert_eq!(t.core.jobs[&id].clients(), [C1]);
    assert!(t.core.jobs[&id].background);
}

/// Worker `W` registers `f` with CAN_DO_TIMEOUT `timeout` and takes C1's job at `T0`.
fn running_with_timeout(unit: TimeoutUnit, timeout: &str) -> Harness {
    let mut t = Harness::two(CoreConfig {
        timeout_unit: unit,
        ..CoreConfig::default()
    });
    t.connect(W);
    let can_do = Request::CanDoTimeout {
        function: b("f"),
        timeout: b(timeout),
    };
    t.req(W, can_do, T0);
    t.req(C1, submit("f", "", false), T0);
    t.req(W, Request::GrabJob, T0);
    t
}

#[test]
fn a_decimal_timeout_is_seconds_by_default() {
    // Perl's `register_function("f", 2, ...)` sends "2": the job may run for two seconds.
    let mut t = running_with_timeout(TimeoutUnit::default(), "2");
    assert_eq!(t.core.next_deadline(), Some(T0.plus_ms(2_000)));
    assert!(t.tick(T0.plus_ms(1_999)).is_empty());
    assert_eq!(
        t.tick(T0.plus_ms(2_000)),
        [send(C1, Response::WorkFail { handle: h(1) })]
    );
}

#[test]
fn a_decimal_timeout_is_milliseconds_when_configured() {
    let mut t = running_with_timeout(TimeoutUnit::Milliseconds, "2");
    assert_eq!(t.core.next_deadline(), Some(T0.plus_ms(2)));
    assert_eq!(
        t.tick(T0.plus_ms(2)),
        [send(C1, Response::WorkFail { handle: h(1) })]
    );
    // The Go library's binary seconds stay seconds.
    let t = running_with_timeout(TimeoutUnit::Milliseconds, "\0\0\0\x02");
    assert_eq!(t.core.next_deadline(), Some(T0.plus_ms(2_000)));
}

#[test]
fn a_late_result_after_a_timeout_failure_gets_no_error() {
    let late = |action| {
        let mut t = running_with_timeout(TimeoutUnit::Seconds, "1");
        t.core.config.timeout_action = action;
        t.tick(T0.plus_ms(1_000));
        let status = Request::WorkStatus {
            handle: h(1),
            numerator: b("1"),
            denominator: b("2"),
        };
        let done = Request::WorkComplete {
            handle: h(1),
            data: b("late"),
        };
        let replies = [
            t.req(W, status, T0.plus_ms(1_500)),
            t.req(W, done.clone(), T0.plus_ms(1_500)),
            t.req(W, done, T0.plus_ms(1_500)),
        ];
        replies.map(|r| r.len())
    };
    // Failed (the Perl server): the worker's late packets are dropped, its final one forgets
    // the job, so a second WORK_COMPLETE is an error again.
    assert_eq!(late(TimeoutAction::Fail), [0, 0, 1]);
    // Re-queued (gearmand): the job is no longer this worker's, JOB_NOT_FOUND each time.
    assert_eq!(late(TimeoutAction::Requeue), [1, 1, 1]);
}

/// A queued foreground job whose every client left is dropped at once: not left queued and
/// counted in `status` until a worker would take it (gearmand's behaviour). One with a client
/// left, or a background duplicate, stays.
#[test]
fn a_queued_foreground_job_all_of_whose_clients_left_is_dropped() {
    let mut t = Harness::two(CoreConfig::default());
    t.connect(W);
    t.req(C1, submit("f", "alone", false), T0);
    t.req(C1, submit("f", "shared", false), T0);
    t.req(C2, submit("f", "shared", false), T0);
    t.req(C1, submit("f", "kept", false), T0);
    t.req(C2, submit("f", "kept", true), T0);
    assert_eq!(t.core.job_count(), 3);
    t.core.disconnect(C1, T0, &mut t.out);
    t.take();
    assert_eq!(t.core.job_count(), 2, "`alone` is gone");
    assert_eq!(
        t.core.function_stats(b"f").map(|s| s.submitted),
        Some(3),
        "counted as submitted, never run"
    );
    // The worker gets the two that somebody still wants, in order.
    t.req(W, Request::CanDo { function: b("f") }, T0);
    for handle in [h(2), h(3)] {
        assert!(matches!(
            &t.req(W, Request::GrabJob, T0)[..],
            [Effect::Send(W, Response::JobAssign { handle: got, .. })] if *got == handle
        ));
    }
    assert_eq!(t.req(W, Request::GrabJob, T0), [send(W, Response::NoJob)]);
}

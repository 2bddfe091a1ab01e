//! The slow-job and stuck-worker timers: armed when a worker takes a job, gone when the job
//! stops running (completed, timed out and re-queued), fired once (the stuck-worker one moved
//! on by progress first); the invariants check after each step that no stale one is left.

use super::{h, send, submit, Harness, C1, C2, T0};
use crate::core::{CoreConfig, Request, Response, TimeoutAction, TimeoutUnit};

/// C2, a worker of `f`, takes C1's job at [`T0`]; its warning timer (threshold 1 s) is the
/// only one, due at T0 + 1 s (a queued job has none).
fn running(config: CoreConfig) -> Harness {
    let mut t = Harness::two(config);
    t.req(
        C2,
        Request::CanDo {
            function: "f".into(),
        },
        T0,
    );
    t.req(C1, submit("f", "", false), T0);
    assert_eq!(t.core.next_deadline(), None, "queued jobs have no timer");
    t.req(C2, Request::GrabJob, T0);
    assert_eq!(t.core.next_deadline(), Some(T0.plus_ms(1000)));
    t
}

#[test]
fn slow_job_timer_is_armed_on_assignment_and_gone_when_the_job_stops() {
    let mut t = running(CoreConfig {
        slow_job_warning_ms: 1000,
        timeout_unit: TimeoutUnit::Milliseconds,
        timeout_action: TimeoutAction::Requeue,
        ..CoreConfig::default()
    });
    let done = Request::WorkComplete {
        handle: h(1),
        data: "r".into(),
    };
    assert_eq!(
        t.req(C2, done, T0.plus_ms(500)),
        [send(
            C1,
            Response::WorkComplete {
                handle: h(1),
                data: "r".into()
            }
        )]
    );
    assert_eq!(t.core.next_deadline(), None, "finished: timer removed");

    // A job past the threshold: the timer fires (a log line only), once; the job runs on.
    t.req(C1, submit("f", "", false), T0.plus_ms(500));
    t.req(C2, Request::GrabJob, T0.plus_ms(500));
    assert!(t.tick(T0.plus_ms(1500)).is_empty());
    assert_eq!(t.core.next_deadline(), None);
    assert_eq!(t.core.job_count(), 1);

    // Re-queued by a CAN_DO_TIMEOUT: its warning goes with its run, the next run arms anew.
    let timeout = Request::CanDoTimeout {
        function: "g".into(),
        timeout: "100".into(),
    };
    t.req(C2, timeout, T0.plus_ms(2000));
    t.req(C1, submit("g", "", false), T0.plus_ms(2000));
    t.req(C2, Request::GrabJob, T0.plus_ms(2000));
    assert!(t.tick(T0.plus_ms(2100)).is_empty(), "re-queued");
    assert_eq!(t.core.next_deadline(), None);
    t.req(C2, Request::GrabJob, T0.plus_ms(2200));
    assert_eq!(t.core.next_deadline(), Some(T0.plus_ms(2300)));
}

#[test]
fn stuck_worker_timer_moves_with_progress_and_fires_after_silence() {
    let mut t = running(CoreConfig {
        stuck_worker_warning_ms: 1000,
        ..CoreConfig::default()
    });
    // Progress at 600 ms: at 1000 ms the timer moves to 1600 ms instead of warning.
    let status = Request::WorkStatus {
        handle: h(1),
        numerator: "1".into(),
        denominator: "2".into(),
    };
    t.req(C2, status, T0.plus_ms(600));
    assert!(t.tick(T0.plus_ms(1000)).is_empty());
    assert_eq!(t.core.next_deadline(), Some(T0.plus_ms(1600)));
    // Silent since: it fires (a warning only) and is gone; the job runs on.
    assert!(t.tick(T0.plus_ms(1600)).is_empty());
    assert_eq!(t.core.next_deadline(), None);
    assert_eq!(t.core.job_count(), 1);
    // Moved, then the job ends: the moved timer is removed with it.
    t.req(C1, submit("f", "", false), T0.plus_ms(2000));
    t.req(C2, Request::GrabJob, T0.plus_ms(2000));
    let data = Request::WorkData {
        handle: h(2),
        data: "d".into(),
    };
    t.req(C2, data, T0.plus_ms(2500));
    assert!(t.tick(T0.plus_ms(3000)).is_empty());
    assert_eq!(t.core.next_deadline(), Some(T0.plus_ms(3500)));
    t.req(C2, Request::WorkFail { handle: h(2) }, T0.plus_ms(3100));
    assert_eq!(t.core.next_deadline(), None);
}

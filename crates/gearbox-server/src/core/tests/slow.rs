//! The slow-job warning's timer: armed when a worker takes a job, gone when the job stops
//! running (completed, timed out and re-queued), fired once; the invariants check after each
//! step that no stale one is left.

use super::{h, send, submit, Harness, C1, C2, T0};
use crate::core::{CoreConfig, Request, Response, TimeoutAction, TimeoutUnit};

#[test]
fn slow_job_timer_is_armed_on_assignment_and_gone_when_the_job_stops() {
    let mut t = Harness::two(CoreConfig {
        slow_job_warning_ms: 1000,
        timeout_unit: TimeoutUnit::Milliseconds,
        timeout_action: TimeoutAction::Requeue,
        ..CoreConfig::default()
    });
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

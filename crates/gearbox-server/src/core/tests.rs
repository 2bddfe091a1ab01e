//! Core-level tests: the state machine driven directly, with fake clocks, for the logic that is
//! hard to reach through sockets (timers, re-arming, counters). [`invariants`] checks every
//! index and counter after each step; [`model`] is the random model test.

mod access;
mod cluster;
mod invariants;
mod metrics;
mod model;
mod names;
mod persist;
mod slow;
mod submissions;

use bytes::Bytes;
use gearbox_proto::{AdminCommand, Priority, Request, Response, SubmitJob};

use super::state::{ConnInfo, JobState};
use super::{ConnId, Core, CoreConfig, Effect, Outbox, TimeoutAction, TimeoutUnit, UnixMillis};
use invariants::check_invariants;

/// 2026-01-01 00:00:00 UTC: a minute boundary.
const T0: UnixMillis = UnixMillis::from_millis(1_767_225_600_000);
/// A minute in milliseconds.
const MINUTE: u64 = 60_000;
const C1: ConnId = ConnId::new(1);
const C2: ConnId = ConnId::new(2);
const C9: ConnId = ConnId::new(9);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn h(n: u64) -> Bytes {
    Bytes::from(format!("H:t:{n}"))
}

fn submit(function: &str, unique: &str, background: bool) -> Request {
    Request::Submit(SubmitJob {
        function: b(function),
        unique: b(unique),
        data: b("data"),
        priority: Priority::Normal,
        background,
    })
}

/// A core plus the outbox it writes into.
struct Harness {
    core: Core,
    out: Outbox,
}

impl Harness {
    fn new(config: CoreConfig) -> Harness {
        Harness {
            core: Core::new(CoreConfig {
                handle_prefix: "H:t".into(),
                ..config
            }),
            out: Outbox::default(),
        }
    }

    /// A harness with connections [`C1`] and [`C2`] open.
    fn two(config: CoreConfig) -> Harness {
        let mut t = Harness::new(config);
        t.connect(C1);
        t.connect(C2);
        t
    }

    fn connect(&mut self, conn: ConnId) {
        let info = ConnInfo {
            peer_ip: "127.0.0.1".into(),
            fd: conn.get() as i64,
            loopback: true,
            identity: Vec::new(),
        };
        self.core.connect(conn, info);
    }

    fn req(&mut self, conn: ConnId, r: Request, now: UnixMillis) -> Vec<Effect> {
        self.core.request(conn, r, now, &mut self.out);
        self.take()
    }

    fn tick(&mut self, now: UnixMillis) -> Vec<Effect> {
        self.core.tick(now, &mut self.out);
        self.take()
    }

    fn take(&mut self) -> Vec<Effect> {
        check_invariants(&self.core);
        self.out.effects.drain(..).collect()
    }
}

fn send(conn: ConnId, r: Response) -> Effect {
    Effect::Send(conn, r)
}

#[test]
fn sched_job_fires_on_the_minute_and_is_rearmed_with_the_same_handle() {
    let mut t = Harness::two(CoreConfig::default());
    let start = T0.plus_ms(10 * MINUTE + 30_000); // 10:30 past a minute
    let due = T0.plus_ms(11 * MINUTE);
    assert!(t
        .req(C2, Request::CanDo { function: b("f") }, start)
        .is_empty());
    assert!(t.req(C2, Request::PreSleep, start).is_empty());
    let every_minute = Request::SubmitSched {
        function: b("f"),
        unique: b("cron-1"),
        schedule: Box::new(["*", "", "*", "*", "*"].map(b)),
        data: b("tick"),
    };
    assert_eq!(
        t.req(C1, every_minute, start),
        [send(C1, Response::JobCreated { handle: h(1) })]
    );
    assert_eq!(t.core.next_deadline(), Some(due));
    assert_eq!(
        t.core.functions.by_name(b"f").expect("function f").total(),
        1,
        "held"
    );

    assert!(t.tick(due.minus_ms(1)).is_empty(), "not before its minute");
    assert_eq!(
        t.req(C2, Request::GrabJob, due.minus_ms(1)),
        [send(C2, Response::NoJob)]
    );
    assert!(t.req(C2, Request::PreSleep, due.minus_ms(1)).is_empty());
    assert_eq!(t.tick(due), [send(C2, Response::Noop)]);

    for round in 0..2 {
        let fired = due.plus_ms(round * MINUTE);
        let assign = Response::JobAssign {
            handle: h(1),
            function: b("f"),
            data: b("tick"),
        };
        assert_eq!(
            t.req(C2, Request::GrabJob, fired.plus_ms(5)),
            [send(C2, assign)],
            "round {round}"
        );
        assert!(t.tick(fired.plus_ms(10)).is_empty());
        let done = Request::WorkComplete {
            handle: h(1),
            data: b(""),
        };
        assert!(t.req(C2, done, fired.plus_ms(20)).is_empty());
        // Re-armed for the next minute: same handle, nothing queued, a timer set.
        let id = t.core.job_by_handle(&h(1)).expect("held");
        assert_eq!(
            t.core.jobs[&id].state,
            JobState::Waiting {
                due: fired.plus_ms(MINUTE)
            }
        );
        assert_eq!(t.core.next_deadline(), Some(fired.plus_ms(MINUTE)));
        assert_eq!(t.core.function_stats(b"f").unwrap().completed, round + 1);
        assert_eq!(
            t.req(C2, Request::GrabJob, fired.plus_ms(30)),
            [send(C2, Response::NoJob)]
        );
        assert!(t.req(C2, Request::PreSleep, fired.plus_ms(30)).is_empty());
        assert_eq!(t.tick(fired.plus_ms(MINUTE)), [send(C2, Response::Noop)]);
    }
    // A duplicate submit finds the scheduled job.
    let dup = Request::SubmitSched {
        function: b("f"),
        unique: b("cron-1"),
        schedule: Box::new(["*", "*", "*", "*", "*"].map(b)),
        data: b("tick"),
    };
    assert_eq!(
        t.req(C1, dup, due.plus_ms(2 * MINUTE)),
        [send(C1, Response::JobCreated { handle: h(1) })]
    );
}

#[test]
fn sched_job_survives_a_timeout_and_a_cancel_ends_it() {
    let mut t = Harness::two(CoreConfig::default());
    let due = T0.plus_ms(MINUTE);
    let timeout = Request::CanDoTimeout {
        function: b("f"),
        timeout: b("1"),
    };
    t.req(C2, timeout, T0);
    let sched = Request::SubmitSched {
        function: b("f"),
        unique: b(""),
        schedule: Box::new([""; 5].map(b)),
        data: b(""),
    };
    t.req(C1, sched, T0);
    t.tick(due);
    assert!(matches!(
        t.req(C2, Request::GrabJobUniq, due)[..],
        [Effect::Send(C2, Response::JobAssignUniq { .. })]
    ));
    // The worker overruns: the run fails (no client to tell) and the schedule goes on.
    assert!(t.tick(due.plus_ms(1000)).is_empty());
    let id = t.core.job_by_handle(&h(1)).expect("held");
    assert_eq!(
        t.core.jobs[&id].state,
        JobState::Waiting {
            due: due.plus_ms(MINUTE)
        }
    );
    assert_eq!(t.core.function_stats(b"f").unwrap().timed_out, 1);
    let late = t.req(
        C2,
        Request::WorkComplete {
            handle: h(1),
            data: b(""),
        },
        due.plus_ms(1500),
    );
    assert!(
        late.is_empty(),
        "the run it timed out is over: dropped silently"
    );
    // Cancelling a waiting job drops it for good.
    assert!(t.core.cancel(&h(1), due.plus_ms(2000), &mut t.out));
    assert!(t.take().is_empty());
    assert_eq!(t.core.job_count(), 0);
    assert_eq!(
        t.core.functions.by_name(b"f").expect("function f").total(),
        0
    );
    assert_eq!(t.core.next_deadline(), None, "its timer went with it");
}

#[test]
fn epoch_job_is_held_until_due_then_wakes_sleepers() {
    let mut t = Harness::two(CoreConfig::default());
    t.req(C2, Request::CanDo { function: b("f") }, T0);
    t.req(C2, Request::PreSleep, T0);
    let epoch = Request::SubmitEpoch {
        function: b("f"),
        unique: b(""),
        epoch: T0.as_secs() + 5,
        data: b("e"),
    };
    assert_eq!(
        t.req(C1, epoch, T0),
        [send(C1, Response::JobCreated { handle: h(1) })]
    );
    assert_eq!(t.core.next_deadline(), Some(T0.plus_ms(5000)));
    assert!(t.tick(T0.plus_ms(4999)).is_empty());
    assert_eq!(t.tick(T0.plus_ms(5000)), [send(C2, Response::Noop)]);
    assert_eq!(t.core.next_deadline(), None);
    // One in the past is queued at once.
    let past = Request::SubmitEpoch {
        function: b("f"),
        unique: b(""),
        epoch: 1,
        data: b("p"),
    };
    t.req(C1, past, T0.plus_ms(6000));
    assert_eq!(
        t.core.functions.by_name(b"f").expect("function f").queued(),
        2
    );
}

#[test]
fn timeout_fail_tells_clients_and_requeue_respects_job_retries() {
    // C2 runs C1's job with a 100 ms CAN_DO_TIMEOUT.
    let running = |config| {
        let mut t = Harness::two(CoreConfig {
            timeout_unit: TimeoutUnit::Milliseconds,
            ..config
        });
        let timeout = Request::CanDoTimeout {
            function: b("f"),
            timeout: b("100"),
        };
        t.req(C2, timeout, T0);
        t.req(C1, submit("f", "", false), T0);
        t.req(C2, Request::GrabJob, T0);
        t
    };
    let mut t = running(CoreConfig::default());
    assert_eq!(
        t.tick(T0.plus_ms(100)),
        [send(C1, Response::WorkFail { handle: h(1) })]
    );
    assert_eq!(t.core.job_count(), 0);

    let config = CoreConfig {
        timeout_action: TimeoutAction::Requeue,
        job_retries: Some(2),
        ..CoreConfig::default()
    };
    let mut t = running(config);
    assert!(
        t.tick(T0.plus_ms(100)).is_empty(),
        "first expiry: back in the queue"
    );
    assert_eq!(
        t.core.jobs[&t.core.job_by_handle(&h(1)).expect("held")].retries(),
        1
    );
    t.req(C2, Request::GrabJob, T0.plus_ms(200));
    assert_eq!(
        t.tick(T0.plus_ms(300)),
        [send(C1, Response::WorkFail { handle: h(1) })],
        "second: past the limit"
    );
    assert_eq!(t.core.job_count(), 0);
}

#[test]
fn round_robin_survives_abilities_shrinking() {
    let mut t = Harness::two(CoreConfig::default());
    for f in ["a", "b", "c"] {
        t.req(C2, Request::CanDo { function: b(f) }, T0);
        t.req(C1, submit(f, "", true), T0);
        t.req(C1, submit(f, "", true), T0);
    }
    t.req(C2, Request::GrabJob, T0); // a, cursor moves to b
    t.req(C2, Request::GrabJob, T0); // b, cursor moves to c
    t.req(C2, Request::GrabJob, T0); // c, cursor moves past the end
    t.req(C2, Request::CantDo { function: b("c") }, T0);
    t.req(C2, Request::CantDo { function: b("b") }, T0);
    let got = t.req(C2, Request::GrabJob, T0);
    assert!(
        matches!(&got[..], [Effect::Send(C2, Response::JobAssign { function, .. })] if function == "a")
    );
}

#[test]
fn a_connection_that_is_client_and_worker_of_the_same_job_can_leave() {
    let mut t = Harness::two(CoreConfig::default());
    t.req(C1, Request::CanDo { function: b("f") }, T0);
    t.req(C1, submit("f", "u", false), T0);
    t.req(C2, submit("f", "u", false), T0);
    t.req(C1, Request::GrabJob, T0);
    t.core.disconnect(C1, T0.plus_ms(1), &mut t.out);
    assert!(t.take().is_empty());
    let id = t.core.job_by_handle(&h(1)).expect("held");
    assert_eq!(
        (t.core.jobs[&id].state, t.core.jobs[&id].clients()),
        (JobState::Queued, &[C2][..])
    );
    t.core.disconnect(C2, T0.plus_ms(2), &mut t.out);
    t.take();
    assert_eq!(
        t.core.functions.by_name(b"f").expect("function f").total(),
        0,
        "abandoned: dropped at once, not counted until a worker would grab it"
    );
    assert_eq!(t.core.job_count(), 0);
}

#[test]
fn graceful_drain_refuses_new_jobs_and_reports_idle_only_when_done() {
    let mut t = Harness::two(CoreConfig::default());
    t.req(C1, submit("f", "", true), T0);
    t.core.start_draining();
    let refused = t.req(C1, submit("f", "", true), T0);
    assert!(
        matches!(&refused[..], [Effect::Send(C1, Response::Error { code, .. })] if code == "SHUTDOWN")
    );
    assert!(!t.core.is_idle());
    t.req(C2, Request::CanDo { function: b("f") }, T0);
    t.req(C2, Request::GrabJob, T0);
    assert!(!t.core.is_idle(), "running counts");
    t.req(
        C2,
        Request::WorkComplete {
            handle: h(1),
            data: b(""),
        },
        T0,
    );
    assert!(t.core.is_idle());
}

#[test]
fn admin_cancel_of_a_running_job_frees_its_worker() {
    let mut t = Harness::two(CoreConfig::default());
    t.req(C2, Request::CanDo { function: b("f") }, T0);
    t.req(C1, submit("f", "", false), T0);
    t.req(C2, Request::GrabJob, T0);
    t.core
        .admin(C1, AdminCommand::CancelJob { handle: h(1) }, T0, &mut t.out);
    let effects = t.take();
    assert_eq!(effects[0], send(C1, Response::WorkFail { handle: h(1) }));
    assert!(t.core.conns[&C2].running.is_empty());
    assert_eq!(
        t.core.functions.by_name(b"f").expect("function f").running,
        0
    );
}

#[test]
fn a_client_attached_to_a_sched_job_is_released_after_its_run() {
    let mut t = Harness::two(CoreConfig::default());
    t.req(C2, Request::CanDo { function: b("f") }, T0);
    let sched = Request::SubmitSched {
        function: b("f"),
        unique: b("c"),
        schedule: Box::new([""; 5].map(b)),
        data: b(""),
    };
    t.req(C1, sched, T0);
    // A foreground duplicate waits for the next run.
    assert_eq!(
        t.req(C1, submit("f", "c", false), T0),
        [send(C1, Response::JobCreated { handle: h(1) })]
    );
    for round in 1..=2 {
        let at = T0.plus_ms(round * MINUTE);
        t.tick(at);
        t.req(C2, Request::GrabJob, at);
        let done = t.req(
            C2,
            Request::WorkComplete {
                handle: h(1),
                data: b("r"),
            },
            at.plus_ms(1),
        );
        let expected: &[Effect] = if round == 1 {
            &[send(
                C1,
                Response::WorkComplete {
                    handle: h(1),
                    data: b("r"),
                },
            )]
        } else {
            &[]
        };
        assert_eq!(done, expected, "round {round}: only the run it waited for");
    }
    assert!(t.core.conns[&C1].attached.is_empty());
}

#[test]
fn shutdown_is_refused_from_a_remote_peer_and_graceful_drains_at_once() {
    let mut t = Harness::new(CoreConfig::default());
    t.core.connect(
        C9,
        ConnInfo {
            peer_ip: "192.0.2.7".into(),
            fd: 9,
            loopback: false,
            identity: Vec::new(),
        },
    );
    t.core.admin(
        C9,
        AdminCommand::Shutdown { graceful: false },
        T0,
        &mut t.out,
    );
    assert_eq!(
        t.take(),
        [Effect::Text(
            C9,
            b("ERR PERMISSION_DENIED shutdown+is+only+accepted+from+loopback\r\n")
        )]
    );
    t.connect(C1);
    t.core.admin(
        C1,
        AdminCommand::Shutdown { graceful: true },
        T0,
        &mut t.out,
    );
    assert_eq!(
        t.take(),
        [
            Effect::Shutdown { graceful: true },
            Effect::Text(C1, b("OK\r\n"))
        ]
    );
    // From this moment on new jobs are refused, before the network layer acts on the effect.
    let effects = t.req(C1, submit("f", "", true), T0);
    assert!(
        matches!(&effects[..], [Effect::Send(C1, Response::Error { code, .. })] if &code[..] == b"SHUTDOWN"),
        "{effects:?}"
    );
}

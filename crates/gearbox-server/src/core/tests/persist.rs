//! Durability in the core: acknowledge after commit, removal of finished jobs, replay.

use bytes::Bytes;
use gearbox_proto::{Request, Response};
use gearbox_store::{StoreError, StoredJob};

use super::{b, h, send, submit, Harness, C1, C2, T0};
use crate::core::{CoreConfig, Effect};

fn persistent() -> Harness {
    Harness::two(CoreConfig {
        persistent: true,
        ..CoreConfig::default()
    })
}

fn persisted_handles(effects: &[Effect]) -> Vec<Bytes> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Persist(job) => Some(job.handle.clone()),
            _ => None,
        })
        .collect()
}

fn committed(t: &mut Harness, handles: &[Bytes], result: Result<(), &str>) -> Vec<Effect> {
    let error = result.map_err(|text| StoreError::TimedOut {
        location: text.to_owned(),
        millis: 5,
    });
    t.core
        .committed(handles, error.as_ref().map(|_| ()), T0, &mut t.out);
    t.take()
}

#[test]
fn background_job_is_acknowledged_after_commit_and_removed_when_done() {
    let mut t = persistent();
    let effects = t.req(C1, submit("f", "u", true), T0);
    assert_eq!(
        persisted_handles(&effects),
        [h(1)],
        "persist, and nothing sent yet"
    );
    assert_eq!(effects.len(), 1);
    assert!(t
        .req(C2, Request::CanDo { function: b("f") }, T0)
        .is_empty());
    assert_eq!(
        t.req(C2, Request::GrabJob, T0),
        [send(C2, Response::NoJob)],
        "not queued before the store has it"
    );
    assert_eq!(
        committed(&mut t, &[h(1)], Ok(())),
        [send(C1, Response::JobCreated { handle: h(1) })]
    );
    assert!(matches!(
        &t.req(C2, Request::GrabJob, T0)[..],
        [Effect::Send(C2, Response::JobAssign { .. })]
    ));
    let done = Request::WorkComplete {
        handle: h(1),
        data: b(""),
    };
    assert_eq!(t.req(C2, done, T0), [Effect::Complete(h(1))]);
}

#[test]
fn a_failed_commit_is_an_error_and_no_job() {
    let mut t = persistent();
    t.req(C1, submit("f", "u", true), T0);
    // A duplicate submitted while the commit is in flight waits for the same commit.
    assert!(t.req(C2, submit("f", "u", true), T0).is_empty());
    let effects = committed(&mut t, &[h(1)], Err("disk"));
    assert_eq!(effects.len(), 2);
    for (conn, e) in [C1, C2].into_iter().zip(&effects) {
        assert!(
            matches!(e, Effect::Send(c, Response::Error { code, text })
                if *c == conn && &code[..] == b"QUEUE_ERROR" && text.ends_with(b"job store disk did not answer within 5 ms: check the database's load and the disk")),
            "{e:?}"
        );
    }
    assert_eq!(t.core.job_count(), 0);
}

#[test]
fn duplicates_share_one_commit_and_foreground_jobs_skip_the_store() {
    let mut t = persistent();
    assert_eq!(
        persisted_handles(&t.req(C1, submit("f", "u", true), T0)),
        [h(1)]
    );
    assert!(t.req(C2, submit("f", "u", true), T0).is_empty());
    let effects = committed(&mut t, &[h(1)], Ok(()));
    assert_eq!(
        effects,
        [
            send(C1, Response::JobCreated { handle: h(1) }),
            send(C2, Response::JobCreated { handle: h(1) })
        ]
    );
    assert_eq!(
        t.req(C1, submit("g", "", false), T0),
        [send(C1, Response::JobCreated { handle: h(2) })],
        "foreground: at once, never stored"
    );
}

#[test]
fn a_background_duplicate_of_a_foreground_job_stores_it_first() {
    let mut t = persistent();
    assert_eq!(
        t.req(C1, submit("f", "u", false), T0),
        [send(C1, Response::JobCreated { handle: h(1) })]
    );
    assert_eq!(
        persisted_handles(&t.req(C2, submit("f", "u", true), T0)),
        [h(1)]
    );
    // The job runs and ends before the commit comes back: the waiting submitter is answered
    // when it ends, and the late commit removes the stored copy again.
    assert!(t
        .req(C2, Request::CanDo { function: b("f") }, T0)
        .is_empty());
    t.req(C2, Request::GrabJob, T0);
    let done = Request::WorkComplete {
        handle: h(1),
        data: b("r"),
    };
    let effects = t.req(C2, done, T0);
    assert!(effects.contains(&send(C2, Response::JobCreated { handle: h(1) })));
    assert_eq!(committed(&mut t, &[h(1)], Ok(())), [Effect::Complete(h(1))]);
}

#[test]
fn replayed_jobs_keep_their_handles_and_new_handles_follow() {
    let mut t = persistent();
    let mut stored = StoredJob::new(h(7), b("f"), b("payload"));
    stored.unique = b("u");
    t.core.restore(stored, T0, &mut t.out);
    let mut later = StoredJob::new(h(9), b("f"), b("later"));
    later.when_to_run = T0.as_secs() + 60;
    t.core.restore(later, T0, &mut t.out);
    // A duplicate record (same function and unique) is removed from the store.
    let mut dup = StoredJob::new(h(8), b("f"), b("again"));
    dup.unique = b("u");
    t.core.restore(dup, T0, &mut t.out);
    assert_eq!(t.take(), [Effect::Complete(h(8))]);
    assert_eq!(t.core.job_count(), 2);
    // Coalesces with the replayed job; the next new job continues after the highest handle.
    assert_eq!(
        t.req(C1, submit("f", "u", true), T0),
        [send(C1, Response::JobCreated { handle: h(7) })]
    );
    assert_eq!(
        persisted_handles(&t.req(C1, submit("f", "", true), T0)),
        [h(10)]
    );
    assert!(t
        .req(C2, Request::CanDo { function: b("f") }, T0)
        .is_empty());
    assert!(matches!(
        &t.req(C2, Request::GrabJob, T0)[..],
        [Effect::Send(C2, Response::JobAssign { handle, data, .. })] if *handle == h(7) && &data[..] == b"payload"
    ));
    assert_eq!(
        t.req(C2, Request::GrabJob, T0),
        [send(C2, Response::NoJob)],
        "h(9) waits for its time"
    );
}

#[test]
fn replayed_foreign_handles_name_their_jobs_and_derived_ones_do_not() {
    let mut t = persistent();
    // Another host's handle, and one of ours written with a leading zero.
    for (handle, data) in [("H:other:3", "a"), ("H:t:05", "b")] {
        t.core
            .restore(StoredJob::new(b(handle), b("f"), b(data)), T0, &mut t.out);
    }
    assert!(t.take().is_empty());
    assert_eq!(t.core.job_count(), 2);
    // Neither is in our canonical form, so both are foreign: they took ids 1 and 2, yet
    // neither answers to H:t:1, H:t:2 or H:t:5: a handle names a job only as it was handed
    // out.
    for n in [1, 2, 5] {
        assert_eq!(t.core.job_by_handle(&h(n)), None, "H:t:{n}");
    }
    assert_eq!(
        persisted_handles(&t.req(C1, submit("f", "", true), T0)),
        [h(3)]
    );
    assert!(t
        .req(C2, Request::CanDo { function: b("f") }, T0)
        .is_empty());
    for (handle, data) in [("H:other:3", "a"), ("H:t:05", "b")] {
        let grabbed = t.req(C2, Request::GrabJob, T0);
        assert!(
            matches!(&grabbed[..], [Effect::Send(C2, Response::JobAssign { handle: got, data: d, .. })]
                if *got == b(handle) && *d == b(data)),
            "{grabbed:?}"
        );
        let done = Request::WorkComplete {
            handle: b(handle),
            data: Bytes::new(),
        };
        assert_eq!(t.req(C2, done, T0), [Effect::Complete(b(handle))]);
    }
    assert_eq!(t.core.job_count(), 1);
}

#[test]
fn a_function_whose_job_awaits_the_store_cannot_be_dropped() {
    let mut t = persistent();
    t.req(C1, submit("f", "u", true), T0);
    let drop_f = |t: &mut Harness| {
        let cmd = gearbox_proto::AdminCommand::DropFunction { name: b("f") };
        t.core.admin(C2, cmd, T0, &mut t.out);
        match &t.take()[..] {
            [Effect::Text(C2, reply)] => reply.clone(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        &drop_f(&mut t)[..],
        b"ERR there are still queued jobs for this function\r\n",
        "the job waiting for its commit holds the function"
    );
    committed(&mut t, &[h(1)], Ok(()));
    assert!(t
        .req(C2, Request::CanDo { function: b("f") }, T0)
        .is_empty());
    assert!(matches!(
        &t.req(C2, Request::GrabJob, T0)[..],
        [Effect::Send(C2, Response::JobAssign { function, .. })] if &function[..] == b"f"
    ));
    let done = Request::WorkComplete {
        handle: h(1),
        data: b(""),
    };
    t.req(C2, done, T0);
    t.req(C2, Request::CantDo { function: b("f") }, T0);
    assert_eq!(&drop_f(&mut t)[..], b"OK\r\n", "nothing holds it any more");
}

//! Cluster mode in the core: holding jobs only for ready workers, releasing the rest,
//! wanting jobs for idle workers, taking claimed jobs in, coalescing across members.

use bytes::Bytes;
use gearbox_proto::{Request, Response};
use gearbox_store::cluster::{Coalesced, Want};
use gearbox_store::StoredJob;

use super::{b, h, send, submit, Harness, C1, C2, C9, T0};
use crate::core::cluster::ClusterPass;
use crate::core::{CoreConfig, Effect};

fn member() -> Harness {
    let mut t = Harness::two(CoreConfig {
        persistent: true,
        cluster: true,
        ..CoreConfig::default()
    });
    t.connect(C9);
    t
}

/// Submits a background job on `conn` and commits it; its handle.
fn stored(t: &mut Harness, function: &str, unique: &str, n: u64) -> Bytes {
    t.req(C1, submit(function, unique, true), T0);
    t.core.committed(&[h(n)], Ok(()), T0, &mut t.out);
    t.take();
    h(n)
}

fn want(function: &str, count: u32) -> Want {
    Want {
        function: b(function),
        count,
    }
}

fn job(handle: &str, function: &str, unique: &str) -> StoredJob {
    StoredJob {
        unique: b(unique),
        ..StoredJob::new(handle.to_owned(), function.to_owned(), "payload")
    }
}

#[test]
fn a_job_with_no_ready_worker_is_released_and_one_with_a_ready_worker_is_kept() {
    let mut t = member();
    let first = stored(&mut t, "f", "", 1);
    let pass = t.core.cluster_pass(false, T0);
    assert_eq!(pass.release, [first], "no worker here: given back");
    assert!(pass.wants.is_empty());
    assert_eq!(t.core.job_count(), 0);
    assert!(
        t.core.cluster_pass(true, T0).release.is_empty(),
        "released once"
    );
    // A worker that asked and found nothing is ready: the next job stays for it, and one
    // more is wanted (two held per worker).
    t.req(C2, Request::CanDo { function: b("f") }, T0);
    assert_eq!(t.req(C2, Request::GrabJob, T0), [send(C2, Response::NoJob)]);
    let second = stored(&mut t, "f", "", 2);
    let pass = t.core.cluster_pass(false, T0);
    assert_eq!((pass.release.len(), pass.wants), (0, vec![want("f", 1)]));
    assert!(matches!(
        &t.req(C2, Request::GrabJob, T0)[..],
        [Effect::Send(C2, Response::JobAssign { handle, .. })] if *handle == second
    ));
    // Busy now: a third job is held for it a while, then given back for a worker elsewhere.
    let third = stored(&mut t, "f", "", 3);
    let pass = t.core.cluster_pass(false, T0);
    assert_eq!(pass.release, Vec::<Bytes>::new());
    let recheck = pass.recheck_at.expect("a time to look again");
    assert_eq!(recheck, T0.plus_ms(crate::core::cluster::HOLD_MS));
    let pass = t.core.cluster_pass(false, recheck.minus_ms(1));
    assert!(pass.release.is_empty(), "not yet");
    assert_eq!(t.core.cluster_pass(false, recheck).release, [third]);
    assert_eq!(
        t.core.cluster_pass(true, recheck),
        ClusterPass::default(),
        "nothing held, nothing wanted while the worker is busy"
    );
}

#[test]
fn ready_workers_beyond_queued_jobs_are_wants_and_claimed_jobs_wake_them() {
    let mut t = member();
    for c in [C1, C2] {
        t.req(c, Request::CanDo { function: b("f") }, T0);
        t.req(c, Request::CanDo { function: b("g") }, T0);
        t.req(c, Request::PreSleep, T0);
    }
    let mut pass = t.core.cluster_pass(true, T0);
    pass.wants.sort_by(|a, b| a.function.cmp(&b.function));
    // Two ready workers, two held jobs each.
    assert_eq!(pass.wants, [want("f", 4), want("g", 4)]);
    assert!(pass.release.is_empty());
    t.core
        .cluster_adopt(vec![job("H:other.1:7", "f", "")], T0, &mut t.out);
    let woken = t.take();
    assert!(woken.contains(&send(C1, Response::Noop)));
    assert!(t.out.effects.is_empty());
    // One queued for two ready workers: three more wanted, nothing released.
    let pass = t.core.cluster_pass(false, T0);
    assert!(pass.release.is_empty());
    assert!(pass.wants.contains(&want("f", 3)));
    assert!(matches!(
        &t.req(C1, Request::GrabJob, T0)[..],
        [Effect::Send(C1, Response::JobAssign { handle, .. })] if handle == "H:other.1:7"
    ));
    // The worker that ran it finishes it: the shared row goes.
    let done = Request::WorkComplete {
        handle: b("H:other.1:7"),
        data: b(""),
    };
    assert_eq!(t.req(C1, done, T0), [Effect::Complete(b("H:other.1:7"))]);
}

#[test]
fn only_stored_background_jobs_without_clients_are_released() {
    let mut t = member();
    // A foreground job stays with its client's server.
    t.req(C1, submit("f", "fg", false), T0);
    // A background job whose commit is in flight is not stored yet.
    t.req(C1, submit("f", "bg", true), T0);
    let pass = t.core.cluster_pass(true, T0);
    assert!(pass.release.is_empty(), "{pass:?}");
    assert_eq!(t.core.job_count(), 2);
}

#[test]
fn lowest_priority_and_newest_go_first_and_draining_gives_back_everything() {
    let mut t = member();
    t.req(C2, Request::CanDo { function: b("f") }, T0);
    t.req(C2, Request::PreSleep, T0);
    let high = Request::Submit(gearbox_proto::request::SubmitJob {
        priority: gearbox_proto::Priority::High,
        ..match submit("f", "", true) {
            Request::Submit(s) => s,
            _ => unreachable!(),
        }
    });
    t.req(C1, submit("f", "", true), T0);
    t.req(C1, high, T0);
    t.req(C1, submit("f", "", true), T0);
    t.core
        .committed(&[h(1), h(2), h(3)], Ok(()), T0, &mut t.out);
    t.take();
    // One ready worker holds two: of three queued, the newest normal one goes.
    assert_eq!(t.core.cluster_pass(false, T0).release, [h(3)]);
    t.core.start_draining();
    let pass = t.core.cluster_pass(false, T0);
    assert_eq!(pass.release, [h(1), h(2)], "lowest priority first");
    assert!(pass.wants.is_empty(), "a draining member claims nothing");
    assert!(t.core.is_idle());
}

#[test]
fn a_unique_id_already_in_the_cluster_answers_with_the_existing_handle() {
    let mut t = member();
    t.req(C1, submit("f", "u", true), T0);
    t.req(C2, submit("f", "u", true), T0);
    let coalesced = [Coalesced {
        handle: h(1),
        existing: b("H:other.1:42"),
    }];
    t.core.cluster_coalesced(&coalesced, &mut t.out);
    let effects = t.take();
    for c in [C1, C2] {
        assert!(effects.contains(&send(
            c,
            Response::JobCreated {
                handle: b("H:other.1:42")
            }
        )));
    }
    assert_eq!(t.core.job_count(), 0, "the local copy is dropped");
    assert!(effects.iter().all(|e| !matches!(e, Effect::Complete(_))));
}

#[test]
fn a_member_declared_dead_forgets_the_jobs_it_no_longer_holds() {
    let mut t = member();
    t.req(C2, Request::CanDo { function: b("f") }, T0);
    t.req(C2, Request::PreSleep, T0);
    let running = stored(&mut t, "f", "", 1);
    t.req(C9, Request::CanDo { function: b("f") }, T0);
    stored(&mut t, "f", "", 2);
    t.req(C9, Request::PreSleep, T0);
    assert!(matches!(
        &t.req(C9, Request::GrabJob, T0)[..],
        [Effect::Send(C9, Response::JobAssign { .. })]
    ));
    // C9 took the oldest; the other was queued.
    assert_eq!(t.core.cluster_forget_held(), 1, "the queued one");
    assert_eq!(t.core.job_count(), 1);
    let done = Request::WorkComplete {
        handle: running,
        data: b(""),
    };
    assert!(t
        .req(C9, done, T0)
        .iter()
        .any(|e| matches!(e, Effect::Complete(_))));
}

fn as_peer(t: &mut Harness, conn: crate::core::ConnId) {
    let mut id = crate::core::cluster::PEER_CLIENT_ID_PREFIX.to_vec();
    id.extend_from_slice(b"s2");
    t.req(conn, Request::SetClientId { id: id.into() }, T0);
}

#[test]
fn a_bridge_takes_only_foreground_jobs_of_local_clients() {
    let mut t = member();
    // C9 is another member's bridge, a worker for f here.
    as_peer(&mut t, C9);
    t.req(C9, Request::CanDo { function: b("f") }, T0);
    // A stored background job: for the shared queue, never for a bridge.
    stored(&mut t, "f", "", 1);
    assert_eq!(t.req(C9, Request::GrabJob, T0), [send(C9, Response::NoJob)]);
    // A bridge is not a ready worker: the background job is still given back.
    assert_eq!(t.core.cluster_pass(true, T0).release, [h(1)]);
    // C2, a bridge's client side here, submits a foreground job: not for another bridge.
    as_peer(&mut t, C2);
    t.req(C2, submit("f", "", false), T0);
    assert_eq!(t.req(C9, Request::GrabJob, T0), [send(C9, Response::NoJob)]);
    // A local client's foreground job goes to the bridge, past the bridged one.
    t.req(C1, submit("f", "", false), T0);
    assert!(matches!(
        &t.req(C9, Request::GrabJob, T0)[..],
        [Effect::Send(C9, Response::JobAssign { handle, .. })] if *handle == h(3)
    ));
}

#[test]
fn bridge_demand_is_the_functions_local_workers_are_ready_for() {
    let mut t = member();
    as_peer(&mut t, C9);
    t.req(C9, Request::CanDo { function: b("g") }, T0);
    t.req(C9, Request::PreSleep, T0);
    assert_eq!(t.core.bridge_demand().ready, 0, "a bridge is no worker");
    t.req(C2, Request::CanDo { function: b("f") }, T0);
    t.req(C2, Request::CanDo { function: b("h") }, T0);
    assert_eq!(
        t.core.bridge_demand().ready,
        0,
        "registered, not asking yet"
    );
    t.req(C2, Request::PreSleep, T0);
    let demand = t.core.bridge_demand();
    assert_eq!(demand.ready, 1);
    assert_eq!(
        demand.functions.into_iter().collect::<Vec<_>>(),
        [b("f"), b("h")]
    );
    t.core.start_draining();
    assert_eq!(
        t.core.bridge_demand().ready,
        0,
        "a draining member takes nothing"
    );
}

#[test]
fn the_load_a_member_publishes_leaves_bridges_out() {
    let mut t = member();
    as_peer(&mut t, C9);
    t.req(C9, Request::CanDo { function: b("f") }, T0);
    t.req(C2, Request::CanDo { function: b("f") }, T0);
    // A local client's foreground job, taken by the bridge: it runs on the other member.
    t.req(C1, submit("f", "", false), T0);
    assert!(matches!(
        &t.req(C9, Request::GrabJob, T0)[..],
        [Effect::Send(C9, Response::JobAssign { .. })]
    ));
    let status = t.core.cluster_status();
    assert_eq!((status.connections, status.workers), (2, 1));
    assert_eq!(status.functions.len(), 1);
    let f = &status.functions[0];
    assert_eq!((f.queued, f.running, f.workers), (0, 0, 1));
}

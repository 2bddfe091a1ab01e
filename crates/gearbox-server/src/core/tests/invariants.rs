//! The consistency checks run after every step of the core tests: queues, counters, indexes,
//! workers and attached clients all agree with the jobs.

use std::collections::HashSet;

use crate::core::state::JobState;
use crate::core::table::UniqueKey;
use crate::core::{Core, TimerKind, UnixMillis};

/// Checks that every index and counter of the core agrees with its jobs.
pub(super) fn check_invariants(core: &Core) {
    // No stale timers: each one belongs to a job still waiting for exactly that moment.
    for &(due, id, kind) in &core.timers {
        let state = core.jobs.get(&id).map(|j| j.state);
        let live = match kind {
            TimerKind::Due => state == Some(JobState::Waiting { due }),
            TimerKind::Timeout => {
                matches!(state, Some(JobState::Running { deadline: Some(d), .. }) if d == due)
            }
            // Armed at assignment for the threshold; disarmed when the job stops running.
            TimerKind::Slow => {
                let since = core.jobs.get(&id).map(|j| j.since);
                matches!(state, Some(JobState::Running { .. }))
                    && since.map(|s| s.plus_ms(core.config.slow_job_warning_ms)) == Some(due)
            }
            // Armed at assignment for the threshold, moved when it fires after progress.
            TimerKind::Stuck => core.jobs.get(&id).is_some_and(|j| {
                let first = j.since.plus_ms(core.config.stuck_worker_warning_ms);
                matches!(j.state, JobState::Running { .. }) && j.stuck_due().unwrap_or(first) == due
            }),
        };
        assert!(
            live,
            "stale {kind:?} timer at {due:?} for job {id} ({state:?})"
        );
    }
    let mut seen = HashSet::new();
    for (fid, f) in core.functions.iter() {
        let name = &f.name;
        assert_eq!(
            core.functions.id(name),
            Some(fid),
            "{name:?} is found by name"
        );
        for (p, q) in f.queues.iter().enumerate() {
            for id in q {
                assert!(seen.insert(*id), "job {id} queued twice");
                let j = &core.jobs[id];
                assert_eq!(j.state, JobState::Queued, "job {id} in a queue");
                assert_eq!(
                    (j.function, j.priority.index()),
                    (fid, p),
                    "job {id} in its own queue"
                );
            }
        }
        let count = |want: fn(&JobState) -> bool| {
            core.jobs
                .values()
                .filter(|j| j.function == fid && want(&j.state))
                .count()
        };
        assert_eq!(
            f.running as usize,
            count(|s| matches!(s, JobState::Running { .. })),
            "running of {name:?}"
        );
        assert_eq!(
            f.waiting as usize,
            count(|s| matches!(s, JobState::Waiting { .. })),
            "waiting of {name:?}"
        );
        assert_eq!(f.jobs as usize, count(|_| true), "jobs of {name:?}");
        for w in &f.workers {
            assert!(
                core.conns.get(w).is_some_and(|c| c.ability(fid).is_some()),
                "worker {w} of {name:?}"
            );
        }
    }
    for (handle, id) in &core.foreign {
        assert_eq!(
            core.jobs[id].own_handle(),
            Some(handle),
            "foreign handle of {id}"
        );
    }
    let own_handles = core.jobs.values().filter(|j| j.own_handle().is_some());
    assert_eq!(
        own_handles.count(),
        core.foreign.len(),
        "foreign handles indexed"
    );
    for (hash, id) in core.uniques.iter() {
        let j = &core.jobs[&id];
        let key = UniqueKey::of_job(j).expect("indexed jobs have a unique id");
        assert_eq!(
            core.uniques.hash(&core.functions[j.function].name, key),
            hash,
            "unique index of {id}"
        );
    }
    let keyed = core
        .jobs
        .values()
        .filter(|j| UniqueKey::of_job(j).is_some());
    assert_eq!(
        keyed.count(),
        core.uniques.len(),
        "one unique index entry per keyed job"
    );
    for (id, j) in core.jobs.iter() {
        assert_eq!(
            core.job_by_handle(&core.handle_of(*id)),
            Some(*id),
            "handle of {id}"
        );
        assert!(
            core.functions.iter().any(|(f, _)| f == j.function),
            "function of job {id} exists"
        );
        match j.state {
            JobState::Queued => assert!(seen.contains(id), "queued job {id} is in a queue"),
            JobState::Running { worker, deadline } => {
                let c = core
                    .conns
                    .get(&worker)
                    .expect("running job's worker is connected");
                assert!(c.running.contains(id), "worker {worker} knows it runs {id}");
                if let Some(d) = deadline {
                    assert!(
                        core.timers.contains(&(d, *id, TimerKind::Timeout)),
                        "timeout timer of {id}"
                    );
                }
            }
            JobState::Waiting { due } => {
                assert!(
                    due == UnixMillis::NEVER || core.timers.contains(&(due, *id, TimerKind::Due))
                );
            }
            JobState::Persisting => {
                assert!(
                    !seen.contains(id),
                    "job {id} waiting for the store is in no queue"
                );
                assert!(
                    !j.persisted,
                    "job {id} waiting for its first commit is not stored yet"
                );
                assert!(j.background, "only background jobs wait for the store");
            }
        }
        assert!(
            core.config.persistent || (!j.persisted && j.acks().is_empty()),
            "job {id}: no store, nothing stored"
        );
        if let Some(key) = UniqueKey::of_job(j) {
            let hash = core.uniques.hash(&core.functions[j.function].name, key);
            assert_eq!(core.find_unique(hash, j.function, key), Some(*id));
        }
        for cl in j.clients() {
            assert!(
                core.conns.get(cl).is_some_and(|c| c.attached.contains(id)),
                "client {cl} of {id}"
            );
        }
    }
    for (cid, c) in &core.conns {
        for id in &c.running {
            let running_here = matches!(core.jobs.get(id).map(|j| j.state), Some(JobState::Running { worker, .. }) if worker == *cid);
            assert!(running_here, "conn {cid} runs {id}");
        }
        for id in &c.attached {
            assert!(
                core.jobs.get(id).is_some_and(|j| j.clients().contains(cid)),
                "conn {cid} waits on {id}"
            );
        }
        for a in &c.abilities {
            let workers = &core.functions[a.function].workers;
            assert_eq!(
                workers.iter().filter(|w| *w == cid).count(),
                1,
                "conn {cid} listed once for its ability"
            );
        }
    }
}

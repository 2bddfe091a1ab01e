//! A random model test: sequences of submits, grabs, results, timeouts and disconnects over
//! three connections, with every index and counter checked after each step, and no job lost.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use gearbox_proto::{AdminCommand, Priority, Request, Response, SubmitJob};
use proptest::prelude::*;

use super::{check_invariants, Harness, T0};
use crate::core::state::{JobKind, JobState};
use crate::core::{ConnId, CoreConfig, Effect, JobId, TimeoutAction, TimeoutUnit, UnixMillis};

const FUNCTIONS: [&str; 2] = ["a", "b"];
const UNIQUES: [&str; 3] = ["", "u", "v"];

#[derive(Debug, Clone)]
enum Op {
    Submit {
        conn: usize,
        background: bool,
        priority: usize,
        function: usize,
        unique: usize,
    },
    SubmitEpoch {
        conn: usize,
        function: usize,
        unique: usize,
        delay_ms: u64,
    },
    /// A job repeated every minute.
    SubmitSched {
        conn: usize,
        function: usize,
        unique: usize,
    },
    CanDo {
        conn: usize,
        function: usize,
        timeout_ms: Option<u64>,
    },
    CantDo {
        conn: usize,
        function: usize,
    },
    PreSleep {
        conn: usize,
    },
    Grab {
        conn: usize,
    },
    /// WORK_COMPLETE (or WORK_FAIL) for one of the jobs `conn` runs, or a bogus handle.
    Finish {
        conn: usize,
        pick: usize,
        fail: bool,
    },
    Advance {
        ms: u64,
    },
    /// Admin `cancel job` of one held job (by position in handle order).
    Cancel {
        pick: usize,
    },
    /// The connection drops and a fresh one takes its slot.
    Reconnect {
        conn: usize,
    },
    /// Admin `drop function` (refused while anything holds the function).
    DropFunction {
        function: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let conn = 0..3usize;
    prop_oneof![
        4 => (conn.clone(), any::<bool>(), 0..3usize, 0..2usize, 0..3usize).prop_map(
            |(conn, background, priority, function, unique)| Op::Submit { conn, background, priority, function, unique }
        ),
        1 => (conn.clone(), 0..2usize, 0..3usize, 0..3000u64)
            .prop_map(|(conn, function, unique, delay_ms)| Op::SubmitEpoch { conn, function, unique, delay_ms }),
        1 => (conn.clone(), 0..2usize, 0..3usize)
            .prop_map(|(conn, function, unique)| Op::SubmitSched { conn, function, unique }),
        2 => (conn.clone(), 0..2usize, prop::option::of(1..500u64))
            .prop_map(|(conn, function, timeout_ms)| Op::CanDo { conn, function, timeout_ms }),
        1 => (conn.clone(), 0..2usize).prop_map(|(conn, function)| Op::CantDo { conn, function }),
        1 => conn.clone().prop_map(|conn| Op::PreSleep { conn }),
        4 => conn.clone().prop_map(|conn| Op::Grab { conn }),
        3 => (conn.clone(), 0..4usize, any::<bool>()).prop_map(|(conn, pick, fail)| Op::Finish { conn, pick, fail }),
        // Short steps for timeouts and EPOCH jobs, long ones for the minute schedules.
        2 => prop_oneof![0..1000u64, 0..70_000u64].prop_map(|ms| Op::Advance { ms }),
        1 => (0..8usize).prop_map(|pick| Op::Cancel { pick }),
        1 => conn.prop_map(|conn| Op::Reconnect { conn }),
        1 => (0..2usize).prop_map(|function| Op::DropFunction { function }),
    ]
}

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

struct Model {
    t: Harness,
    now: UnixMillis,
    /// Connection id in each of the three slots.
    slots: [ConnId; 3],
    next_conn: ConnId,
    /// Handles promised to a background submitter.
    background: HashSet<Bytes>,
    /// Handles a worker ended (WORK_COMPLETE / WORK_FAIL accepted).
    ended: HashSet<Bytes>,
    /// (client, handle) pairs still owed final packets: one per foreground submission.
    owed: HashMap<(ConnId, Bytes), u32>,
}

impl Model {
    fn new() -> Model {
        let config = CoreConfig {
            timeout_action: TimeoutAction::Requeue,
            timeout_unit: TimeoutUnit::Milliseconds,
            ..CoreConfig::default()
        };
        let mut t = Harness::new(config);
        let slots = [1, 2, 3].map(ConnId::new);
        for c in slots {
            t.connect(c);
        }
        // Five seconds before a minute boundary, so schedules fire during a run.
        Model {
            t,
            now: T0.plus_ms(55_000),
            slots,
            next_conn: ConnId::new(4),
            background: HashSet::new(),
            ended: HashSet::new(),
            owed: HashMap::new(),
        }
    }

    fn created(effects: &[Effect], conn: ConnId) -> Option<Bytes> {
        effects.iter().find_map(|e| match e {
            Effect::Send(c, Response::JobCreated { handle }) if *c == conn => Some(handle.clone()),
            _ => None,
        })
    }

    fn observe(&mut self, effects: &[Effect]) {
        for e in effects {
            if let Effect::Send(
                c,
                Response::WorkComplete { handle, .. }
                | Response::WorkFail { handle }
                | Response::WorkException { handle, .. },
            ) = e
            {
                let key = (*c, handle.clone());
                let owed = self.owed.get(&key).copied().unwrap_or(0);
                assert!(owed > 0, "final packet for {handle:?} to {c} was owed");
                if owed == 1 {
                    self.owed.remove(&key);
                } else {
                    self.owed.insert(key, owed - 1);
                }
            }
        }
    }

    fn apply(&mut self, op: Op) {
        let now = self.now;
        let effects = match op {
            Op::Submit {
                conn,
                background,
                priority,
                function,
                unique,
            } => {
                let c = self.slots[conn];
                let r = Request::Submit(SubmitJob {
                    function: bytes(FUNCTIONS[function]),
                    unique: bytes(UNIQUES[unique]),
                    data: bytes("d"),
                    priority: Priority::ALL[priority],
                    background,
                });
                let effects = self.t.req(c, r, now);
                let handle = Self::created(&effects, c).expect("submit accepted");
                if background {
                    self.background.insert(handle);
                } else {
                    *self.owed.entry((c, handle)).or_default() += 1;
                }
                effects
            }
            Op::SubmitEpoch {
                conn,
                function,
                unique,
                delay_ms,
            } => {
                let c = self.slots[conn];
                let r = Request::SubmitEpoch {
                    function: bytes(FUNCTIONS[function]),
                    unique: bytes(UNIQUES[unique]),
                    epoch: now.plus_ms(delay_ms).as_secs(),
                    data: bytes("e"),
                };
                let effects = self.t.req(c, r, now);
                self.background
                    .insert(Self::created(&effects, c).expect("epoch submit accepted"));
                effects
            }
            Op::SubmitSched {
                conn,
                function,
                unique,
            } => {
                let c = self.slots[conn];
                let r = Request::SubmitSched {
                    function: bytes(FUNCTIONS[function]),
                    unique: bytes(UNIQUES[unique]),
                    schedule: Box::new(["*", "*", "*", "*", "*"].map(bytes)),
                    data: bytes("s"),
                };
                let effects = self.t.req(c, r, now);
                self.background
                    .insert(Self::created(&effects, c).expect("sched submit accepted"));
                effects
            }
            Op::Cancel { pick } => {
                let core = &self.t.core;
                let mut handles: Vec<Bytes> =
                    core.jobs.values().map(|j| core.handle_of(j.id)).collect();
                handles.sort();
                match handles.get(pick) {
                    Some(handle) => {
                        assert!(self.t.core.cancel(handle, now, &mut self.t.out));
                        self.ended.insert(handle.clone());
                        self.t.take()
                    }
                    None => Vec::new(),
                }
            }
            Op::DropFunction { function } => {
                let name = Bytes::from_static(FUNCTIONS[function].as_bytes());
                let held = self
                    .t
                    .core
                    .functions
                    .by_name(&name)
                    .map(|f| f.jobs > 0 || !f.workers.is_empty());
                let cmd = AdminCommand::DropFunction { name: name.clone() };
                self.t.core.admin(self.slots[0], cmd, now, &mut self.t.out);
                let dropped = self.t.core.functions.id(&name).is_none();
                assert_eq!(
                    dropped,
                    held.is_some_and(|h| !h) || held.is_none(),
                    "{name:?} dropped only when nothing holds it"
                );
                self.t.take()
            }
            Op::CanDo {
                conn,
                function,
                timeout_ms,
            } => {
                let function = bytes(FUNCTIONS[function]);
                let r = match timeout_ms {
                    Some(ms) => Request::CanDoTimeout {
                        function,
                        timeout: Bytes::from(ms.to_string()),
                    },
                    None => Request::CanDo { function },
                };
                self.t.req(self.slots[conn], r, now)
            }
            Op::CantDo { conn, function } => self.t.req(
                self.slots[conn],
                Request::CantDo {
                    function: bytes(FUNCTIONS[function]),
                },
                now,
            ),
            Op::PreSleep { conn } => self.t.req(self.slots[conn], Request::PreSleep, now),
            Op::Grab { conn } => self.t.req(self.slots[conn], Request::GrabJobUniq, now),
            Op::Finish { conn, pick, fail } => {
                let c = self.slots[conn];
                let mut running: Vec<JobId> =
                    self.t.core.conns[&c].running.iter().copied().collect();
                running.sort_unstable();
                let handle = match running.get(pick) {
                    Some(id) => self.t.core.handle_of(*id),
                    None => bytes("H:t:9999"),
                };
                let r = if fail {
                    Request::WorkFail {
                        handle: handle.clone(),
                    }
                } else {
                    Request::WorkComplete {
                        handle: handle.clone(),
                        data: bytes("r"),
                    }
                };
                let effects = self.t.req(c, r, now);
                let refused = effects
                    .iter()
                    .any(|e| matches!(e, Effect::Send(x, Response::Error { .. }) if *x == c));
                assert_eq!(
                    refused,
                    running.get(pick).is_none(),
                    "only a job the worker holds may be ended"
                );
                if !refused {
                    self.ended.insert(handle);
                }
                effects
            }
            Op::Advance { ms } => {
                self.now = self.now.plus_ms(ms);
                self.t.tick(self.now)
            }
            Op::Reconnect { conn } => {
                let old = self.slots[conn];
                self.t.core.disconnect(old, now, &mut self.t.out);
                let effects = self.t.take();
                self.owed.retain(|(c, _), _| *c != old);
                let new = self.next_conn;
                self.next_conn = new.next();
                self.t.connect(new);
                self.slots[conn] = new;
                effects
            }
        };
        self.observe(&effects);
        self.check();
    }

    fn check(&self) {
        let core = &self.t.core;
        check_invariants(core);
        for handle in &self.background {
            assert!(
                core.job_by_handle(handle).is_some() || self.ended.contains(handle),
                "background job {handle:?} was lost"
            );
        }
        for ((c, handle), owed) in &self.owed {
            let held = core.job_by_handle(handle).and_then(|id| core.jobs.get(&id));
            let attached = held.map_or(0, |j| j.clients().iter().filter(|x| *x == c).count());
            assert_eq!(
                attached, *owed as usize,
                "client {c} waits on a held {handle:?} once per submission"
            );
        }
        for f in core.functions.values() {
            assert!(f.total() <= core.jobs.len());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_the_core_consistent(ops in prop::collection::vec(op(), 1..80)) {
        let mut m = Model::new();
        for op in ops {
            m.apply(op);
        }
        // Drain: every background job can still be run to completion by one worker.
        m.apply(Op::Advance { ms: 10_000 });
        let c = m.slots[0];
        for f in FUNCTIONS {
            m.t.req(c, Request::CanDo { function: bytes(f) }, m.now);
        }
        for _ in 0..1000 {
            let effects = m.t.req(c, Request::GrabJob, m.now);
            m.observe(&effects);
            match &effects[..] {
                [Effect::Send(_, Response::NoJob)] => break,
                [Effect::Send(_, Response::JobAssign { handle, .. })] => {
                    let effects = m.t.req(c, Request::WorkComplete { handle: handle.clone(), data: bytes("") }, m.now);
                    m.ended.insert(handle.clone());
                    m.observe(&effects);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        // Left: jobs still running (unfinished by the operations) and schedules between runs.
        for j in m.t.core.jobs.values() {
            let between_runs = matches!((j.kind(), j.state), (JobKind::Sched(_), JobState::Waiting { .. }));
            prop_assert!(between_runs || matches!(j.state, JobState::Running { .. }), "left over: {:?}", j);
        }
        m.check();
    }
}

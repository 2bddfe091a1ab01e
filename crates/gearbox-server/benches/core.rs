//! The [`Core`] state machine driven directly, with no sockets, no runtime and a fixed clock:
//! what one job costs the server between decoding its packets and encoding the replies.
//!
//! - `foreground_cycle/wakeup_1`: 1,000 clients and 100 sleeping workers connected; per job a
//!   client sends SUBMIT_JOB, one worker is woken with NOOP, sends GRAB_JOB_UNIQ (gets
//!   JOB_ASSIGN_UNIQ), WORK_COMPLETE (its client gets WORK_COMPLETE), GRAB_JOB_UNIQ (NO_JOB)
//!   and PRE_SLEEP.
//! - `foreground_cycle/wakeup_all`: the same with the default `worker_wakeup = 0`: all 100
//!   workers are woken per job and the 99 that lose the race do GRAB_JOB_UNIQ, NO_JOB,
//!   PRE_SLEEP.
//! - `background_batch/submit_then_drain_10000`: 10,000 background SUBMIT_JOBs into an empty
//!   queue, then one worker drains it with GRAB_JOB_UNIQ + WORK_COMPLETE.
//! - `deep_queue/{0,1000000}`: with that many jobs already queued, submit one background job
//!   and grab and complete the oldest one, so the depth stays put. Equal times mean O(1)
//!   queue operations.
//! - `busy_workers/{10,1000}`: a background submit while that many workers of the function are
//!   awake (busy), then one of them grabs and completes it.
//! - `admin_status/1000_functions`: the admin `status` text, per function line.
//! - `coalesce/{background,foreground_1000_clients}`: a SUBMIT_JOB whose unique id matches a
//!   queued job: a background duplicate, or one of 1,000 clients attaching to it.
//! - `admin_metrics/1000_functions`: the `metrics` text (Prometheus) for the same 1,000
//!   functions as `admin_status`: how long a scrape holds the core's lock.
//!
//! Throughput is `Elements`: per job (per function for `admin_status` and `admin_metrics`). Before timing, each
//! scenario prints the core's heap allocations per element, counted by a wrapping global
//! allocator (the harness itself allocates nothing per job: packet fields are clones of
//! shared `Bytes` and the outbox is reused).
//!
//! Run with `cargo bench -p gearbox-server --bench core` (about a minute); add a name filter,
//! e.g. `-- deep_queue`, to run one group.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gearbox_proto::{AdminCommand, Priority, Request, Response, SubmitJob};
use gearbox_server::access::{AccessPolicy, AccessRule};
use gearbox_server::core::{ConnId, ConnInfo, Core, CoreConfig, Effect, Outbox, UnixMillis};

/// The system allocator, counting allocations (reallocations included).
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to `System`; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` `calls` times unmeasured, then `calls` times more counting allocations, and
/// prints them per element (`elements` per call, as in the group's `Throughput`).
fn report_allocs(name: &str, calls: u64, elements: u64, mut f: impl FnMut()) {
    for _ in 0..calls {
        f();
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..calls {
        f();
    }
    let per = (ALLOCS.load(Ordering::Relaxed) - before) as f64 / (calls * elements) as f64;
    println!("{name}: {per:.2} allocations per element");
}

/// 2026-01-01 00:00:00 UTC: the clock never moves (no timers are involved).
const NOW: UnixMillis = UnixMillis::from_millis(1_767_225_600_000);
/// Worker connection numbers start here...
const WORKER0: u64 = 1;
/// ...client numbers here...
const CLIENT0: u64 = 1_000_000;
/// ...and this one reads admin replies.
const ADMIN: ConnId = ConnId::new(2_000_000);
/// Distinct unique ids cycled through by jobs that must not coalesce (one job is in flight).
const UNIQUES: usize = 1024;

/// A core, its outbox and the packet parts every job reuses (cloning these never allocates).
struct Sim {
    core: Core,
    out: Outbox,
    function: Bytes,
    payload: Bytes,
    result: Bytes,
    uniques: Vec<Bytes>,
}

impl Sim {
    fn new(config: CoreConfig) -> Sim {
        Sim {
            core: Core::new(CoreConfig {
                handle_prefix: "H:bench-host".into(),
                ..config
            }),
            out: Outbox::default(),
            function: Bytes::from_static(b"resize_image"),
            payload: Bytes::from_static(&[b'x'; 100]),
            result: Bytes::from_static(&[b'y'; 100]),
            uniques: (0..UNIQUES)
                .map(|i| Bytes::from(format!("3f2b8c1e-{i:08}")))
                .collect(),
        }
    }

    fn connect(&mut self, conn: ConnId) {
        let info = ConnInfo {
            peer_ip: "10.0.0.1".into(),
            fd: conn.get() as i64,
            loopback: false,
            identity: Vec::new(),
        };
        self.core.connect(conn, info);
    }

    /// Connects `n` workers that registered `function`.
    fn workers(&mut self, n: u64, function: &Bytes) -> Vec<ConnId> {
        let ids: Vec<ConnId> = (WORKER0..WORKER0 + n).map(ConnId::new).collect();
        for &w in &ids {
            self.connect(w);
            self.req(
                w,
                Request::CanDo {
                    function: function.clone(),
                },
            );
        }
        ids
    }

    fn clients(&mut self, n: u64) -> Vec<ConnId> {
        let ids: Vec<ConnId> = (CLIENT0..CLIENT0 + n).map(ConnId::new).collect();
        for &c in &ids {
            self.connect(c);
        }
        ids
    }

    /// Handles one request; its effects are left in `out.effects`.
    fn req(&mut self, conn: ConnId, r: Request) {
        self.out.effects.clear();
        self.core.request(conn, r, NOW, &mut self.out);
    }

    fn submit(&mut self, conn: ConnId, unique: Bytes, background: bool) {
        let r = Request::Submit(SubmitJob {
            function: self.function.clone(),
            unique,
            data: self.payload.clone(),
            priority: Priority::Normal,
            background,
        });
        self.req(conn, r);
    }

    /// `worker` grabs a job; returns its handle, or `None` on NO_JOB.
    fn grab(&mut self, worker: ConnId) -> Option<Bytes> {
        self.req(worker, Request::GrabJobUniq);
        match self.out.effects.as_slice() {
            [Effect::Send(_, Response::JobAssignUniq { handle, .. })] => Some(handle.clone()),
            [Effect::Send(_, Response::NoJob)] => None,
            other => panic!("unexpected reply to GRAB_JOB_UNIQ: {other:?}"),
        }
    }

    fn complete(&mut self, worker: ConnId, handle: Bytes) {
        let data = self.result.clone();
        self.req(worker, Request::WorkComplete { handle, data });
    }

    /// `worker` grabs a job and completes it; panics on NO_JOB.
    fn run_one(&mut self, worker: ConnId) {
        let handle = self.grab(worker).expect("a job is queued");
        self.complete(worker, handle);
    }
}

/// Scenario (a): clients and sleeping workers, one foreground job at a time.
struct Cycle {
    sim: Sim,
    clients: Vec<ConnId>,
    woken: Vec<ConnId>,
    next: usize,
}

impl Cycle {
    fn new(clients: u64, workers: u64, worker_wakeup: usize) -> Cycle {
        let mut sim = Sim::new(CoreConfig {
            worker_wakeup,
            ..CoreConfig::default()
        });
        let function = sim.function.clone();
        for w in sim.workers(workers, &function) {
            sim.req(w, Request::PreSleep);
        }
        let clients = sim.clients(clients);
        Cycle {
            sim,
            clients,
            woken: Vec::new(),
            next: 0,
        }
    }

    fn job(&mut self) {
        let i = self.next;
        self.next += 1;
        let client = self.clients[i % self.clients.len()];
        let unique = self.sim.uniques[i % UNIQUES].clone();
        self.sim.submit(client, unique, false);
        self.woken.clear();
        for e in &self.sim.out.effects {
            match e {
                Effect::Send(w, Response::Noop) => self.woken.push(*w),
                Effect::Send(c, Response::JobCreated { .. }) if *c == client => {}
                other => panic!("unexpected effect of SUBMIT_JOB: {other:?}"),
            }
        }
        assert!(!self.woken.is_empty(), "no worker woken");
        for k in 0..self.woken.len() {
            let w = self.woken[k];
            if let Some(handle) = self.sim.grab(w) {
                self.sim.complete(w, handle);
                assert!(matches!(
                    self.sim.out.effects.as_slice(),
                    [Effect::Send(c, Response::WorkComplete { .. })] if *c == client
                ));
                assert!(self.sim.grab(w).is_none());
            }
            self.sim.req(w, Request::PreSleep);
        }
    }
}

fn foreground_cycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("foreground_cycle");
    g.throughput(Throughput::Elements(1));
    for (name, wakeup) in [("wakeup_1", 1), ("wakeup_all", 0)] {
        let mut cycle = Cycle::new(1000, 100, wakeup);
        report_allocs(&format!("foreground_cycle/{name}"), 10_000, 1, || {
            cycle.job()
        });
        g.bench_function(name, |b| b.iter(|| cycle.job()));
    }
    g.finish();
}

/// Access rules as a shared server might have them: the connections match the third rule,
/// whose patterns the submits and the CAN_DO are checked against.
fn access_rules() -> AccessPolicy {
    let rule = |name: &str, peer: &str, pattern: &str| AccessRule {
        name: Some(name.into()),
        peer: vec![peer.into()],
        submit: vec![format!("{pattern}_*"), "mail".into()],
        register: vec![format!("{pattern}_*")],
        ..AccessRule::default()
    };
    AccessPolicy::new(vec![
        rule("billing", "192.0.2.0/24", "billing"),
        rule("reports", "198.51.100.0/24", "report"),
        rule("images", "10.0.0.0/8", "resize"),
    ])
    .expect("valid rules")
}

/// Scenario (b): fill a queue with background jobs, then drain it; without access rules, and
/// with rules every submit and CAN_DO is checked against.
fn background_batch(c: &mut Criterion) {
    const N: usize = 10_000;
    let mut g = c.benchmark_group("background_batch");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    for (name, access) in [
        ("submit_then_drain_10000", AccessPolicy::default()),
        ("submit_then_drain_10000_access_rules", access_rules()),
    ] {
        let mut sim = Sim::new(CoreConfig {
            access,
            ..CoreConfig::default()
        });
        let function = sim.function.clone();
        let worker = sim.workers(1, &function)[0];
        let client = sim.clients(1)[0];
        let uniques: Vec<Bytes> = (0..N).map(|i| Bytes::from(format!("bg-{i:08}"))).collect();
        let batch = |sim: &mut Sim| {
            for u in &uniques {
                sim.submit(client, u.clone(), true);
            }
            for _ in 0..N {
                sim.run_one(worker);
            }
            assert_eq!(sim.core.job_count(), 0, "every submit was allowed");
        };
        report_allocs(&format!("background_batch/{name}"), 1, N as u64, || {
            batch(&mut sim)
        });
        g.bench_function(name, |b| b.iter(|| batch(&mut sim)));
    }
    g.finish();
}

/// Scenario (c): queue operations next to a queue that holds a million jobs.
fn deep_queue(c: &mut Criterion) {
    let mut g = c.benchmark_group("deep_queue");
    g.throughput(Throughput::Elements(1));
    for depth in [0u64, 1_000_000] {
        let mut sim = Sim::new(CoreConfig::default());
        let function = sim.function.clone();
        let worker = sim.workers(1, &function)[0];
        let client = sim.clients(1)[0];
        // No unique ids: a job stays queued for `depth` iterations, longer than any reuse.
        for _ in 0..depth {
            sim.submit(client, Bytes::new(), true);
        }
        assert_eq!(sim.core.job_count() as u64, depth);
        let mut job = || {
            sim.submit(client, Bytes::new(), true);
            sim.run_one(worker);
        };
        report_allocs(&format!("deep_queue/{depth}"), 10_000, 1, &mut job);
        g.bench_function(BenchmarkId::from_parameter(depth), |b| b.iter(&mut job));
    }
    g.finish();
}

/// Submits while `n` workers of the function are awake: the wake-up scan visits every one.
fn busy_workers(c: &mut Criterion) {
    let mut g = c.benchmark_group("busy_workers");
    g.throughput(Throughput::Elements(1));
    for n in [10u64, 1000] {
        let mut sim = Sim::new(CoreConfig::default());
        let function = sim.function.clone();
        let workers = sim.workers(n, &function);
        let client = sim.clients(1)[0];
        let mut i = 0;
        let mut job = || {
            sim.submit(client, Bytes::new(), true);
            sim.run_one(workers[i % workers.len()]);
            i += 1;
        };
        report_allocs(&format!("busy_workers/{n}"), 10_000, 1, &mut job);
        g.bench_function(BenchmarkId::from_parameter(n), |b| b.iter(&mut job));
    }
    g.finish();
}

/// 1,000 functions, each with three queued jobs and a worker, and an admin connection.
fn thousand_functions() -> Sim {
    let mut sim = Sim::new(CoreConfig::default());
    let client = sim.clients(1)[0];
    for i in 0..ADMIN_FUNCTIONS {
        sim.function = Bytes::from(format!("function_{i:04}"));
        let w = ConnId::new(WORKER0 + i);
        sim.connect(w);
        let function = sim.function.clone();
        sim.req(w, Request::CanDo { function });
        for _ in 0..3 {
            sim.submit(client, Bytes::new(), true);
        }
    }
    sim.connect(ADMIN);
    sim
}

const ADMIN_FUNCTIONS: u64 = 1000;

/// Runs the admin command `cmd` and returns the length of its reply.
fn admin(sim: &mut Sim, cmd: AdminCommand) -> usize {
    sim.out.effects.clear();
    sim.core.admin(ADMIN, cmd, NOW, &mut sim.out);
    match sim.out.effects.as_slice() {
        [Effect::Text(_, t)] => black_box(t).len(),
        other => panic!("unexpected admin reply: {other:?}"),
    }
}

/// Scenario (d): admin `status` over 1,000 functions, each with queued jobs and a worker.
fn admin_status(c: &mut Criterion) {
    let mut sim = thousand_functions();
    admin(&mut sim, AdminCommand::Status);
    match sim.out.effects.as_slice() {
        [Effect::Text(_, t)] => assert!(t.starts_with(b"function_0000\t3\t0\t1\n")),
        other => panic!("unexpected status reply: {other:?}"),
    }
    report_allocs("admin_status", 100, ADMIN_FUNCTIONS, || {
        admin(&mut sim, AdminCommand::Status);
    });

    let mut g = c.benchmark_group("admin_status");
    g.throughput(Throughput::Elements(ADMIN_FUNCTIONS));
    g.bench_function("1000_functions", |b| {
        b.iter(|| admin(&mut sim, AdminCommand::Status))
    });
    g.finish();
}

/// Scenario (f): the `metrics` text over the same 1,000 functions: the time a scrape holds
/// the core's lock.
fn admin_metrics(c: &mut Criterion) {
    let mut sim = thousand_functions();
    let len = admin(&mut sim, AdminCommand::Metrics);
    println!("admin_metrics: {len} bytes for {ADMIN_FUNCTIONS} functions");
    report_allocs("admin_metrics", 20, ADMIN_FUNCTIONS, || {
        admin(&mut sim, AdminCommand::Metrics);
    });

    let mut g = c.benchmark_group("admin_metrics");
    g.throughput(Throughput::Elements(ADMIN_FUNCTIONS));
    g.bench_function("1000_functions", |b| {
        b.iter(|| admin(&mut sim, AdminCommand::Metrics))
    });
    g.finish();
}

/// Scenario (e): submits whose unique id matches a job already queued.
fn coalesce(c: &mut Criterion) {
    let mut g = c.benchmark_group("coalesce");
    g.throughput(Throughput::Elements(1));

    let mut sim = Sim::new(CoreConfig::default());
    let client = sim.clients(1)[0];
    let unique = Bytes::from_static(b"nightly-report");
    sim.submit(client, unique.clone(), true);
    let mut job = || {
        sim.submit(client, unique.clone(), true);
        assert_eq!(sim.out.effects.len(), 1);
    };
    report_allocs("coalesce/background", 10_000, 1, &mut job);
    g.bench_function("background", |b| b.iter(&mut job));

    let mut sim = Sim::new(CoreConfig::default());
    let clients = sim.clients(1000);
    sim.submit(clients[0], unique.clone(), false);
    let mut i = 0;
    let mut job = || {
        sim.submit(clients[i % clients.len()], unique.clone(), false);
        assert_eq!(sim.out.effects.len(), 1);
        i += 1;
    };
    report_allocs("coalesce/foreground_1000_clients", 10_000, 1, &mut job);
    g.bench_function("foreground_1000_clients", |b| b.iter(&mut job));
    assert_eq!(sim.core.job_count(), 1);
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = foreground_cycle, background_batch, deep_queue, busy_workers, admin_status, coalesce,
        admin_metrics
}
criterion_main!(benches);

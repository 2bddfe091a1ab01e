//! `gearbox bench`: a load generator for any Gearman server (gearbox or gearmand).
//!
//! Scenarios:
//! - `fg`: foreground round trips, C clients and W echo workers, for `--jobs` or `--duration`;
//!   jobs/s and latency percentiles (per priority with `--priorities`).
//! - `bg`: C clients submit `--jobs` background jobs (rate, time to JOB_CREATED), then W
//!   workers drain them (rate). `--no-drain` leaves them queued (memory measurements).
//! - `sweep`: `fg` at several payload sizes (100 B, 10 KB, 1 MB by default).
//!
//! A durable run is the same `bg` against a server started with a persistent store.
//! With `--server-pid`, each phase also reports the server's CPU time per job (user+sys from
//! `/proc`, before and after) and its resident memory at the end.
//!
//! Layout: [`plan`] (the job stream), [`drive`] (clients and workers, classic or pipelined),
//! [`measure`] (histograms, `/proc`), [`report`] (table and JSON).

pub mod drive;
pub mod measure;
pub mod plan;
pub mod report;

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinSet;

use self::drive::{DrainGoal, Mode};
use self::measure::{Latencies, ProcSample};
use self::plan::{Plan, PriorityMix};
use self::report::Phase;
use super::cli::Ctx;

/// `gearbox bench SCENARIO [options]`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The scenario.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Foreground round trips: C clients, W echo workers; jobs/s and latency.
    Fg(FgArgs),
    /// Background: submit N jobs from C clients, then drain them with W workers.
    Bg(BgArgs),
    /// Foreground round trips at several payload sizes.
    Sweep(SweepArgs),
}

impl BenchArgs {
    /// Runtime threads the generator asked for.
    pub fn threads(&self) -> usize {
        match &self.scenario {
            Scenario::Fg(a) => a.common.threads,
            Scenario::Bg(a) => a.common.threads,
            Scenario::Sweep(a) => a.common.threads,
        }
    }
}

/// Options every scenario takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// classic: one job in flight per connection, one write per packet (as libgearman);
    /// pipelined: --depth jobs in flight per connection, batched writes.
    #[arg(long, value_enum, default_value_t = Mode::Classic)]
    pub mode: Mode,
    /// Client connections.
    #[arg(short = 'c', long, default_value_t = 16)]
    pub clients: usize,
    /// Echo worker connections.
    #[arg(short = 'w', long, default_value_t = 4)]
    pub workers: usize,
    /// Payload bytes per job.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Jobs to run.
    #[arg(short = 'n', long, default_value_t = 100_000)]
    pub jobs: u64,
    /// Jobs in flight per connection in pipelined mode.
    #[arg(long, default_value_t = 32)]
    pub depth: usize,
    /// HIGH,NORMAL,LOW weights of the submitted jobs, e.g. 1,8,1.
    #[arg(long, default_value = "0,1,0")]
    pub priorities: PriorityMix,
    /// Function name (default: one of this run's own, so runs never meet).
    #[arg(long)]
    pub function: Option<String>,
    /// Send no unique ids (by default each job has a 36-character one, as libgearman sends).
    #[arg(long)]
    pub no_unique: bool,
    /// Pid of the server process on this machine: report its CPU per job and its memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Free text copied into the report (e.g. the server's name).
    #[arg(long)]
    pub label: Option<String>,
    /// Runtime threads of the generator (1 = a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// `bench fg`.
#[derive(Debug, Args)]
pub struct FgArgs {
    #[command(flatten)]
    common: Common,
    /// Run for this many seconds instead of a number of jobs.
    #[arg(long)]
    duration: Option<f64>,
}

/// `bench bg`.
#[derive(Debug, Args)]
pub struct BgArgs {
    #[command(flatten)]
    common: Common,
    /// Leave the jobs queued: measure the submit phase only.
    #[arg(long, conflicts_with = "no_submit")]
    no_drain: bool,
    /// Submit nothing: drain --jobs jobs already queued for --function (e.g. ones a
    /// `--no-drain` run left, or a durable server replayed after a restart).
    #[arg(long, requires = "function")]
    no_submit: bool,
}

/// `bench sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    common: Common,
    /// Payload sizes in bytes.
    #[arg(long, value_delimiter = ',', default_value = "100,10240,1048576")]
    sizes: Vec<usize>,
    /// Payload bytes per size step at most: fewer jobs for large payloads (at least 100).
    #[arg(long, default_value_t = 256 * 1024 * 1024)]
    bytes_per_size: u64,
}

/// Runs a scenario and prints the table (or JSON with `--json`).
pub async fn run(ctx: &Ctx, args: BenchArgs) -> anyhow::Result<ExitCode> {
    let server = ctx
        .servers
        .first()
        .context("bench needs a server (-s host:port)")?;
    let addr = Target {
        addr: server.connect_string(),
        tls: ctx.tls.clone(),
    };
    let phases = match args.scenario {
        Scenario::Fg(a) => {
            let deadline = a.duration.map(Duration::from_secs_f64);
            vec![
                foreground(
                    &addr,
                    &a.common,
                    a.common.size,
                    a.common.jobs,
                    deadline,
                    "fg",
                )
                .await?,
            ]
        }
        Scenario::Bg(a) if a.no_submit => {
            vec![drain(&addr, &a.common, &function_name(&a.common), a.common.jobs).await?]
        }
        Scenario::Bg(a) => background(&addr, &a.common, !a.no_drain).await?,
        Scenario::Sweep(a) => {
            let mut phases = Vec::new();
            for &size in &a.sizes {
                let jobs = (a.bytes_per_size / size.max(1) as u64).clamp(100, a.common.jobs);
                let name = format!("fg {size}B");
                phases.push(foreground(&addr, &a.common, size, jobs, None, &name).await?);
            }
            phases
        }
    };
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&phases)?);
    } else {
        report::print_table(&phases);
    }
    Ok(ExitCode::SUCCESS)
}

/// The server under load and how to reach it.
struct Target {
    addr: String,
    tls: Option<gearbox_client::TlsConfig>,
}

fn new_plan(addr: &Target, c: &Common, size: usize, jobs: u64, function: &str) -> Arc<Plan> {
    let mut plan = Plan::new(
        addr.addr.clone(),
        Bytes::from(function.to_string()),
        Bytes::from(vec![b'x'; size]),
        jobs,
        None,
        c.priorities,
        !c.no_unique,
        c.depth,
    );
    plan.tls = addr.tls.clone();
    Arc::new(plan)
}

fn function_name(c: &Common) -> String {
    c.function.clone().unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("gearbox_bench.{}.{nanos:x}", std::process::id())
    })
}

async fn foreground(
    addr: &Target,
    c: &Common,
    size: usize,
    jobs: u64,
    duration: Option<Duration>,
    name: &str,
) -> anyhow::Result<Phase> {
    let function = function_name(c);
    let mut plan = Plan::new(
        addr.addr.clone(),
        Bytes::from(function),
        Bytes::from(vec![b'x'; size]),
        if duration.is_some() { u64::MAX } else { jobs },
        None,
        c.priorities,
        !c.no_unique,
        c.depth,
    );
    plan.tls = addr.tls.clone();
    let mut workers = JoinSet::new();
    // Workers first, so the first jobs do not measure worker start-up; the deadline starts
    // with the clients.
    plan.deadline = duration.map(|d| Instant::now() + d);
    let plan = Arc::new(plan);
    for _ in 0..c.workers {
        workers.spawn(drive::echo_worker(plan.clone(), c.mode, None));
    }
    let total = duration.map_or(Some(jobs), |_| None);
    let result = measured(name, c, size, &plan, total, async {
        let mut clients = JoinSet::new();
        for _ in 0..c.clients {
            clients.spawn(drive::foreground_client(plan.clone(), c.mode));
        }
        collect(clients, &mut workers).await
    })
    .await;
    workers.abort_all();
    result
}

async fn background(addr: &Target, c: &Common, drain: bool) -> anyhow::Result<Vec<Phase>> {
    let function = function_name(c);
    let plan = new_plan(addr, c, c.size, c.jobs, &function);
    let mut idle = JoinSet::new();
    let submit = measured("bg-submit", c, c.size, &plan, Some(c.jobs), async {
        let mut clients = JoinSet::new();
        for _ in 0..c.clients {
            clients.spawn(drive::background_client(plan.clone(), c.mode));
        }
        collect(clients, &mut idle).await
    })
    .await?;
    let mut phases = vec![submit];
    // Nothing was queued (e.g. `-n 0`): a drain would wait forever for its first job.
    if drain && plan.done() > 0 {
        phases.push(self::drain(addr, c, &function, plan.done()).await?);
    }
    Ok(phases)
}

/// Workers complete `jobs` jobs of `function` (already queued or arriving).
async fn drain(addr: &Target, c: &Common, function: &str, jobs: u64) -> anyhow::Result<Phase> {
    let plan = new_plan(addr, c, c.size, jobs, function);
    if jobs == 0 {
        return measured("bg-drain", c, c.size, &plan, Some(0), async {
            Ok(Latencies::new())
        })
        .await;
    }
    let goal = Arc::new(DrainGoal {
        jobs,
        reached: tokio::sync::Notify::new(),
    });
    let mut workers = JoinSet::new();
    let drained = measured("bg-drain", c, c.size, &plan, Some(jobs), async {
        for _ in 0..c.workers {
            workers.spawn(drive::echo_worker(plan.clone(), c.mode, Some(goal.clone())));
        }
        tokio::select! {
            _ = goal.reached.notified() => Ok(Latencies::new()),
            failed = workers.join_next() => Err(match failed {
                Some(Ok(Err(e))) => e,
                _ => anyhow::anyhow!("a worker stopped before the queue was drained"),
            }),
        }
    })
    .await;
    workers.abort_all();
    drained
}

/// Waits for every client and merges their latencies; fails early if a worker dies.
async fn collect(
    mut clients: JoinSet<anyhow::Result<Latencies>>,
    workers: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<Latencies> {
    let mut all = Latencies::new();
    loop {
        tokio::select! {
            next = clients.join_next() => match next {
                None => return Ok(all),
                Some(joined) => all.merge(&joined.context("a client task panicked")??),
            },
            Some(joined) = workers.join_next() => {
                joined.context("a worker task panicked")??;
                anyhow::bail!("a worker stopped while clients were running");
            }
        }
    }
}

/// Runs one phase with a progress bar and the `/proc` readings around it.
async fn measured(
    name: &str,
    c: &Common,
    size: usize,
    plan: &Plan,
    total: Option<u64>,
    work: impl Future<Output = anyhow::Result<Latencies>>,
) -> anyhow::Result<Phase> {
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} {bar:40} {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(name.to_string());
    let server_before = c.server_pid.map(ProcSample::of_pid).transpose()?;
    let self_before = ProcSample::of_self()?;
    let start = Instant::now();
    tokio::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let latencies = loop {
        tokio::select! {
            done = &mut work => break done?,
            _ = tick.tick() => bar.set_position(plan.done()),
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let jobs = plan.done();
    let per_job = |cpu: f64| cpu * 1e6 / jobs.max(1) as f64;
    let server_after = c.server_pid.map(ProcSample::of_pid).transpose()?;
    let self_after = ProcSample::of_self()?;
    let by_priority = if c.priorities.is_mixed() {
        latencies
            .per_priority()
            .into_iter()
            .map(|(n, s)| (n.to_string(), s))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Phase {
        phase: name.to_string(),
        label: c.label.clone(),
        mode: c.mode,
        clients: c.clients,
        workers: c.workers,
        size,
        jobs,
        seconds,
        jobs_per_sec: jobs as f64 / seconds.max(1e-9),
        latency: latencies.summary(),
        by_priority,
        server_cpu_us_per_job: server_before
            .zip(server_after)
            .map(|(b, a)| per_job(a.cpu_seconds - b.cpu_seconds)),
        server_rss_kib: server_after.map(|a| a.rss_kib),
        bench_cpu_us_per_job: per_job(self_after.cpu_seconds - self_before.cpu_seconds),
    })
}

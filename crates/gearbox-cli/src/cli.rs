//! The modern `gearbox` subcommands: flags (clap) and dispatch.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gearbox_client::{parse_servers, ServerAddr};

use super::tls::TlsArgs;
use super::{admin_cmds, bench, cluster_cmd, submit, top, watch, work};

/// Submit jobs, run workers, and inspect Gearman servers (gearbox or gearmand).
///
/// Invoked as `gearman` or `gearadmin` (a symlink to this binary), it takes those tools'
/// flags and prints their formats instead.
#[derive(Debug, Parser)]
#[command(name = "gearbox", version)]
pub struct Cli {
    /// Servers, as `host[:port],host[:port]` (default port 4730).
    #[arg(
        short = 's',
        long,
        env = "GEARMAN_SERVERS",
        default_value = "localhost:4730",
        global = true
    )]
    pub servers: String,
    /// Print JSON for scripts instead of tables and messages.
    #[arg(long, global = true)]
    pub json: bool,
    /// TLS to the servers.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Submit a job (payload from the argument or standard input) and print its result.
    Submit(submit::SubmitArgs),
    /// Serve a function by running a command per job: payload on its standard input,
    /// result from its standard output, a non-zero exit fails the job.
    Work(work::WorkArgs),
    /// Functions with their queued and running jobs and workers, per server.
    Status(admin_cmds::StatusArgs),
    /// Cluster mode (gearboxd --cluster): per function the cluster-wide free, queued and
    /// running jobs and workers, or the members with --members.
    Cluster(cluster_cmd::ClusterArgs),
    /// Connections registered as workers, with their functions.
    Workers(admin_cmds::WorkersArgs),
    /// Jobs held by the servers.
    Jobs(admin_cmds::JobsArgs),
    /// Cancel a job by handle (on whichever server knows it).
    Cancel(admin_cmds::CancelArgs),
    /// Limit a function's queue on every server: no number = unlimited, N for every
    /// priority, or HIGH NORMAL LOW.
    Maxqueue(admin_cmds::MaxqueueArgs),
    /// A live table of functions, queues and workers across all servers (q or Ctrl-C quits).
    Watch(watch::WatchArgs),
    /// The dashboard's numbers in the terminal: per function queued by priority, running,
    /// workers, completed per second, and totals; from the admin port or gearboxd's HTTP API
    /// (--http); several servers summed. Keys: s sort, r reverse, / filter, +/- interval,
    /// q quit; --once, --iterations or --json for scripts.
    Top(top::TopArgs),
    /// Load-test a server (gearbox or gearmand): foreground round trips, background
    /// submit and drain, payload sweeps; classic (libgearman-like) or pipelined clients.
    Bench(bench::BenchArgs),
}

/// What every subcommand gets: the parsed server list and the output mode.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The servers, in the order given.
    pub servers: Vec<ServerAddr>,
    /// `--json`.
    pub json: bool,
    /// TLS for every connection (`--ssl`...), else plain TCP.
    pub tls: Option<gearbox_client::TlsConfig>,
}

impl Ctx {
    /// Whether tables need a SERVER column (more than one server).
    pub fn many(&self) -> bool {
        self.servers.len() > 1
    }
}

/// Runs the parsed command line; `Ok` carries the exit status.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = Ctx {
        servers: parse_servers(&cli.servers)?,
        json: cli.json,
        tls: cli.tls.config()?,
    };
    match cli.command {
        Command::Submit(a) => submit::run(&ctx, a).await,
        Command::Work(a) => work::run(&ctx, a).await,
        Command::Status(a) => admin_cmds::status(&ctx, a).await,
        Command::Cluster(a) => cluster_cmd::run(&ctx, a).await,
        Command::Workers(a) => admin_cmds::workers(&ctx, a).await,
        Command::Jobs(a) => admin_cmds::jobs(&ctx, a).await,
        Command::Cancel(a) => admin_cmds::cancel(&ctx, a).await,
        Command::Maxqueue(a) => admin_cmds::maxqueue(&ctx, a).await,
        Command::Watch(a) => watch::run(&ctx, a).await,
        Command::Top(a) => top::run(&ctx, a).await,
        Command::Bench(a) => bench::run(&ctx, a).await,
    }
}

//! `gearbox work FUNCTION -- COMMAND ARGS...`: a worker running a command per job.
//!
//! The payload goes to the command's standard input and its standard output is the result;
//! a non-zero exit (or a command that cannot start) fails the job with WORK_FAIL, after
//! sending what it printed as a data chunk (as `gearman -w` does). The command also gets
//! `GEARMAN_FUNCTION`, `GEARMAN_HANDLE` and `GEARMAN_UNIQUE` in its environment. One line
//! per job goes to standard error (`--json`: one JSON object per job on standard output).
//! SIGINT/SIGTERM stop taking jobs and let running ones finish.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use gearbox_client::worker::{Job, JobError};
use gearbox_client::Worker;
use serde_json::json;
use tokio::sync::watch;

use super::cli::Ctx;
use super::command;
use super::submit::parse_secs;

/// `gearbox work`.
#[derive(Debug, Args)]
pub struct WorkArgs {
    /// The function to serve.
    pub function: String,
    /// Jobs run at once.
    #[arg(short = 'c', long, default_value_t = 1)]
    pub concurrency: usize,
    /// Exit after this many jobs.
    #[arg(long)]
    pub count: Option<u64>,
    /// Tell the server to give up on a job after this many seconds (CAN_DO_TIMEOUT).
    #[arg(long, value_parser = parse_secs)]
    pub timeout: Option<Duration>,
    /// The command and its arguments (after `--`).
    #[arg(required = true, last = true)]
    pub command: Vec<OsString>,
}

/// Stops a worker after a number of jobs: the last job's handler triggers the stop and waits
/// until the worker has taken it in, so no further job is grabbed.
#[derive(Debug, Clone)]
pub struct JobBudget {
    left: Option<Arc<AtomicU64>>,
    stop: watch::Sender<bool>,
}

impl JobBudget {
    /// A budget of `count` jobs (`None` = unlimited), and the future that resolves when it
    /// is spent.
    pub fn new(count: Option<u64>) -> (JobBudget, impl std::future::Future<Output = ()>) {
        let (stop, mut rx) = watch::channel(false);
        let budget = JobBudget {
            left: count.map(|c| Arc::new(AtomicU64::new(c))),
            stop,
        };
        (budget, async move {
            let _ = rx.wait_for(|spent| *spent).await;
        })
    }

    /// Counts one job; if it was the last, stops the worker and waits until `job` sees it.
    pub async fn finished(&self, job: &Job) {
        let Some(left) = &self.left else { return };
        let before = left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if before == Ok(1) {
            self.stop.send_replace(true);
            job.stopping().await;
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Runs `gearbox work`.
pub async fn run(ctx: &Ctx, args: WorkArgs) -> anyhow::Result<ExitCode> {
    let (budget, spent) = JobBudget::new(args.count);
    let argv = Arc::new(args.command.clone());
    let json = ctx.json;
    let handler = move |job: Job| {
        let (argv, budget) = (argv.clone(), budget.clone());
        async move {
            let started = Instant::now();
            let env: [(&str, &[u8]); 3] = [
                ("GEARMAN_FUNCTION", job.function().as_bytes()),
                ("GEARMAN_HANDLE", job.handle()),
                ("GEARMAN_UNIQUE", job.unique()),
            ];
            let ran = match command::spawn(&argv, job.payload().clone(), &env) {
                Ok(r) => r.output().await,
                Err(e) => Err(e),
            };
            let (outcome, code, bytes) = match ran {
                Ok((out, st)) if st.success() => (Ok(Bytes::from(out)), st.code(), 0),
                Ok((out, st)) => {
                    let n = out.len();
                    if !out.is_empty() {
                        let _ = job.send_data(out).await;
                    }
                    (Err(JobError::Fail), st.code(), n)
                }
                Err(e) => {
                    let cmd = argv[0].to_string_lossy();
                    let _ = writeln!(std::io::stderr(), "gearbox: cannot run {cmd}: {e}");
                    (Err(JobError::Fail), None, 0)
                }
            };
            let bytes = outcome.as_ref().map(Bytes::len).unwrap_or(bytes);
            let ms = started.elapsed().as_millis();
            let handle = String::from_utf8_lossy(job.handle());
            if json {
                let line = json!({"handle": handle, "function": job.function(),
                    "ok": outcome.is_ok(), "exit_code": code, "bytes": bytes, "ms": ms});
                println!("{line}");
            } else {
                let how = match (&outcome, code) {
                    (Ok(_), _) => "done".to_string(),
                    (Err(_), Some(c)) => format!("failed (exit {c})"),
                    (Err(_), None) => "failed".to_string(),
                };
                let f = job.function();
                let _ = writeln!(
                    std::io::stderr(),
                    "{handle} {f}: {how}, {bytes} bytes, {ms} ms"
                );
            }
            budget.finished(&job).await;
            outcome
        }
    };
    let mut builder = Worker::builder().concurrency(args.concurrency.max(1));
    for s in &ctx.servers {
        builder = builder.server(s.clone());
    }
    if let Some(tls) = &ctx.tls {
        builder = builder.tls(tls.clone());
    }
    builder = match args.timeout {
        Some(t) => builder.register_with_timeout(&args.function, t, handler),
        None => builder.register(&args.function, handler),
    };
    let worker = builder.build()?;
    let reason = worker
        .run(async {
            tokio::select! {
                _ = spent => {}
                _ = stop_signal() => {}
            }
        })
        .await?;
    if !reason.is_clean() {
        let _ = writeln!(std::io::stderr(), "gearbox: worker stopped: {reason}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

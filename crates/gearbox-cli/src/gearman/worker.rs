//! `gearman -w` worker mode.

use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gearbox_client::worker::{Job, JobError};
use gearbox_client::{ServerAddr, Worker};
use tokio::sync::Notify;

use super::message::LibError;
use super::servers::{Server, Servers};
use super::stdio::ewrite;
use super::Args;
use crate::command;
use crate::work::{stop_signal, JobBudget};

/// How long to wait before trying an unreachable server again.
const RETRY: Duration = Duration::from_secs(1);

/// Waits until the first server accepts a connection, printing libgearman's message for
/// each failed attempt; each attempt counts against `-c` as a failed `gearman_worker_work`
/// does. False if the count ran out first.
async fn wait_for_server(t: &Server, count: &mut u32) -> bool {
    let label = "gearman_worker_work";
    loop {
        if tokio::net::TcpStream::connect(&t.addrs[..]).await.is_ok() {
            return true;
        }
        ewrite(
            LibError::could_not_connect(&t.name())
                .line(label)
                .as_bytes(),
        );
        if *count > 0 {
            *count -= 1;
            if *count == 0 {
                return false;
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Runs worker mode; returns the exit status.
pub async fn run(args: &Args, servers: Servers) -> u8 {
    let mut count = args.count;
    if !wait_for_server(servers.last_tried(), &mut count).await {
        return 0;
    }
    let (budget, spent) = JobBudget::new((count > 0).then_some(u64::from(count)));
    let busy = Arc::new(AtomicBool::new(false));
    let activity = Arc::new(Notify::new());
    let spec = Arc::new(Spec {
        command: args.arguments.clone(),
        per_line: args.job_per_newline,
        strip: args.strip_newline,
    });
    let mut builder = Worker::builder().concurrency(1);
    for t in servers.order() {
        let port = t.service.parse().unwrap_or(4730);
        builder = builder.server(ServerAddr::new(t.host.clone(), port));
    }
    for f in &args.functions {
        let (spec, budget, busy, activity) =
            (spec.clone(), budget.clone(), busy.clone(), activity.clone());
        builder = builder.register(f, move |job: Job| {
            let (spec, budget, busy, activity) =
                (spec.clone(), budget.clone(), busy.clone(), activity.clone());
            async move {
                busy.store(true, Ordering::SeqCst);
                activity.notify_one();
                let result = spec.serve(&job).await;
                if result.is_err() {
                    ewrite(b"gearman: gearman_worker_work : GEARMAN_UNKNOWN_STATE\n");
                }
                budget.finished(&job).await;
                busy.store(false, Ordering::SeqCst);
                activity.notify_one();
                result
            }
        });
    }
    let worker = match builder.build() {
        Ok(w) => w,
        Err(e) => {
            ewrite(format!("gearman: gearman_worker_add_function : {e}\n").as_bytes());
            return 1;
        }
    };
    let idle = async {
        let Some(t) = (args.timeout >= 0).then(|| Duration::from_millis(args.timeout as u64))
        else {
            return std::future::pending().await;
        };
        loop {
            tokio::select! {
                _ = tokio::time::sleep(t) => {
                    if !busy.load(Ordering::SeqCst) {
                        let e = LibError::timeout(servers.0.len(), true);
                        ewrite(e.line("gearman_worker_work").as_bytes());
                        budget.spend_idle();
                    }
                }
                _ = activity.notified() => {}
            }
        }
    };
    let stopped = worker
        .run(async {
            tokio::select! {
                _ = spent => {}
                _ = stop_signal() => {}
                () = idle => {}
            }
        })
        .await;
    u8::from(stopped.is_err())
}

/// What a job runs.
struct Spec {
    command: Vec<OsString>,
    per_line: bool,
    strip: bool,
}

impl Spec {
    async fn serve(&self, job: &Job) -> Result<Bytes, JobError> {
        if self.command.is_empty() {
            super::stdio::CStdout::new(false).write(job.payload());
            return Ok(Bytes::new());
        }
        let running = match command::spawn(&self.command, job.payload().clone(), &[]) {
            Ok(r) => r,
            Err(e) => {
                ewrite(format!("gearman: execvp: {e}\n").as_bytes());
                return Err(JobError::Fail);
            }
        };
        if self.per_line {
            let strip = self.strip;
            let status = running
                .lines(|mut line| {
                    if strip {
                        line.pop();
                    }
                    async move {
                        let _ = job.send_data(line).await;
                    }
                })
                .await;
            return match status {
                Ok(s) if s.success() => Ok(Bytes::new()),
                _ => Err(JobError::Fail),
            };
        }
        match running.output().await {
            Ok((out, s)) if s.success() => Ok(out.into()),
            Ok((out, _)) => {
                if !out.is_empty() {
                    let _ = job.send_data(out).await;
                }
                Err(JobError::Fail)
            }
            Err(_) => Err(JobError::Fail),
        }
    }
}

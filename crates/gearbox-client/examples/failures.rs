//! Failures: a handler's error reaches the client as an exception with its message, and a
//! flaky job is retried by the client until it succeeds.
//!
//! `cargo run -p gearbox-client --example failures -- HOST:PORT`

#[path = "common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use gearbox_client::worker::{Job, JobError};
use gearbox_client::{Client, Error, TaskEvent, Worker};

/// What happened: the exception text, and the events of the retried job.
#[derive(Debug)]
pub struct Outcome {
    /// The message the client got for a payload that is not a number.
    pub exception: String,
    /// The retried job's events: `retry:N` then `complete:..`.
    pub events: Vec<String>,
}

/// Shows exception propagation and client-side retries.
pub async fn run(servers: &str) -> gearbox_client::Result<Outcome> {
    let attempts = Arc::new(AtomicU32::new(0));
    let seen = attempts.clone();
    let worker = Worker::builder()
        .servers(servers)
        .register("double", |job: Job| async move {
            // A parse error becomes WORK_EXCEPTION with its message.
            let n: i64 = job.payload_str()?.trim().parse()?;
            Ok::<_, JobError>((2 * n).to_string())
        })
        .register("flaky", move |_job: Job| {
            let seen = seen.clone();
            async move {
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(JobError::Fail) // the first attempt fails
                } else {
                    Ok("worked the second time")
                }
            }
        })
        .build()?;
    let worker = common::spawn(worker);

    let client = Client::new(servers)?;
    let exception = match client.submit("double", "twelve").await {
        Err(Error::JobException(msg)) => String::from_utf8_lossy(&msg).into_owned(),
        other => format!("unexpected: {other:?}"),
    };
    let mut task = client.job("flaky", "x").retries(2).start().await?;
    let mut events = Vec::new();
    while let Some(event) = task.next_event().await {
        match event? {
            TaskEvent::Retry { attempt } => events.push(format!("retry:{attempt}")),
            TaskEvent::Complete(r) => {
                events.push(format!("complete:{}", String::from_utf8_lossy(&r)));
                break;
            }
            TaskEvent::Fail => events.push("fail".into()),
            _ => {}
        }
    }
    worker.stop().await?;
    Ok(Outcome { exception, events })
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> gearbox_client::Result<()> {
    let outcome = run(&common::servers_from_args()).await?;
    println!("exception: {}", outcome.exception);
    println!("retried job: {}", outcome.events.join(", "));
    Ok(())
}

//! Chunked results with progress: the worker streams its output as WORK_DATA chunks and
//! reports WORK_STATUS after each; the client shows them as they arrive.
//!
//! `cargo run -p gearbox-client --example progress -- HOST:PORT`

#[path = "common/mod.rs"]
mod common;

use gearbox_client::worker::{Job, JobError};
use gearbox_client::{Client, TaskEvent, Worker};

/// Every event the client saw, as text (`data:..`, `status:n/d`, `complete:..`).
pub async fn run(servers: &str, parts: u64) -> gearbox_client::Result<Vec<String>> {
    let worker = Worker::builder()
        .servers(servers)
        .register("render", |job: Job| async move {
            let parts: u64 = job.payload_str()?.parse().map_err(JobError::from)?;
            for i in 1..=parts {
                job.send_data(format!("part {i}")).await?;
                job.send_status(i, parts).await?;
            }
            Ok::<_, JobError>("rendered")
        })
        .build()?;
    let worker = common::spawn(worker);

    let client = Client::new(servers)?;
    let mut task = client.job("render", parts.to_string()).start().await?;
    let mut seen = Vec::new();
    while let Some(event) = task.next_event().await {
        match event? {
            TaskEvent::Data(d) => seen.push(format!("data:{}", String::from_utf8_lossy(&d))),
            TaskEvent::Status {
                numerator,
                denominator,
            } => seen.push(format!("status:{numerator}/{denominator}")),
            TaskEvent::Complete(r) => {
                seen.push(format!("complete:{}", String::from_utf8_lossy(&r)));
                break;
            }
            _ => {}
        }
    }
    worker.stop().await?;
    Ok(seen)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> gearbox_client::Result<()> {
    for line in run(&common::servers_from_args(), 4).await? {
        println!("{line}");
    }
    Ok(())
}

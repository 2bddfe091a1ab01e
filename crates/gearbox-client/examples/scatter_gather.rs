//! Scatter/gather: split a text into chunks, count the words of each chunk on whichever worker
//! is free, and add the counts up.
//!
//! `cargo run -p gearbox-client --example scatter_gather -- HOST:PORT` (default
//! `GEARMAN_SERVERS`, then `127.0.0.1:4730`). It starts its own worker.

#[path = "common/mod.rs"]
mod common;

use gearbox_client::worker::{Job, JobError};
use gearbox_client::{Client, Worker};

/// Counts the words in `text` with one job per `chunk_lines` lines; returns the total.
pub async fn run(servers: &str, text: &str, chunk_lines: usize) -> gearbox_client::Result<u64> {
    let worker = Worker::builder()
        .servers(servers)
        .concurrency(4)
        .register("word_count", |job: Job| async move {
            let text = job.payload_str()?;
            Ok::<_, JobError>(text.split_whitespace().count().to_string())
        })
        .build()?;
    let worker = common::spawn(worker);

    let client = Client::new(servers)?;
    let mut set = client.task_set();
    let lines: Vec<&str> = text.lines().collect();
    for chunk in lines.chunks(chunk_lines.max(1)) {
        set.add(client.job("word_count", chunk.join("\n")));
    }
    let total = set
        .run()
        .await?
        .iter()
        .map(|r| String::from_utf8_lossy(r).parse::<u64>().unwrap_or(0))
        .sum();

    worker.stop().await?;
    Ok(total)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> gearbox_client::Result<()> {
    let text = "the quick brown fox\njumps over\nthe lazy dog\n".repeat(100);
    let total = run(&common::servers_from_args(), &text, 25).await?;
    println!("{total} words");
    Ok(())
}

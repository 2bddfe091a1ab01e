//! An asynchronous queue: a web request handler would submit "send this e-mail" as a
//! background job at low priority and answer at once; a worker sends the mails later.
//!
//! `cargo run -p gearbox-client --example async_queue -- HOST:PORT`

#[path = "common/mod.rs"]
mod common;

use gearbox_client::worker::{Job, JobError};
use gearbox_client::{Client, Worker};
use tokio::sync::mpsc;

/// Queues one mail per recipient and returns what the worker "sent", in the order sent.
pub async fn run(servers: &str, recipients: &[&str]) -> gearbox_client::Result<Vec<String>> {
    // The submitting side: fire and forget, keep the handles for status queries.
    let client = Client::new(servers)?;
    let mut handles = Vec::new();
    for to in recipients {
        let handle = client
            .job("send_email", format!("to={to}\nsubject=Welcome"))
            .low()
            .background()
            .await?;
        handles.push(handle);
    }
    // Nobody is working yet: the server holds the jobs.
    let first = client.job_status(&handles[0]).await?;
    assert!(first.known && !first.running);

    // The worker side: a real one would talk SMTP; this one reports to a channel.
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel();
    let worker = Worker::builder()
        .servers(servers)
        .register("send_email", move |job: Job| {
            let sent = sent_tx.clone();
            async move {
                let to = job
                    .payload_str()?
                    .lines()
                    .find_map(|l| l.strip_prefix("to="))
                    .ok_or_else(|| JobError::exception("no recipient"))?
                    .to_string();
                let _ = sent.send(to);
                Ok::<_, JobError>("")
            }
        })
        .build()?;
    let worker = common::spawn(worker);
    let mut sent = Vec::new();
    while sent.len() < recipients.len() {
        match sent_rx.recv().await {
            Some(to) => sent.push(to),
            None => break,
        }
    }
    worker.stop().await?;
    Ok(sent)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> gearbox_client::Result<()> {
    let sent = run(
        &common::servers_from_args(),
        &["ann@example.org", "bob@example.org"],
    )
    .await?;
    for to in sent {
        println!("sent to {to}");
    }
    Ok(())
}

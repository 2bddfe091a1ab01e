//! A pipeline of workers: `resize` hands its output to `watermark`, which hands its output to
//! `publish`; each step is a separate worker that submits the next step as a job of its own.
//! The client only talks to the first step and gets the end result.
//!
//! `cargo run -p gearbox-client --example pipeline -- HOST:PORT`

#[path = "common/mod.rs"]
mod common;

use gearbox_client::worker::{Job, JobError};
use gearbox_client::{Client, Worker};

/// A worker for one step: transforms its input, then (unless it is the last step) submits the
/// result to `next` and returns what that returned.
fn step(
    servers: &str,
    name: &'static str,
    next: Option<&'static str>,
) -> gearbox_client::Result<Worker> {
    let client = Client::new(servers)?;
    Worker::builder()
        .servers(servers)
        .register(name, move |job: Job| {
            let client = client.clone();
            async move {
                let out = format!("{}|{name}", job.payload_str()?);
                match next {
                    Some(next) => Ok::<_, JobError>(client.submit(next, out).await?),
                    None => Ok(out.into()),
                }
            }
        })
        .build()
}

/// Runs `image` through resize, watermark and publish.
pub async fn run(servers: &str, image: &str) -> gearbox_client::Result<String> {
    let workers = [
        common::spawn(step(servers, "resize", Some("watermark"))?),
        common::spawn(step(servers, "watermark", Some("publish"))?),
        common::spawn(step(servers, "publish", None)?),
    ];
    let client = Client::new(servers)?;
    let result = client.submit("resize", image.to_string()).await?;
    for w in workers {
        w.stop().await?;
    }
    Ok(String::from_utf8_lossy(&result).into_owned())
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> gearbox_client::Result<()> {
    println!("{}", run(&common::servers_from_args(), "cat.jpg").await?);
    Ok(())
}

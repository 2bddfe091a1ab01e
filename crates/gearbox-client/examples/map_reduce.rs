//! Map/reduce: a `map` function turns a chunk of text into per-word counts, a `reduce`
//! function merges the partial counts; the client scatters the map jobs, then submits one
//! reduce job with every partial result and prints the most frequent words.
//!
//! `cargo run -p gearbox-client --example map_reduce -- HOST:PORT`

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;

use gearbox_client::worker::{Job, JobError};
use gearbox_client::{Client, Worker};

/// `word count` lines, sorted by word.
fn encode(counts: &BTreeMap<String, u64>) -> String {
    counts.iter().map(|(w, n)| format!("{w} {n}\n")).collect()
}

fn decode_into(text: &str, counts: &mut BTreeMap<String, u64>) {
    for line in text.lines() {
        if let Some((w, n)) = line.rsplit_once(' ') {
            *counts.entry(w.to_string()).or_default() += n.parse::<u64>().unwrap_or(0);
        }
    }
}

async fn map(job: Job) -> Result<String, JobError> {
    let mut counts = BTreeMap::new();
    for word in job.payload_str()?.split_whitespace() {
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    Ok(encode(&counts))
}

async fn reduce(job: Job) -> Result<String, JobError> {
    let mut counts = BTreeMap::new();
    // Partials are separated by blank lines.
    for partial in job.payload_str()?.split("\n\n") {
        decode_into(partial, &mut counts);
    }
    Ok(encode(&counts))
}

/// Word frequencies of `documents`, computed with one map job per document.
pub async fn run(
    servers: &str,
    documents: &[&str],
) -> gearbox_client::Result<BTreeMap<String, u64>> {
    let worker = Worker::builder()
        .servers(servers)
        .concurrency(3)
        .register("map_words", map)
        .register("reduce_words", reduce)
        .build()?;
    let worker = common::spawn(worker);

    let client = Client::new(servers)?;
    let mut set = client.task_set();
    for doc in documents {
        set.add(client.job("map_words", doc.to_string()));
    }
    let partials: Vec<String> = set
        .run()
        .await?
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let merged = client.submit("reduce_words", partials.join("\n")).await?;
    let mut counts = BTreeMap::new();
    decode_into(&String::from_utf8_lossy(&merged), &mut counts);

    worker.stop().await?;
    Ok(counts)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> gearbox_client::Result<()> {
    let docs = [
        "It was the best of times",
        "it was the worst of times",
        "the age of wisdom",
    ];
    let counts = run(&common::servers_from_args(), &docs).await?;
    let mut by_count: Vec<_> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (word, n) in by_count.iter().take(5) {
        println!("{n:>3} {word}");
    }
    Ok(())
}

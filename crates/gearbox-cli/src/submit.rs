//! `gearbox submit`: one job, foreground (data chunks and progress shown as they arrive, the
//! result printed) or background (the handle printed).
//!
//! Standard output gets the job's bytes only: each WORK_DATA chunk as it arrives, then the
//! result. Progress goes to standard error: a bar when it is a terminal, else lines
//! `progress N/D (P%)`; warnings as `warning: ...`. `--json` prints one object at the end
//! instead. Exit status 1 when the job fails or raises an exception.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use gearbox_client::{Client, TaskEvent};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::cli::Ctx;
use super::output::json_text;

/// `gearbox submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The function.
    pub function: String,
    /// The payload; read from standard input when absent or `-`.
    pub payload: Option<String>,
    /// Queue the job and print its handle instead of waiting for the result.
    #[arg(short = 'b', long)]
    pub background: bool,
    /// HIGH priority.
    #[arg(long, conflicts_with = "low")]
    pub high: bool,
    /// LOW priority.
    #[arg(long)]
    pub low: bool,
    /// Unique id: jobs of a function with the same unique id are coalesced by the server.
    #[arg(short = 'u', long)]
    pub unique: Option<String>,
    /// Run no earlier than this time: UNIX seconds or RFC 3339 (`2030-01-01T09:00:00Z`).
    /// Such a job is always a background job.
    #[arg(long, value_parser = parse_at)]
    pub at: Option<u64>,
    /// Give up waiting for the result after this many seconds.
    #[arg(long, value_parser = parse_secs)]
    pub timeout: Option<Duration>,
    /// Resubmit a failed job (WORK_FAIL or a lost connection) up to N more times.
    #[arg(long, default_value_t = 0)]
    pub retries: u32,
}

/// `--at`: UNIX seconds, or an RFC 3339 date and time.
pub fn parse_at(s: &str) -> Result<u64, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|e| format!("{e}"));
    }
    let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| {
        format!("{e}: expected UNIX seconds or RFC 3339, e.g. 2030-01-01T09:00:00Z")
    })?;
    u64::try_from(t.timestamp()).map_err(|_| "times before 1970 cannot be scheduled".to_string())
}

/// Seconds, fractions allowed.
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let f: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(f).map_err(|e| e.to_string())
}

fn read_payload(arg: Option<&str>) -> anyhow::Result<Bytes> {
    match arg {
        Some(p) if p != "-" => Ok(Bytes::copy_from_slice(p.as_bytes())),
        _ => {
            let mut v = Vec::new();
            std::io::stdin().read_to_end(&mut v)?;
            Ok(v.into())
        }
    }
}

/// Runs `gearbox submit`.
pub async fn run(ctx: &Ctx, args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let payload = read_payload(args.payload.as_deref())?;
    let mut builder = Client::builder();
    for s in &ctx.servers {
        builder = builder.server(s.clone());
    }
    if let Some(tls) = &ctx.tls {
        builder = builder.tls(tls.clone());
    }
    let client = builder.build()?;
    let mut job = client.job(&args.function, payload).retries(args.retries);
    if args.high {
        job = job.high();
    }
    if args.low {
        job = job.low();
    }
    if let Some(u) = &args.unique {
        job = job.unique(u);
    }
    if let Some(t) = args.timeout {
        job = job.timeout(t);
    }
    if args.background || args.at.is_some() {
        if let Some(at) = args.at {
            job = job.at(at);
        }
        let handle = job.background().await?;
        let mut out = std::io::stdout().lock();
        if ctx.json {
            writeln!(out, "{}", json!({"handle": json_text(&handle)}))?;
        } else {
            out.write_all(&handle)?;
            out.write_all(b"\n")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut task = job.start().await?;
    let mut shown = Shown::new(ctx.json);
    let mut ended: Option<Value> = None;
    let mut exit = ExitCode::SUCCESS;
    while let Some(ev) = task.next_event().await {
        match ev? {
            TaskEvent::Created { handle } => shown.created(&handle),
            TaskEvent::Data(chunk) => shown.data(&chunk)?,
            TaskEvent::Warning(w) => shown.warning(&w),
            TaskEvent::Status {
                numerator,
                denominator,
            } => shown.progress(numerator, denominator),
            TaskEvent::Retry { attempt } => shown.note(&format!("retrying (attempt {attempt})")),
            TaskEvent::Complete(result) => {
                shown.data(&result)?;
                ended = Some(json!({"status": "complete", "result": json_text(&result)}));
            }
            TaskEvent::Fail => {
                shown.note(&format!(
                    "job {} failed (WORK_FAIL)",
                    String::from_utf8_lossy(task.handle())
                ));
                ended = Some(json!({"status": "failed"}));
                exit = ExitCode::FAILURE;
            }
            TaskEvent::Exception(e) => {
                let msg = String::from_utf8_lossy(&e);
                shown.note(&format!("job raised an exception: {msg}"));
                ended = Some(json!({"status": "exception", "exception": json_text(&e)}));
                exit = ExitCode::FAILURE;
            }
            _ => {}
        }
    }
    shown.finish();
    if let Some(Value::Object(mut end)) = ended {
        if ctx.json {
            end.insert("handle".into(), json_text(task.handle()));
            end.insert("data".into(), Value::Array(shown.chunks));
            end.insert("warnings".into(), Value::Array(shown.warnings));
            println!("{}", Value::Object(end));
        }
    }
    Ok(exit)
}

/// Where a foreground job's events go.
struct Shown {
    json: bool,
    bar: Option<ProgressBar>,
    chunks: Vec<Value>,
    warnings: Vec<Value>,
}

impl Shown {
    fn new(json: bool) -> Shown {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new_spinner();
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Shown {
            json,
            bar,
            chunks: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn created(&mut self, handle: &[u8]) {
        if let Some(b) = &self.bar {
            b.set_message(format!(
                "{} waiting for a worker",
                String::from_utf8_lossy(handle)
            ));
        }
    }

    fn data(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        if self.json {
            self.chunks.push(json_text(chunk));
            return Ok(());
        }
        let write = || {
            let mut out = std::io::stdout().lock();
            out.write_all(chunk).and_then(|()| out.flush())
        };
        match &self.bar {
            Some(b) => b.suspend(write),
            None => write(),
        }
    }

    fn warning(&mut self, w: &[u8]) {
        if self.json {
            self.warnings.push(json_text(w));
        } else {
            self.note(&format!("warning: {}", String::from_utf8_lossy(w)));
        }
    }

    fn note(&self, msg: &str) {
        if self.json {
            return;
        }
        match &self.bar {
            Some(b) => b.println(msg),
            None => {
                let _ = writeln!(std::io::stderr(), "{msg}");
            }
        }
    }

    fn progress(&mut self, n: u64, d: u64) {
        if self.json {
            return;
        }
        let pct = (n.saturating_mul(100)).checked_div(d).unwrap_or(0);
        match &mut self.bar {
            Some(b) => {
                if b.length() != Some(d) {
                    b.set_style(
                        ProgressStyle::with_template("{bar:40} {pos}/{len} ({percent}%) {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    b.set_length(d);
                }
                b.set_message("");
                b.set_position(n);
            }
            None => {
                let _ = writeln!(std::io::stderr(), "progress {n}/{d} ({pct}%)");
            }
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_takes_seconds_or_rfc3339() {
        assert_eq!(parse_at("1700000000"), Ok(1_700_000_000));
        assert_eq!(parse_at("2030-01-01T00:00:00Z"), Ok(1_893_456_000));
        assert_eq!(parse_at("2030-01-01T01:00:00+01:00"), Ok(1_893_456_000));
        assert!(parse_at("tomorrow").is_err());
        assert!(parse_at("1960-01-01T00:00:00Z").is_err());
    }
}

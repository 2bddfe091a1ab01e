//! `gearman` client mode.

use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{select_all, StreamExt};
use gearbox_client::{Client, Error, ServerAddr, TaskEvent};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader};

use super::stdio::{ewrite, CStdout};
use super::{could_not_connect, resolve_all, targets, timed_out, Args, Target};

/// C `fgets` with libgearman's 8192-byte buffer: at most 8191 bytes, up to and including a
/// newline; `None` at end of input.
async fn fgets(input: &mut (impl AsyncBufRead + Unpin)) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    while line.len() < 8191 {
        let buf = input.fill_buf().await.ok()?;
        if buf.is_empty() {
            break;
        }
        let room = 8191 - line.len();
        let take = buf.len().min(room);
        let (n, done) = match buf[..take].iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (take, false),
        };
        line.extend_from_slice(&buf[..n]);
        input.consume(n);
        if done {
            break;
        }
    }
    (!line.is_empty()).then_some(line)
}

/// A line as the C tool submits it: up to the first NUL (`strlen`), minus its last byte
/// with `-N`.
fn line_payload(mut line: Vec<u8>, strip: bool) -> Vec<u8> {
    if let Some(nul) = line.iter().position(|b| *b == 0) {
        line.truncate(nul);
    }
    if strip {
        line.pop();
    }
    line
}

/// Runs client mode; returns the exit status.
pub async fn run(args: &Args) -> u8 {
    let (targets, from_env) = targets(args);
    let label = if from_env {
        "Error occurred while parsing GEARMAN_SERVER"
    } else {
        "gearman_client_add_server"
    };
    if let Err(msg) = resolve_all(&targets, label) {
        ewrite(msg.as_bytes());
        return 0;
    }
    let timeout = (args.timeout >= 0).then(|| Duration::from_millis(args.timeout as u64));
    let mut builder = Client::builder();
    for t in &targets {
        builder = builder.server(ServerAddr::new(t.host.clone(), t.port));
    }
    if let Some(t) = timeout {
        builder = builder.connect_timeout(t.max(Duration::from_millis(1)));
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            ewrite(format!("gearman: {label} : {e}\n").as_bytes());
            return 0;
        }
    };
    let mut run = Run {
        args,
        client,
        targets,
        timeout,
        out: CStdout::default(),
        failed: false,
    };
    if !args.arguments.is_empty() {
        for a in &args.arguments {
            run.payload(Bytes::copy_from_slice(a.as_bytes())).await;
        }
    } else if args.suppress_input {
        run.payload(Bytes::new()).await;
    } else if args.job_per_newline {
        let mut input = BufReader::with_capacity(8192, tokio::io::stdin());
        while let Some(line) = fgets(&mut input).await {
            run.payload(line_payload(line, args.strip_newline).into())
                .await;
        }
    } else {
        let mut all = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut all).await;
        run.payload(all.into()).await;
    }
    run.out.fflush();
    u8::from(run.failed)
}

struct Run<'a> {
    args: &'a Args,
    client: Client,
    targets: Vec<Target>,
    timeout: Option<Duration>,
    out: CStdout,
    failed: bool,
}

impl Run<'_> {
    fn error(&self, e: &Error) {
        let label = "gearman_client_run_tasks";
        let msg = match e {
            Error::Unreachable { .. } => could_not_connect(label, &self.targets[0]),
            Error::Timeout(_) => timed_out(label, self.targets.len(), false),
            other => format!("gearman: {label} : {other}\n"),
        };
        ewrite(msg.as_bytes());
    }

    async fn within<T>(&self, f: impl std::future::Future<Output = T>) -> Result<T, Error> {
        match self.timeout {
            Some(t) => tokio::time::timeout(t, f)
                .await
                .map_err(|_| Error::Timeout(t)),
            None => Ok(f.await),
        }
    }

    /// One payload, submitted to every function; events handled as they arrive.
    async fn payload(&mut self, payload: Bytes) {
        let args = self.args;
        let mut streams = Vec::new();
        for f in &args.functions {
            let mut job = self.client.job(f, payload.clone()).priority(args.priority);
            if let Some(u) = &args.unique {
                job = job.unique(u);
            }
            if args.background {
                match self.within(job.background()).await.and_then(|r| r) {
                    Ok(handle) => self.created(&handle),
                    Err(e) => return self.error(&e),
                }
                continue;
            }
            match self.within(job.start()).await.and_then(|r| r) {
                Ok(task) => {
                    let name = f.clone();
                    streams.push(task.map(move |ev| (name.clone(), ev)).boxed());
                }
                Err(e) => return self.error(&e),
            }
        }
        let mut events = select_all(streams);
        loop {
            let next = match self.within(events.next()).await {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) => return self.error(&e),
            };
            match next {
                (_, Err(e)) => return self.error(&e),
                (f, Ok(ev)) => self.event(&f, ev),
            }
        }
    }

    fn created(&mut self, handle: &[u8]) {
        if self.args.verbose {
            let mut line = b"Task created: ".to_vec();
            line.extend_from_slice(handle);
            line.push(b'\n');
            self.out.printf(&line);
        }
    }

    fn event(&mut self, f: &str, ev: TaskEvent) {
        let prefix = self.args.prefix;
        match ev {
            TaskEvent::Created { handle } => self.created(&handle),
            TaskEvent::Data(d) | TaskEvent::Complete(d) => {
                if prefix {
                    self.out.printf(format!("{f}: ").as_bytes());
                    self.out.fflush();
                }
                self.out.write(&d);
            }
            TaskEvent::Warning(w) => {
                if prefix {
                    ewrite(format!("{f}: ").as_bytes());
                }
                ewrite(&w);
            }
            TaskEvent::Status {
                numerator,
                denominator,
            } => {
                if prefix {
                    self.out.printf(format!("{f}: ").as_bytes());
                }
                // The C tool computes this in 32-bit unsigned arithmetic.
                let pct = (numerator as u32)
                    .wrapping_mul(100)
                    .checked_div(denominator as u32)
                    .unwrap_or(0);
                self.out.printf(format!("{pct}% Complete\n").as_bytes());
            }
            TaskEvent::Fail | TaskEvent::Exception(_) => {
                if prefix {
                    ewrite(format!("{f}: ").as_bytes());
                }
                ewrite(b"Job failed\n");
                self.failed = true;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fgets_splits_long_lines_and_keeps_newlines() {
        let mut data = vec![b'a'; 9000];
        data.extend_from_slice(b"\nb\nc");
        let mut r = BufReader::new(&data[..]);
        let mut lines = Vec::new();
        while let Some(l) = fgets(&mut r).await {
            lines.push(l.len());
        }
        assert_eq!(lines, vec![8191, 810, 2, 1]);
        assert_eq!(line_payload(b"ab\0c\n".to_vec(), false), b"ab");
        assert_eq!(line_payload(b"abc\n".to_vec(), true), b"abc");
        assert_eq!(line_payload(b"abc".to_vec(), true), b"ab");
    }
}

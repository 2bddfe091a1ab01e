//! `gearman` client mode, speaking the protocol directly so that every packet and every
//! failure is handled as libgearman's client loop handles it:
//!
//! - each payload is one run: a task per `-f` (submitted in reverse order, as libgearman
//!   keeps its task list newest first), all sent to the first server (in [`Servers::order`])
//!   that accepts a connection; connections stay open for the next payload;
//! - JOB_CREATED (`-v`: `Task created: H`), WORK_DATA/WORK_COMPLETE (standard output),
//!   WORK_WARNING and WORK_EXCEPTION (standard error), WORK_STATUS (`N% Complete`),
//!   WORK_FAIL (`Job failed`, exit status 1) are matched to their task by handle;
//! - an ERROR packet, a closed connection, no reachable server or a `-t` timeout ends the run
//!   with libgearman's message ([`LibError`]), and the next payload is tried (exit status 0).

use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use bytes::Bytes;
use gearbox_client::raw::RawConnection;
use gearbox_client::{Error, TlsConfig};
use gearbox_proto::{Request, Response, SubmitJob};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader};

use super::args::atoi;
use super::message::LibError;
use super::servers::{Server, Servers};
use super::stdio::{ewrite, CStdout};
use super::Args;

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

/// The label the C tool prints before a failed run's message.
const RUN_TASKS: &str = "gearman_client_run_tasks";
/// The label of a task libgearman refuses to create.
const ADD_TASK: &str = "gearman_client_add_task";
/// libgearman's limit on a unique id.
const MAX_UNIQUE: usize = 64;

/// Runs client mode with the servers already read; returns the exit status.
pub async fn run(args: &Args, servers: Servers, tls: Option<TlsConfig>) -> u8 {
    let mut run = Run {
        args,
        tls,
        conns: servers.order().map(|s| (s.clone(), None)).collect(),
        last_tried: servers.last_tried().clone(),
        timeout: (args.timeout >= 0).then(|| Duration::from_millis(args.timeout as u64)),
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

/// One submitted job of a run.
struct Task {
    function: String,
    background: bool,
    handle: Option<Bytes>,
    done: bool,
}

/// Why a run ended early.
enum Stop {
    /// Print this message.
    Message(LibError),
    /// libgearman returned without a message (an ERROR packet with code SUCCESS).
    Quiet,
}

struct Run<'a> {
    args: &'a Args,
    /// `-S`: TLS for every connection.
    tls: Option<TlsConfig>,
    /// In the order libgearman tries them; `None` until connected.
    conns: Vec<(Server, Option<RawConnection>)>,
    last_tried: Server,
    timeout: Option<Duration>,
    out: CStdout,
    failed: bool,
}

impl Run<'_> {
    async fn within<T>(&self, f: impl std::future::Future<Output = T>) -> Result<T, Stop> {
        match self.timeout {
            Some(t) => tokio::time::timeout(t, f).await.map_err(|_| {
                let open = self.conns.iter().filter(|c| c.1.is_some()).count();
                Stop::Message(LibError::timeout(open.max(1), false))
            }),
            None => Ok(f.await),
        }
    }

    /// The first server that is (or can be) connected, in libgearman's order.
    async fn connection(&mut self) -> Result<usize, Stop> {
        for i in 0..self.conns.len() {
            if self.conns[i].1.is_some() {
                return Ok(i);
            }
            let server = self.conns[i].0.clone();
            for &addr in &server.addrs {
                let open = super::open(&server, addr, self.tls.as_ref());
                if let Ok(Ok(c)) = self.within(open).await {
                    self.conns[i].1 = Some(c);
                    return Ok(i);
                }
            }
        }
        Err(Stop::Message(LibError::could_not_connect(
            &self.last_tried.name(),
        )))
    }

    /// The tasks of one payload, in libgearman's task-list order (newest first); a task
    /// libgearman refuses is reported and left out.
    fn tasks(&self) -> Vec<Task> {
        let mut tasks = Vec::new();
        for f in &self.args.functions {
            let refused = LibError::bad_function(
                f,
                "add_task",
                ["libgearman/add.cc:175", "libgearman/add.cc:179"],
            )
            .or_else(|| {
                let long = self
                    .args
                    .unique
                    .as_ref()
                    .is_some_and(|u| u.len() > MAX_UNIQUE);
                long.then(|| {
                    LibError::at(
                        "add_task",
                        "GEARMAN_INVALID_ARGUMENT",
                        "unique name longer then GEARMAN_MAX_UNIQUE_SIZE".into(),
                        "libgearman/add.cc:187",
                    )
                })
            });
            if let Some(e) = refused {
                ewrite(e.line(ADD_TASK).as_bytes());
                continue;
            }
            tasks.insert(
                0,
                Task {
                    function: f.clone(),
                    background: self.args.background,
                    handle: None,
                    done: false,
                },
            );
        }
        tasks
    }

    /// One payload, submitted to every function; events handled as they arrive.
    async fn payload(&mut self, payload: Bytes) {
        let mut tasks = self.tasks();
        if tasks.is_empty() {
            return;
        }
        match self.submit_and_follow(&mut tasks, payload).await {
            Ok(()) | Err(Stop::Quiet) => {}
            Err(Stop::Message(e)) => ewrite(e.line(RUN_TASKS).as_bytes()),
        }
    }

    async fn submit_and_follow(&mut self, tasks: &mut [Task], payload: Bytes) -> Result<(), Stop> {
        let i = self.connection().await?;
        let mut conn = self.conns[i].1.take().ok_or(Stop::Quiet)?;
        for t in tasks.iter() {
            conn.queue(&Request::Submit(SubmitJob {
                function: Bytes::copy_from_slice(t.function.as_bytes()),
                unique: match &self.args.unique {
                    Some(u) => Bytes::copy_from_slice(u.as_bytes()),
                    None if t.background => uuid().into(),
                    None => Bytes::new(),
                },
                data: payload.clone(),
                priority: self.args.priority,
                background: t.background,
            }));
        }
        let result = self.follow(&mut conn, tasks).await;
        // A connection that failed is reconnected for the next payload.
        if !matches!(result, Err(Stop::Message(_))) {
            self.conns[i].1 = Some(conn);
        }
        result
    }

    async fn follow(&mut self, conn: &mut RawConnection, tasks: &mut [Task]) -> Result<(), Stop> {
        if self.within(conn.flush()).await?.is_err() {
            return Err(Stop::Message(LibError::lost_connection()));
        }
        let mut next_created = 0;
        while tasks.iter().any(|t| !t.done) {
            let response = match self.within(conn.recv()).await? {
                Ok(r) => r,
                Err(Error::Protocol { source, .. }) => {
                    return Err(Stop::Message(LibError::at(
                        "recv_socket",
                        "GEARMAN_INVALID_PACKET",
                        source.to_string(),
                        "gearbox",
                    )))
                }
                // A reset (the server closed with our packets unread) is seen by libgearman's
                // poll loop, an orderly close by its read.
                Err(Error::Disconnected { reason, .. })
                    if reason != "the server closed the connection" =>
                {
                    return Err(Stop::Message(LibError::at(
                        "_client_run_tasks",
                        "GEARMAN_LOST_CONNECTION",
                        "detected lost connection in _client_run_tasks()".into(),
                        "libgearman/client.cc:1504",
                    )))
                }
                Err(_) => return Err(Stop::Message(LibError::lost_connection())),
            };
            if let Response::Error { code, text } = &response {
                return Err(LibError::server(code, text).map_or(Stop::Quiet, Stop::Message));
            }
            if let Response::JobCreated { handle } = response {
                if let Some(t) = tasks.get_mut(next_created) {
                    next_created += 1;
                    t.handle = Some(handle.clone());
                    t.done = t.background;
                    self.created(&handle);
                }
                continue;
            }
            self.event(tasks, response);
        }
        Ok(())
    }

    fn created(&mut self, handle: &[u8]) {
        if self.args.verbose {
            let mut line = b"Task created: ".to_vec();
            line.extend_from_slice(handle);
            line.push(b'\n');
            self.out.printf(&line);
        }
    }

    /// A WORK_* packet for the first task with its handle.
    fn event(&mut self, tasks: &mut [Task], response: Response) {
        let handle = match &response {
            Response::WorkData { handle, .. }
            | Response::WorkComplete { handle, .. }
            | Response::WorkWarning { handle, .. }
            | Response::WorkException { handle, .. }
            | Response::WorkStatus { handle, .. }
            | Response::WorkFail { handle } => handle.clone(),
            _ => return,
        };
        // gearmand's stand-in for an exception is a WORK_FAIL whose handle ends in a stray
        // NUL; libgearman never matches it and hangs. It is this job's failure.
        let handle = match handle.strip_suffix(b"\0") {
            Some(h) => handle.slice(..h.len()),
            None => handle,
        };
        let Some(task) = tasks
            .iter_mut()
            .find(|t| !t.done && t.handle.as_ref() == Some(&handle))
        else {
            return;
        };
        let finished = matches!(
            response,
            Response::WorkComplete { .. }
                | Response::WorkFail { .. }
                | Response::WorkException { .. }
        );
        let f = task.function.as_str();
        let prefix = self.args.prefix;
        match response {
            Response::WorkData { data, .. } | Response::WorkComplete { data, .. } => {
                if prefix {
                    self.out.printf(format!("{f}: ").as_bytes());
                    self.out.fflush();
                }
                self.out.write(&data);
            }
            Response::WorkWarning { data, .. } | Response::WorkException { data, .. } => {
                if prefix {
                    ewrite(format!("{f}: ").as_bytes());
                }
                ewrite(&data);
            }
            Response::WorkStatus {
                numerator,
                denominator,
                ..
            } => {
                if prefix {
                    self.out.printf(format!("{f}: ").as_bytes());
                }
                // The C tool computes this in 32-bit unsigned arithmetic.
                let num = atoi(&numerator) as u32;
                let pct = num
                    .wrapping_mul(100)
                    .checked_div(atoi(&denominator) as u32)
                    .unwrap_or(0);
                self.out.printf(format!("{pct}% Complete\n").as_bytes());
            }
            Response::WorkFail { .. } => {
                if prefix {
                    ewrite(format!("{f}: ").as_bytes());
                }
                ewrite(b"Job failed\n");
                self.failed = true;
            }
            _ => {}
        }
        task.done = finished;
    }
}

/// A unique id for a background job without `-u`, shaped like the UUID libgearman makes.
fn uuid() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        chunk.copy_from_slice(&h.finish().to_be_bytes());
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

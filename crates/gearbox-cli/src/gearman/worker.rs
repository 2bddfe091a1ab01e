//! `gearman -w` worker mode, speaking the protocol directly so that each failure is reported
//! as libgearman's `gearman_worker_work` reports it.
//!
//! Each round is one `gearman_worker_work` call: connect to every server not yet connected
//! (registering each `-f` function with CAN_DO), ask each for a job (GRAB_JOB_ALL), and when none
//! has one send PRE_SLEEP and wait for a NOOP (at most `-t` milliseconds). A round that runs a
//! job, or fails, counts against `-c`. A round with no server reachable prints libgearman's
//! `GEARMAN_COULD_NOT_CONNECT` message; a packet other than a job, NO_JOB or NOOP prints its
//! `GEARMAN_UNEXPECTED_PACKET` message; `-t` expiring prints its `GEARMAN_TIMEOUT` message.
//! Jobs run one at a time (`Spec::serve`).

use std::ffi::OsString;
use std::time::Duration;

use bytes::Bytes;
use gearbox_client::raw::RawConnection;
use gearbox_client::TlsConfig;
use gearbox_proto::{Request, Response};

use super::message::LibError;
use super::servers::{Server, Servers};
use super::stdio::ewrite;
use super::Args;
use crate::command;

/// How long to wait before trying again when no server is reachable. The C tool retries at
/// once, in a busy loop; a pause keeps the same messages without burning a core.
const RETRY: Duration = Duration::from_secs(1);

/// The label of every worker-loop message.
const WORK: &str = "gearman_worker_work";

/// How worker mode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Exit with this status.
    Exit(u8),
    /// SIGTERM or SIGINT arrived: clean up, then die of it as the C tool does.
    Signal(i32),
}

/// The first SIGTERM or SIGINT.
async fn stop_signal() -> i32 {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => libc::SIGTERM,
            _ = int.recv() => libc::SIGINT,
        },
        _ => std::future::pending().await,
    }
}

/// Runs worker mode with the servers already read.
pub async fn run(args: &Args, servers: Servers, tls: Option<TlsConfig>) -> End {
    for f in &args.functions {
        let at = ["libgearman/worker.cc:1323", "libgearman/worker.cc:1327"];
        if let Some(e) = LibError::bad_function(f, "_worker_function_create", at) {
            ewrite(e.line("gearman_worker_add_function").as_bytes());
            return End::Exit(1);
        }
    }
    let mut worker = RawWorker {
        conns: servers.order().map(|s| (s.clone(), None)).collect(),
        last_tried: servers.last_tried().clone(),
        functions: args.functions.clone(),
        tls,
        timeout: (args.timeout >= 0).then(|| Duration::from_millis(args.timeout as u64)),
        spec: Spec {
            command: args.arguments.clone(),
            per_line: args.job_per_newline,
            strip: args.strip_newline,
        },
    };
    let stop = stop_signal();
    tokio::pin!(stop);
    let mut count = args.count;
    loop {
        let round = tokio::select! {
            r = worker.round() => r,
            sig = &mut stop => return End::Signal(sig),
        };
        if let Err(failure) = round {
            ewrite(failure.error.line(WORK).as_bytes());
            if failure.retry_later && count != 1 {
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    sig = &mut stop => return End::Signal(sig),
                }
            }
        }
        if count > 0 {
            count -= 1;
            if count == 0 {
                return End::Exit(0);
            }
        }
    }
}

/// A failed round.
struct Failure {
    error: LibError,
    /// No server was reachable: pause before the next round.
    retry_later: bool,
}

impl From<LibError> for Failure {
    fn from(error: LibError) -> Failure {
        Failure {
            error,
            retry_later: false,
        }
    }
}

struct RawWorker {
    /// In libgearman's order; `None` while not connected.
    conns: Vec<(Server, Option<RawConnection>)>,
    last_tried: Server,
    functions: Vec<String>,
    /// `-S`: TLS for every connection.
    tls: Option<TlsConfig>,
    timeout: Option<Duration>,
    spec: Spec,
}

impl RawWorker {
    /// Connects and registers where not connected; true if any server is connected.
    async fn connect_all(&mut self) -> bool {
        for (server, slot) in &mut self.conns {
            if slot.is_some() {
                continue;
            }
            for &addr in &server.addrs {
                let Ok(mut conn) = super::open(server, addr, self.tls.as_ref()).await else {
                    continue;
                };
                for f in &self.functions {
                    conn.queue(&Request::CanDo {
                        function: Bytes::copy_from_slice(f.as_bytes()),
                    });
                }
                if conn.flush().await.is_ok() {
                    *slot = Some(conn);
                    break;
                }
            }
        }
        self.conns.iter().any(|c| c.1.is_some())
    }

    /// One `gearman_worker_work`: until a job has run or something failed.
    async fn round(&mut self) -> Result<(), Failure> {
        loop {
            if !self.connect_all().await {
                return Err(Failure {
                    error: LibError::could_not_connect(&self.last_tried.name()),
                    retry_later: true,
                });
            }
            for i in 0..self.conns.len() {
                if let Some((handle, payload)) = self.grab(i).await? {
                    return self.run_job(i, handle, payload).await;
                }
            }
            self.sleep().await?;
        }
    }

    /// Asks server `i` for a job: `Some((handle, payload))`, or `None` for NO_JOB or a lost
    /// connection (which is dropped, to be reconnected).
    async fn grab(&mut self, i: usize) -> Result<Option<(Bytes, Bytes)>, Failure> {
        let Some(conn) = self.conns[i].1.as_mut() else {
            return Ok(None);
        };
        if conn.send(&Request::GrabJobAll).await.is_err() {
            self.conns[i].1 = None;
            return Ok(None);
        }
        loop {
            match conn.recv().await {
                Ok(Response::JobAssign { handle, data, .. })
                | Ok(Response::JobAssignUniq { handle, data, .. })
                | Ok(Response::JobAssignAll { handle, data, .. }) => {
                    return Ok(Some((handle, data)));
                }
                Ok(Response::NoJob) => return Ok(None),
                Ok(Response::Noop) => {}
                Ok(other) => {
                    return Err(LibError::at(
                        "gearman_worker_grab_job",
                        "GEARMAN_UNEXPECTED_PACKET",
                        format!("unexpected packet:GEARMAN_{}", other.packet_type().name()),
                        "libgearman/worker.cc:884",
                    )
                    .into())
                }
                Err(_) => {
                    self.conns[i].1 = None;
                    return Ok(None);
                }
            }
        }
    }

    /// PRE_SLEEP everywhere, then waits for a NOOP (or a closed connection, dropped).
    async fn sleep(&mut self) -> Result<(), Failure> {
        let mut waits = Vec::new();
        for (_, slot) in &mut self.conns {
            if let Some(conn) = slot {
                if conn.send(&Request::PreSleep).await.is_err() {
                    *slot = None;
                }
            }
        }
        let active = self.conns.iter().filter(|c| c.1.is_some()).count();
        for (k, (_, slot)) in self.conns.iter_mut().enumerate() {
            if let Some(conn) = slot {
                waits.push(Box::pin(async move { (k, conn.recv().await.is_ok()) }));
            }
        }
        if waits.is_empty() {
            return Ok(());
        }
        let woken = futures::future::select_all(waits);
        let (k, alive) = match self.timeout {
            Some(t) => match tokio::time::timeout(t, woken).await {
                Ok((r, _, _)) => r,
                Err(_) => return Err(LibError::timeout(active, true).into()),
            },
            None => woken.await.0,
        };
        if !alive {
            self.conns[k].1 = None;
        }
        Ok(())
    }

    /// Runs one job on server `i` and reports its result there.
    async fn run_job(&mut self, i: usize, handle: Bytes, payload: Bytes) -> Result<(), Failure> {
        let RawWorker { conns, spec, .. } = self;
        let Some(conn) = conns[i].1.as_mut() else {
            return Ok(());
        };
        let result = spec.serve(payload, conn, &handle).await;
        let failed = result.is_err();
        let sent = conn
            .send(&match result {
                Ok(out) => Request::WorkComplete { handle, data: out },
                Err(()) => Request::WorkFail { handle },
            })
            .await;
        if sent.is_err() {
            conns[i].1 = None;
        }
        if failed {
            ewrite(b"gearman: gearman_worker_work : GEARMAN_UNKNOWN_STATE\n");
        }
        Ok(())
    }
}

/// What a job runs.
struct Spec {
    command: Vec<OsString>,
    per_line: bool,
    strip: bool,
}

impl Spec {
    /// Runs the command for one payload, sending output as WORK_DATA where the C tool does
    /// (each line with `-n`/`-N`; the whole output of a failed command); returns the result
    /// (`Err` for WORK_FAIL). Without a command the payload is printed and the result empty.
    async fn serve(
        &self,
        payload: Bytes,
        conn: &mut RawConnection,
        handle: &Bytes,
    ) -> Result<Bytes, ()> {
        if self.command.is_empty() {
            super::stdio::CStdout::new(false).write(&payload);
            return Ok(Bytes::new());
        }
        let running = match command::spawn(&self.command, payload, &[]) {
            Ok(r) => r,
            Err(e) => {
                // The C tool's `perror` format (which its strerror_r misuse leaves empty).
                let why = e.to_string();
                let why = why.split(" (os error").next().unwrap_or(&why);
                ewrite(format!("gearman: execvp ({why})\n").as_bytes());
                return Err(());
            }
        };
        let data = |data: Bytes| Request::WorkData {
            handle: handle.clone(),
            data,
        };
        if self.per_line {
            let strip = self.strip;
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
            let produce = running.lines(move |mut line| {
                if strip {
                    line.pop();
                }
                let _ = tx.send(line.into());
                async {}
            });
            let forward = async {
                while let Some(line) = rx.recv().await {
                    let _ = conn.send(&data(line)).await;
                }
            };
            let (status, ()) = tokio::join!(produce, forward);
            return match status {
                Ok(s) if s.success() => Ok(Bytes::new()),
                _ => Err(()),
            };
        }
        match running.output().await {
            Ok((out, s)) if s.success() => Ok(out.into()),
            Ok((out, _)) => {
                if !out.is_empty() {
                    let _ = conn.send(&data(out.into())).await;
                }
                Err(())
            }
            Err(_) => Err(()),
        }
    }
}

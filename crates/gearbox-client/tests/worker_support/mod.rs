//! Shared helpers for the worker tests: a server of either kind (in-process gearbox or the
//! real gearmand) with the testkit's macro that runs one scenario against both, raw-packet
//! clients (so these tests do not depend on the client API), and a worker running in the
//! background.
#![allow(dead_code)] // Each test binary uses a different subset.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use gearbox_client::worker::{StopReason, Worker, WorkerBuilder};
use gearbox_proto::Response;
use gearbox_testkit::{build, RawConn};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for a worker to stop or for a handler to report in.
pub const WAIT: Duration = Duration::from_secs(20);

#[allow(unused_imports)] // Not every test binary builds packets.
pub use gearbox_testkit::build::{b, Work};

/// A running server of either kind: the in-process gearbox or Debian's gearmand.
pub use gearbox_testkit::Target as Server;

/// Runs an `async fn(Server)` scenario against both servers, as two tests.
#[allow(unused_imports)] // Not every test binary has such scenarios.
pub use gearbox_testkit::on_both_servers;

/// A builder for `servers` with the quick back-off tests want.
pub fn builder(servers: &str) -> WorkerBuilder {
    Worker::builder()
        .servers(servers)
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(100))
}

/// A worker running in a task until [`Running::stop`].
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<gearbox_client::Result<StopReason>>,
}

/// Starts `worker` in the background.
pub fn spawn(worker: Worker) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    Running {
        stop: Some(stop),
        task: tokio::spawn(worker.run(stopped)),
    }
}

impl Running {
    /// Asks the worker to shut down (returns at once).
    pub fn request_stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    /// Asks the worker to shut down and returns why it stopped.
    pub async fn stop(mut self) -> StopReason {
        self.request_stop();
        self.join().await
    }

    /// Waits for the worker to stop by itself.
    pub async fn join(self) -> StopReason {
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("worker stops in time")
            .expect("worker task")
            .expect("worker result")
    }
}

/// Submits a foreground NORMAL job and returns its handle.
pub async fn submit(c: &mut RawConn, function: &str, payload: &str) -> Bytes {
    c.submit(&build::fg(function, "", payload)).await
}

/// Reads packets until a job's final one (complete, fail, exception), returned with those
/// before it. WORK_FAIL handles lose the trailing NUL gearmand adds after an exception.
pub async fn until_done(c: &mut RawConn) -> Vec<Response> {
    let mut seen = Vec::new();
    loop {
        let r = match c.recv().await {
            Response::WorkFail { handle } => Response::WorkFail {
                handle: trim_nul(handle),
            },
            r => r,
        };
        let done = matches!(
            r,
            Response::WorkComplete { .. }
                | Response::WorkFail { .. }
                | Response::WorkException { .. }
        );
        seen.push(r);
        if done {
            return seen;
        }
    }
}

/// Connects, submits one job and returns every packet up to its final one.
pub async fn run_job(server: &Server, function: &str, payload: &str) -> (Bytes, Vec<Response>) {
    let mut c = server.connect().await;
    let handle = submit(&mut c, function, payload).await;
    (handle, until_done(&mut c).await)
}

/// Like [`run_job`] on a connection that asked for exceptions (`OPTION_REQ exceptions`).
pub async fn run_job_with_exceptions(
    server: &Server,
    function: &str,
    payload: &str,
) -> (Bytes, Vec<Response>) {
    let mut c = server.connect().await;
    c.enable_exceptions().await;
    let handle = submit(&mut c, function, payload).await;
    (handle, until_done(&mut c).await)
}

/// Runs one job (see [`run_job`]) and asserts that its client saw exactly `work`, as the
/// server forwards it.
pub async fn expect_job(server: &Server, function: &str, payload: &str, work: &[Work<'_>]) {
    let (handle, seen) = run_job(server, function, payload).await;
    assert_saw(server, &handle, seen, work);
}

/// [`expect_job`] on a connection that asked for exceptions.
pub async fn expect_job_with_exceptions(
    server: &Server,
    function: &str,
    payload: &str,
    work: &[Work<'_>],
) {
    let (handle, seen) = run_job_with_exceptions(server, function, payload).await;
    assert_saw(server, &handle, seen, work);
}

/// Asserts that the client of the job `handle` saw exactly `work` (ending with its final
/// packet).
pub fn assert_saw(server: &Server, handle: &Bytes, seen: Vec<Response>, work: &[Work<'_>]) {
    let expected = Work::responses(work, handle);
    assert_eq!(seen, expected, "{}: what the client saw", server.name());
}

/// The result payload of a job expected to complete.
pub async fn complete(server: &Server, function: &str, payload: &str) -> Bytes {
    let (handle, seen) = run_job(server, function, payload).await;
    match seen.last() {
        Some(Response::WorkComplete { handle: h, data }) if *h == handle => data.clone(),
        _ => panic!("{}: expected WORK_COMPLETE, got {seen:?}", server.name()),
    }
}

fn trim_nul(h: Bytes) -> Bytes {
    match h.strip_suffix(b"\0") {
        Some(t) => h.slice(..t.len()),
        None => h,
    }
}

/// An address where nothing listens (bound, then released).
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

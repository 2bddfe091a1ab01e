//! Shared helpers for the worker tests: a server of either kind (in-process gearbox or the
//! real gearmand), a macro that runs one scenario against both, raw-packet clients (so these
//! tests do not depend on the client API), and a worker running in the background.
#![allow(dead_code)] // Each test binary uses a different subset.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use gearbox_client::worker::{StopReason, Worker, WorkerBuilder};
use gearbox_proto::{Priority, Request, Response};
use gearbox_server::{Config, ShutdownMode};
use gearbox_testkit::gearmand::Gearmand;
use gearbox_testkit::{build, RawConn, TestServer};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for a worker to stop or for a handler to report in.
pub const WAIT: Duration = Duration::from_secs(20);

/// Bytes from a string.
pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A running server of either kind.
pub enum Server {
    /// The in-process gearbox server.
    Gearbox(TestServer),
    /// Debian's gearmand.
    Gearmand(Gearmand),
}

impl Server {
    /// An in-process gearbox server with default settings.
    pub async fn gearbox() -> Server {
        Server::Gearbox(TestServer::start().await)
    }

    /// An in-process gearbox server with `config`.
    pub async fn gearbox_with(config: Config) -> Server {
        Server::Gearbox(TestServer::start_with(config).await)
    }

    /// gearmand, or `None` (reason printed) when it is not installed outside CI.
    pub async fn gearmand() -> Option<Server> {
        Some(Server::Gearmand(Gearmand::start().await?))
    }

    /// gearmand with extra flags.
    pub async fn gearmand_with(args: &[&str]) -> Option<Server> {
        Some(Server::Gearmand(Gearmand::start_with(args).await?))
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Server::Gearbox(s) => s.addr,
            Server::Gearmand(g) => g.addr,
        }
    }

    /// `127.0.0.1:port`, for `WorkerBuilder::servers`.
    pub fn list(&self) -> String {
        self.addr().to_string()
    }

    /// Port as a string, for the C tools.
    pub fn port(&self) -> String {
        self.addr().port().to_string()
    }

    /// `gearbox` or `gearmand`, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Server::Gearbox(_) => "gearbox",
            Server::Gearmand(_) => "gearmand",
        }
    }

    /// A raw connection.
    pub async fn connect(&self) -> RawConn {
        RawConn::connect(self.addr()).await
    }

    /// Stops an in-process server (closing every connection); panics for gearmand.
    pub async fn stop(self) {
        match self {
            Server::Gearbox(s) => s.stop(ShutdownMode::Immediate).await,
            Server::Gearmand(_) => panic!("stop() is for the in-process server"),
        }
    }
}

/// Runs an `async fn(Server)` scenario against gearbox and against gearmand (skipped with a
/// printed reason when gearmand is missing outside CI), as two tests in a module of its name.
#[macro_export]
macro_rules! on_both_servers {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn gearbox() {
                super::$case(super::worker_support::Server::gearbox().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn gearmand() {
                if let Some(s) = super::worker_support::Server::gearmand().await {
                    super::$case(s).await;
                }
            }
        }
    )*};
}

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
    c.send(&build::submit(
        function,
        "",
        payload,
        Priority::Normal,
        false,
    ))
    .await;
    match c.recv().await {
        Response::JobCreated { handle } => handle,
        other => panic!("expected JOB_CREATED, got {other:?}"),
    }
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
    c.send(&Request::OptionReq {
        option: b("exceptions"),
    })
    .await;
    assert_eq!(
        c.recv().await,
        Response::OptionRes {
            option: b("exceptions")
        }
    );
    let handle = submit(&mut c, function, payload).await;
    (handle, until_done(&mut c).await)
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

//! Shared helpers for the client tests: a server of either kind (in-process gearbox or the
//! real gearmand), a way to run one scenario against both, and a raw-packet worker (so these
//! tests do not depend on the worker API).
#![allow(dead_code)] // Each test binary uses a different subset.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use gearbox_client::{Client, Task, TaskEvent};
use gearbox_proto::{Request, Response};
use gearbox_testkit::{build, RawConn};

#[allow(unused_imports)] // Not every test binary builds packets.
pub use gearbox_testkit::build::{b, Work};

/// A running server of either kind: the in-process gearbox or Debian's gearmand.
pub use gearbox_testkit::Target as Server;

/// What the client tests need of a server besides [`Server`]'s own methods.
pub trait ClientSide {
    /// A client for this server with default settings.
    fn client(&self) -> Client;

    /// A raw worker that registered `functions`.
    fn worker(&self, functions: &[&str]) -> impl Future<Output = RawWorker>;
}

impl ClientSide for Server {
    fn client(&self) -> Client {
        Client::new(&self.list()).expect("client")
    }

    async fn worker(&self, functions: &[&str]) -> RawWorker {
        RawWorker::new(self.addr(), functions).await
    }
}

/// Two servers of the same kind: gearbox, then (when installed) gearmand.
pub async fn both_pairs<F, Fut>(scenario: F)
where
    F: Fn(Server, Server) -> Fut,
    Fut: Future<Output = ()>,
{
    scenario(Server::gearbox().await, Server::gearbox().await).await;
    if let (Some(a), Some(b)) = (Server::gearmand().await, Server::gearmand().await) {
        scenario(a, b).await;
    }
}

/// A job as a worker received it (JOB_ASSIGN_UNIQ).
#[derive(Debug, Clone)]
pub struct Assigned {
    /// Job handle.
    pub handle: Bytes,
    /// Function name.
    pub function: Bytes,
    /// Unique id.
    pub unique: Bytes,
    /// Payload.
    pub data: Bytes,
}

/// A worker speaking raw packets: CAN_DO, GRAB_JOB_UNIQ, PRE_SLEEP / NOOP, WORK_*.
pub struct RawWorker {
    conn: RawConn,
}

impl RawWorker {
    /// Connects and registers `functions` (proven processed by an echo round trip).
    pub async fn new(addr: SocketAddr, functions: &[&str]) -> RawWorker {
        let mut conn = RawConn::connect(addr).await;
        for f in functions {
            conn.send(&build::can_do(f)).await;
        }
        conn.assert_quiet().await;
        RawWorker { conn }
    }

    /// One GRAB_JOB_UNIQ: the job, or `None` on NO_JOB.
    pub async fn try_grab(&mut self) -> Option<Assigned> {
        self.conn.send(&Request::GrabJobUniq).await;
        loop {
            return match self.conn.recv().await {
                Response::JobAssignUniq {
                    handle,
                    function,
                    unique,
                    data,
                } => Some(Assigned {
                    handle,
                    function,
                    unique,
                    data,
                }),
                Response::NoJob => None,
                // A NOOP left over from an earlier sleep.
                Response::Noop => continue,
                other => panic!("expected JOB_ASSIGN_UNIQ or NO_JOB, got {other:?}"),
            };
        }
    }

    /// Waits for a job: grabs, and on NO_JOB sleeps (PRE_SLEEP) until the server's NOOP.
    /// Fails the test when no job comes within the read timeout.
    pub async fn grab(&mut self) -> Assigned {
        loop {
            if let Some(job) = self.try_grab().await {
                return job;
            }
            self.conn.send(&Request::PreSleep).await;
            match self.conn.recv().await {
                Response::Noop => {}
                other => panic!("expected NOOP after PRE_SLEEP, got {other:?}"),
            }
        }
    }

    /// Sends `work` about the job `handle` and proves the server processed it (echo round
    /// trip), so another connection's next request sees its effect.
    pub async fn work(&mut self, handle: &Bytes, work: Work<'_>) {
        self.conn.send(&work.request(handle)).await;
        self.conn.assert_quiet().await;
    }

    /// WORK_COMPLETE with `data`.
    pub async fn complete(&mut self, handle: &Bytes, data: &str) {
        self.work(handle, Work::Complete(data)).await;
    }

    /// WORK_FAIL.
    pub async fn fail(&mut self, handle: &Bytes) {
        self.work(handle, Work::Fail).await;
    }
}

/// A raw worker for `function` on `srv`, and the job it took (waiting for one).
pub async fn take(srv: &Server, function: &str) -> (RawWorker, Assigned) {
    let mut w = srv.worker(&[function]).await;
    let job = w.grab().await;
    (w, job)
}

/// Every event of `task` up to its end, each expected to be `Ok`.
pub async fn events(task: &mut Task) -> Vec<TaskEvent> {
    let mut events = Vec::new();
    while let Some(ev) = within("event", task.next_event()).await {
        events.push(ev.expect("no error"));
    }
    events
}

/// Asserts that `value` matches `pattern` (a typed error, an event), naming the server of
/// either kind it came from when it does not.
#[macro_export]
macro_rules! expect_match {
    ($srv:expr, $value:expr, $pattern:pat $(if $guard:expr)?) => {{
        let value = $value;
        assert!(
            matches!(value, $pattern $(if $guard)?),
            "{}: {value:?}",
            $srv.name()
        );
    }};
}

/// A client for both servers (`a` first), with a quick reconnect back-off.
pub fn two_server_client(a: &Server, other: &Server) -> Client {
    Client::builder()
        .servers(&format!("{},{}", a.list(), other.list()))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .build()
        .expect("client")
}

/// [`two_server_client`], and a unique id that hashes to `a`, the first server.
pub fn pinned_to_first(a: &Server, other: &Server) -> (Client, String) {
    let client = two_server_client(a, other);
    let unique = unique_on(&client, 0);
    (client, unique)
}

/// A unique id that hashes to the server at `index` of `client`'s list.
pub fn unique_on(client: &Client, index: usize) -> String {
    let target = client.servers()[index].clone();
    (0..)
        .map(|i| format!("u-{i}"))
        .find(|u| client.server_for(u) == target)
        .expect("some unique hashes there")
}

/// Upper bound for anything a test waits for through the client.
pub const LIMIT: Duration = Duration::from_secs(15);

/// Awaits `f`, failing the test after [`LIMIT`] instead of hanging.
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {LIMIT:?}"))
}

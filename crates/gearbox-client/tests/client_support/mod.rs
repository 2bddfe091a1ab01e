//! Shared helpers for the client tests: a server of either kind (in-process gearbox or the
//! real gearmand), a way to run one scenario against both, and a raw-packet worker (so these
//! tests do not depend on the worker API).
#![allow(dead_code)] // Each test binary uses a different subset.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use gearbox_client::Client;
use gearbox_proto::{Request, Response};
use gearbox_server::ShutdownMode;
use gearbox_testkit::gearmand::Gearmand;
use gearbox_testkit::{RawConn, TestServer};

/// Bytes from a string.
pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

enum Running {
    Gearbox(TestServer),
    Gearmand(Gearmand),
}

/// A running server of either kind.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    running: Running,
}

impl Server {
    /// An in-process gearbox server.
    pub async fn gearbox() -> Server {
        let s = TestServer::start().await;
        Server {
            addr: s.addr,
            running: Running::Gearbox(s),
        }
    }

    /// Debian's gearmand, or `None` (reason printed) when it is not installed outside CI.
    pub async fn gearmand() -> Option<Server> {
        let g = Gearmand::start().await?;
        Some(Server {
            addr: g.addr,
            running: Running::Gearmand(g),
        })
    }

    /// `gearbox` or `gearmand`, for assertion messages.
    pub fn name(&self) -> &'static str {
        match self.running {
            Running::Gearbox(_) => "gearbox",
            Running::Gearmand(_) => "gearmand",
        }
    }

    /// Whether this is the real gearmand.
    pub fn is_gearmand(&self) -> bool {
        matches!(self.running, Running::Gearmand(_))
    }

    /// `127.0.0.1:port`.
    pub fn list(&self) -> String {
        self.addr.to_string()
    }

    /// A client for this server with default settings.
    pub fn client(&self) -> Client {
        Client::new(&self.list()).expect("client")
    }

    /// A raw worker that registered `functions`.
    pub async fn worker(&self, functions: &[&str]) -> RawWorker {
        RawWorker::new(self.addr, functions).await
    }

    /// A raw connection.
    pub async fn connect(&self) -> RawConn {
        RawConn::connect(self.addr).await
    }

    /// Stops the server (gearbox: immediate shutdown; gearmand: killed) and waits until its
    /// port refuses connections.
    pub async fn stop(self) {
        match self.running {
            Running::Gearbox(s) => s.stop(ShutdownMode::Immediate).await,
            Running::Gearmand(g) => drop(g),
        }
    }
}

/// Runs `scenario` against gearbox, then against gearmand when it is installed.
pub async fn both<F, Fut>(scenario: F)
where
    F: Fn(Server) -> Fut,
    Fut: Future<Output = ()>,
{
    scenario(Server::gearbox().await).await;
    if let Some(g) = Server::gearmand().await {
        scenario(g).await;
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
            conn.send(&Request::CanDo { function: b(f) }).await;
        }
        conn.assert_quiet().await;
        RawWorker { conn }
    }

    /// One GRAB_JOB_UNIQ: the job, or `None` on NO_JOB.
    pub async fn try_grab(&mut self) -> Option<Assigned> {
        self.conn.send(&Request::GrabJobUniq).await;
        loop {
            match self.conn.recv().await {
                Response::JobAssignUniq {
                    handle,
                    function,
                    unique,
                    data,
                } => {
                    return Some(Assigned {
                        handle,
                        function,
                        unique,
                        data,
                    })
                }
                Response::NoJob => return None,
                // A NOOP left over from an earlier sleep.
                Response::Noop => continue,
                other => panic!("expected JOB_ASSIGN_UNIQ or NO_JOB, got {other:?}"),
            }
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

    /// Sends a request and proves the server processed it (echo round trip), so another
    /// connection's next request sees its effect.
    pub async fn send_synced(&mut self, req: Request) {
        self.conn.send(&req).await;
        self.conn.assert_quiet().await;
    }

    /// WORK_COMPLETE.
    pub async fn complete(&mut self, handle: &Bytes, data: &str) {
        self.send_synced(Request::WorkComplete {
            handle: handle.clone(),
            data: b(data),
        })
        .await;
    }

    /// WORK_FAIL.
    pub async fn fail(&mut self, handle: &Bytes) {
        self.send_synced(Request::WorkFail {
            handle: handle.clone(),
        })
        .await;
    }

    /// WORK_EXCEPTION.
    pub async fn exception(&mut self, handle: &Bytes, data: &str) {
        self.send_synced(Request::WorkException {
            handle: handle.clone(),
            data: b(data),
        })
        .await;
    }

    /// WORK_DATA.
    pub async fn data(&mut self, handle: &Bytes, data: &str) {
        self.send_synced(Request::WorkData {
            handle: handle.clone(),
            data: b(data),
        })
        .await;
    }

    /// WORK_WARNING.
    pub async fn warning(&mut self, handle: &Bytes, data: &str) {
        self.send_synced(Request::WorkWarning {
            handle: handle.clone(),
            data: b(data),
        })
        .await;
    }

    /// WORK_STATUS.
    pub async fn status(&mut self, handle: &Bytes, numerator: u64, denominator: u64) {
        self.send_synced(Request::WorkStatus {
            handle: handle.clone(),
            numerator: Bytes::from(numerator.to_string()),
            denominator: Bytes::from(denominator.to_string()),
        })
        .await;
    }
}

/// Upper bound for anything a test waits for through the client.
pub const LIMIT: Duration = Duration::from_secs(15);

/// Awaits `f`, failing the test after [`LIMIT`] instead of hanging.
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {LIMIT:?}"))
}

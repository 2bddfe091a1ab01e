//! Shared helpers for the admin tests: either server kind, its pid, and raw-packet set-ups.
#![allow(dead_code)] // Each test binary uses a different subset.

use std::net::SocketAddr;

use bytes::Bytes;
use gearbox_client::ServerAddr;
use gearbox_proto::{Priority, Request, Response};
use gearbox_testkit::gearmand::Gearmand;
use gearbox_testkit::{build, RawConn, TestServer};

/// Bytes from a string.
pub fn b(s: &str) -> Bytes {
    build::b(s)
}

/// A running server of either kind.
pub enum Server {
    /// The in-process gearbox (handle prefix `H:test`).
    Gearbox(TestServer),
    /// Debian's gearmand.
    Gearmand(Gearmand),
}

impl Server {
    /// Both kinds, gearmand only when installed (outside CI a missing one is skipped).
    pub async fn both() -> Vec<Server> {
        let mut v = vec![Server::Gearbox(TestServer::start().await)];
        if let Some(g) = Gearmand::start().await {
            v.push(Server::Gearmand(g));
        }
        v
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Server::Gearbox(s) => s.addr,
            Server::Gearmand(g) => g.addr,
        }
    }

    /// As a [`ServerAddr`].
    pub fn server_addr(&self) -> ServerAddr {
        ServerAddr::new("127.0.0.1", self.addr().port())
    }

    /// For assertion messages.
    pub fn name(&self) -> &'static str {
        match self {
            Server::Gearbox(_) => "gearbox",
            Server::Gearmand(_) => "gearmand",
        }
    }

    /// Whether this is the real gearmand.
    pub fn is_gearmand(&self) -> bool {
        matches!(self, Server::Gearmand(_))
    }

    /// The pid `getpid` reports.
    pub fn pid(&self) -> u32 {
        match self {
            Server::Gearbox(_) => std::process::id(),
            Server::Gearmand(g) => g.pid(),
        }
    }

    /// A raw connection.
    pub async fn raw(&self) -> RawConn {
        RawConn::connect(self.addr()).await
    }
}

/// Submits a background job on `c` and returns its handle.
pub async fn submit_bg(c: &mut RawConn, function: &str, unique: &str, prio: Priority) -> Bytes {
    c.send(&build::submit(function, unique, "data", prio, true))
        .await;
    match c.recv().await {
        Response::JobCreated { handle } => handle,
        other => panic!("expected JOB_CREATED, got {other:?}"),
    }
}

/// A raw worker with a client id and functions, registration confirmed by an echo.
pub async fn worker(server: &Server, id: &str, functions: &[&str]) -> RawConn {
    let mut w = server.raw().await;
    w.send(&Request::SetClientId { id: b(id) }).await;
    for f in functions {
        w.send(&Request::CanDo { function: b(f) }).await;
    }
    w.assert_quiet().await;
    w
}

/// Grabs one job on a raw worker; returns its handle.
pub async fn grab(w: &mut RawConn) -> Bytes {
    w.send(&Request::GrabJob).await;
    match w.recv().await {
        Response::JobAssign { handle, .. } => handle,
        other => panic!("expected JOB_ASSIGN, got {other:?}"),
    }
}

/// Bounded polling of state that only shows through an admin query (e.g. a closed worker
/// connection the server has not processed yet): each round is a real query; the pause
/// between rounds only avoids spinning.
pub struct Poll {
    what: &'static str,
    deadline: std::time::Instant,
    pause: std::time::Duration,
}

impl Poll {
    /// Polls for `what` for at most 20 s.
    pub fn new(what: &'static str) -> Poll {
        Poll {
            what,
            deadline: std::time::Instant::now() + std::time::Duration::from_secs(20),
            pause: std::time::Duration::from_millis(2),
        }
    }

    /// Waits before the next query; panics once the deadline has passed.
    pub async fn again(&mut self) {
        assert!(
            std::time::Instant::now() < self.deadline,
            "timed out waiting for {}",
            self.what
        );
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(std::time::Duration::from_millis(50));
    }
}

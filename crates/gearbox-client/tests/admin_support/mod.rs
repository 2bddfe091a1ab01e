//! Shared helpers for the admin tests: either server kind (the testkit's `Target`), its
//! address for the admin API, and raw-packet set-ups.
#![allow(dead_code)] // Each test binary uses a different subset.

use bytes::Bytes;
use gearbox_client::ServerAddr;
use gearbox_proto::{Priority, Request, Response};
use gearbox_testkit::{build, RawConn};

/// Bytes from a string.
pub fn b(s: &str) -> Bytes {
    build::b(s)
}

/// A running server of either kind: the in-process gearbox (handle prefix `H:test`) or
/// Debian's gearmand; `Server::both()` gives both (gearmand only when installed).
pub use gearbox_testkit::Target as Server;

/// A server's address as the admin API takes it.
pub fn server_addr(server: &Server) -> ServerAddr {
    ServerAddr::new("127.0.0.1", server.addr().port())
}

/// Submits a background job on `c` and returns its handle.
pub async fn submit_bg(c: &mut RawConn, function: &str, unique: &str, prio: Priority) -> Bytes {
    c.submit(&build::submit(function, unique, "data", prio, true))
        .await
}

/// A raw worker with a client id and functions, registration confirmed by an echo.
pub async fn worker(server: &Server, id: &str, functions: &[&str]) -> RawConn {
    let mut w = server.connect().await;
    w.send(&Request::SetClientId { id: b(id) }).await;
    for f in functions {
        w.send(&build::can_do(f)).await;
    }
    w.assert_quiet().await;
    w
}

/// Grabs one job on a raw worker; returns its handle.
pub async fn grab(w: &mut RawConn) -> Bytes {
    match w.ask(&Request::GrabJob).await {
        Response::JobAssign { handle, .. } => handle,
        other => panic!("expected JOB_ASSIGN, got {other:?}"),
    }
}

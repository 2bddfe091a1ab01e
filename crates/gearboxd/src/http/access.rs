//! The `[[access]]` rules applied to HTTP requests, judged by the HTTP peer's address (an
//! HTTP request carries no client certificate): listings and metrics need admin `read`,
//! cancel and maxqueue admin `write` (and `http_allow`), a submission a `submit` pattern
//! matching its function. A refusal is `403 Forbidden` with a one-line explanation and a
//! warning in the log. Job look-ups by handle or unique id are not restricted, as GET_STATUS
//! is not on the Gearman port.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use gearbox_proto::AdminAccess;

use super::Gateway;

/// What a request to `path` needs.
fn needed(method: &Method, path: &str) -> AdminAccess {
    match path {
        "/metrics" | "/api/status" | "/api/workers" | "/api/jobs" | "/api/events" => {
            AdminAccess::Read
        }
        p if *method == Method::POST && p.starts_with("/api/jobs/") && p.ends_with("/cancel") => {
            AdminAccess::Write
        }
        p if *method == Method::PUT && p.starts_with("/api/maxqueue/") => AdminAccess::Write,
        _ => AdminAccess::Nothing,
    }
}

/// Middleware: refuses a listing or a change the peer's access rule does not grant.
pub(super) async fn guard(
    State(g): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let needed = needed(request.method(), request.uri().path());
    let grants = g.access.resolve_ip(&[], Some(peer.ip()));
    if grants.may_admin(needed) {
        return next.run(request).await;
    }
    let level = match needed {
        AdminAccess::Write => "write",
        _ => "read",
    };
    let path = request.uri().path().to_owned();
    tracing::warn!(peer = %peer.ip(), rule = grants.rule(), what = "admin", target = %path, "http request refused by the access rules");
    let message = format!(
        "permission denied: {path} needs admin {level} access, which the access rule `{}` \
         does not grant to {}",
        grants.rule(),
        peer.ip().to_canonical()
    );
    (
        StatusCode::FORBIDDEN,
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

/// `Ok` if `peer` may submit to `function`; otherwise the explanation (logged).
pub(crate) fn may_submit(g: &Gateway, peer: SocketAddr, function: &[u8]) -> Result<(), String> {
    let grants = g.access.resolve_ip(&[], Some(peer.ip()));
    if grants.may_submit(function) {
        return Ok(());
    }
    let function = String::from_utf8_lossy(function);
    tracing::warn!(peer = %peer.ip(), rule = grants.rule(), what = "submit", target = %function, "http request refused by the access rules");
    Err(format!(
        "permission denied: may not submit to {function} (access rule `{}` for {})",
        grants.rule(),
        peer.ip().to_canonical()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_need_read_and_changes_need_write() {
        let get = Method::GET;
        assert_eq!(needed(&get, "/api/status"), AdminAccess::Read);
        assert_eq!(needed(&get, "/metrics"), AdminAccess::Read);
        assert_eq!(needed(&get, "/api/events"), AdminAccess::Read);
        assert_eq!(
            needed(&Method::POST, "/api/jobs/H:x:1/cancel"),
            AdminAccess::Write
        );
        assert_eq!(needed(&Method::PUT, "/api/maxqueue/f"), AdminAccess::Write);
        assert_eq!(needed(&get, "/api/jobs/H:x:1"), AdminAccess::Nothing);
        assert_eq!(needed(&get, "/"), AdminAccess::Nothing);
        assert_eq!(needed(&Method::POST, "/resize"), AdminAccess::Nothing);
    }
}

//! The JSON API's per-job part: `POST /api/submit/{function}`, `GET /api/jobs/{handle}` and
//! `GET /api/unique/{unique}` (GET_STATUS and GET_STATUS_UNIQUE over the gateway connection).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gearbox_client::raw::RawConnection;
use gearbox_proto::{Priority, Request, Response as Gearman, SubmitJob};
use serde::{Deserialize, Serialize};

use super::api::ApiError;
use super::submit::{run, SubmitError};
use super::Gateway;

/// The body of `POST /api/submit/{function}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Submit {
    /// The workload, as text (binary workloads: gearmand's `POST /<function>`).
    #[serde(default)]
    data: String,
    #[serde(default)]
    unique: String,
    #[serde(default)]
    background: bool,
    #[serde(default)]
    priority: Prio,
}

/// A job's priority in JSON.
#[derive(Debug, Default, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Prio {
    High,
    #[default]
    Normal,
    Low,
}

/// The answer to a submit.
#[derive(Debug, Serialize)]
pub(crate) struct Submitted {
    handle: String,
    /// `JOB_CREATED`, `WORK_COMPLETE`, `WORK_FAIL` or `WORK_EXCEPTION`.
    status: &'static str,
    /// The result or exception data (lossy UTF-8); absent for background jobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<String>,
}

/// `POST /api/submit/{function}`: `{"data": "...", "unique": "...", "background": false,
/// "priority": "normal"}`; answered once created (background) or finished (foreground).
pub(super) async fn submit(
    State(g): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(function): Path<String>,
    Json(s): Json<Submit>,
) -> Result<Response, SubmitError> {
    let job = SubmitJob {
        function: Bytes::from(function),
        unique: Bytes::from(s.unique),
        data: Bytes::from(s.data),
        priority: match s.priority {
            Prio::High => Priority::High,
            Prio::Normal => Priority::Normal,
            Prio::Low => Priority::Low,
        },
        background: s.background,
    };
    let o = run(&g, peer, job).await?;
    Ok(Json(Submitted {
        handle: String::from_utf8_lossy(&o.handle).into_owned(),
        status: o.command,
        result: (!s.background).then(|| String::from_utf8_lossy(&o.data).into_owned()),
    })
    .into_response())
}

/// A job's state, from GET_STATUS / GET_STATUS_UNIQUE.
#[derive(Debug, Serialize)]
pub(crate) struct JobState {
    known: bool,
    running: bool,
    numerator: u64,
    denominator: u64,
    /// Clients waiting on it (by unique only).
    #[serde(skip_serializing_if = "Option::is_none")]
    clients: Option<u64>,
}

/// Sends GET_STATUS or GET_STATUS_UNIQUE for `what` and reads the answer; 404 when the
/// server does not know the job.
async fn status_of(
    g: &Gateway,
    request: Request,
    what: String,
) -> Result<Json<JobState>, ApiError> {
    let e = |e: gearbox_client::Error| ApiError::Gateway(e.to_string());
    let mut c = RawConnection::connect(&g.gearman).await.map_err(e)?;
    c.send(&request).await.map_err(e)?;
    let (known, running, numerator, denominator, clients) = match c.recv().await.map_err(e)? {
        Gearman::StatusRes {
            known,
            running,
            numerator,
            denominator,
            ..
        } => (known, running, numerator, denominator, None),
        Gearman::StatusResUnique {
            known,
            running,
            numerator,
            denominator,
            client_count,
            ..
        } => (known, running, numerator, denominator, Some(client_count)),
        other => return Err(ApiError::Gateway(format!("{other:?}"))),
    };
    if !known {
        return Err(ApiError::NoJob(what));
    }
    let num = |b: &[u8]| {
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    Ok(Json(JobState {
        known,
        running,
        numerator: num(&numerator),
        denominator: num(&denominator),
        clients,
    }))
}

/// `GET /api/jobs/{handle}`: one job by handle (404 when the server does not hold it).
pub(super) async fn by_handle(
    State(g): State<Arc<Gateway>>,
    Path(handle): Path<String>,
) -> Result<Json<JobState>, ApiError> {
    let request = Request::GetStatus {
        handle: Bytes::from(handle.clone()),
    };
    status_of(&g, request, handle).await
}

/// `GET /api/unique/{unique}`: one job by unique id.
pub(super) async fn by_unique(
    State(g): State<Arc<Gateway>>,
    Path(unique): Path<String>,
) -> Result<Json<JobState>, ApiError> {
    let request = Request::GetStatusUnique {
        unique: Bytes::from(unique.clone()),
    };
    status_of(&g, request, unique).await
}

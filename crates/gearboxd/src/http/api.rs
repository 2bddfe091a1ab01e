//! The JSON API under `/api/`, read from the admin listings the Gearman port answers (one
//! source of truth with `gearadmin`): status, workers, jobs; and, from the peers `http_allow`
//! names only (loopback by default, like the admin `shutdown`), cancel and maxqueue.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::admin::{listing, one_line, AdminError};
use super::Gateway;

/// Why an API request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(
        "{what} is not allowed from {peer}: the peers allowed to change the server are set by \
         http_allow (--http-allow CIDR)"
    )]
    Forbidden { what: &'static str, peer: IpAddr },
    #[error("bad {0}: {1}")]
    Bad(&'static str, String),
    #[error("no job {0}")]
    NoJob(String),
    #[error("the job server is not reachable or answered wrongly: {0}")]
    Gateway(String),
    #[error("{0}")]
    Unavailable(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::Admin(e) => return e.into_response(),
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::Bad(..) => StatusCode::BAD_REQUEST,
            ApiError::NoJob(_) => StatusCode::NOT_FOUND,
            ApiError::Gateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let body = serde_json::json!({ "error": self.to_string() });
        (status, Json(body)).into_response()
    }
}

/// Jobs queued per priority.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Queued {
    pub(crate) high: u64,
    pub(crate) normal: u64,
    pub(crate) low: u64,
}

impl Queued {
    /// Over all priorities.
    pub(crate) fn sum(&self) -> u64 {
        self.high + self.normal + self.low
    }
}

/// One function in `/api/status`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FunctionStatus {
    pub(crate) function: String,
    pub(crate) queued: Queued,
    pub(crate) running: u64,
    pub(crate) workers: u64,
    pub(crate) total: u64,
}

/// The lines of a listing, each split at tabs from the right into the name and `n` numbers
/// (a function name may hold a tab).
fn rows(text: &[u8], n: usize) -> Vec<(String, Vec<u64>)> {
    String::from_utf8_lossy(text)
        .lines()
        .filter_map(|l| {
            let mut parts: Vec<&str> = l.rsplitn(n + 1, '\t').collect();
            if parts.len() != n + 1 {
                return None;
            }
            let name = parts.pop()?.to_owned();
            let nums = parts
                .iter()
                .rev()
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            Some((name, nums))
        })
        .collect()
}

/// Joins the `prioritystatus` and `status` listings into one row per function, in the
/// order of `prioritystatus` (sorted by function).
pub(crate) fn function_status(prioritystatus: &[u8], status: &[u8]) -> Vec<FunctionStatus> {
    let status: std::collections::HashMap<String, Vec<u64>> = rows(status, 3).into_iter().collect();
    rows(prioritystatus, 4)
        .into_iter()
        .map(|(function, p)| {
            let s = status.get(&function).map(Vec::as_slice);
            FunctionStatus {
                queued: Queued {
                    high: p[0],
                    normal: p[1],
                    low: p[2],
                },
                running: s.map_or(0, |s| s[1]),
                workers: p[3],
                total: s.map_or(0, |s| s[0]),
                function,
            }
        })
        .collect()
}

/// `GET /api/status`: per function queued by priority, running, workers, total held.
pub(super) async fn status(
    State(g): State<Arc<Gateway>>,
) -> Result<Json<Vec<FunctionStatus>>, ApiError> {
    let prio = listing(&g, "prioritystatus").await?;
    let status = listing(&g, "status").await?;
    Ok(Json(function_status(&prio, &status)))
}

/// One connection in `/api/workers`.
#[derive(Debug, Serialize)]
pub(crate) struct Worker {
    fd: i64,
    ip: String,
    client_id: String,
    pub(crate) functions: Vec<String>,
}

/// The connections of a `workers` listing.
pub(crate) fn connections(workers: &[u8]) -> Vec<Worker> {
    String::from_utf8_lossy(workers)
        .lines()
        .filter_map(|l| {
            let (head, functions) = l.split_once(" :")?;
            let mut h = head.splitn(3, ' ');
            Some(Worker {
                fd: h.next()?.parse().ok()?,
                ip: h.next()?.to_owned(),
                client_id: h.next().unwrap_or("").to_owned(),
                functions: functions.split_whitespace().map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// `GET /api/workers`: every connection, its client id and registered functions.
pub(super) async fn workers(State(g): State<Arc<Gateway>>) -> Result<Json<Vec<Worker>>, ApiError> {
    Ok(Json(connections(&listing(&g, "workers").await?)))
}

/// One job in `/api/jobs`.
#[derive(Debug, Serialize)]
pub(crate) struct Job {
    handle: String,
    retries: u64,
    /// A foreground job every client has left.
    ignored: bool,
    background: bool,
}

/// `GET /api/jobs`: every job the server holds.
pub(super) async fn jobs(State(g): State<Arc<Gateway>>) -> Result<Json<Vec<Job>>, ApiError> {
    let out = rows(&listing(&g, "show jobs").await?, 3)
        .into_iter()
        .map(|(handle, n)| Job {
            handle,
            retries: n[0],
            ignored: n[1] != 0,
            background: n[2] != 0,
        })
        .collect();
    Ok(Json(out))
}

/// A name or handle that fits in one admin word.
fn word(what: &'static str, s: &str) -> Result<(), ApiError> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::Bad(
            what,
            format!("`{s}` (empty, or with spaces or control characters)"),
        ));
    }
    Ok(())
}

/// `POST /api/jobs/{handle}/cancel` (allowed peers only): cancels a queued job.
pub(super) async fn cancel(
    State(g): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(handle): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    g.allow.check(peer, "cancel")?;
    word("handle", &handle)?;
    match one_line(&g, &format!("cancel job {handle}")).await {
        Ok(()) => Ok(Json(serde_json::json!({ "cancelled": handle }))),
        Err(AdminError::Refused(e)) if e.contains("UNKNOWN_JOB") => Err(ApiError::NoJob(handle)),
        Err(e) => Err(e.into()),
    }
}

/// The body of `PUT /api/maxqueue/{function}`: one limit for every priority, or one each
/// (0 = unlimited).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MaxQueue {
    all: Option<u32>,
    high: Option<u32>,
    normal: Option<u32>,
    low: Option<u32>,
}

/// `PUT /api/maxqueue/{function}` (allowed peers only): sets the function's queue limits.
pub(super) async fn maxqueue(
    State(g): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(function): Path<String>,
    Json(m): Json<MaxQueue>,
) -> Result<Json<serde_json::Value>, ApiError> {
    g.allow.check(peer, "maxqueue")?;
    word("function", &function)?;
    let [high, normal, low] = match (m.all, m.high, m.normal, m.low) {
        (Some(a), None, None, None) => [a; 3],
        (None, h, n, l) if h.is_some() || n.is_some() || l.is_some() => {
            [h.unwrap_or(0), n.unwrap_or(0), l.unwrap_or(0)]
        }
        _ => {
            return Err(ApiError::Bad(
                "limits",
                "give `all`, or some of `high`, `normal`, `low`".into(),
            ))
        }
    };
    one_line(&g, &format!("maxqueue {function} {high} {normal} {low}")).await?;
    Ok(Json(
        serde_json::json!({ "function": function, "high": high, "normal": normal, "low": low }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_rows_keep_tabs_in_names_and_skip_malformed_lines() {
        let r = rows(b"a\tb\t1\t2\t3\nshort\t1\nx\t1\t2\t3\n", 3);
        assert_eq!(
            r,
            [
                ("a\tb".to_owned(), vec![1, 2, 3]),
                ("x".to_owned(), vec![1, 2, 3])
            ]
        );
    }
}

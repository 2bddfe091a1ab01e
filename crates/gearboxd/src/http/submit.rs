//! gearmand's HTTP submission: `POST /<function>` (body = workload; `PUT` too, as gearmand
//! takes it), `GET /<function>` (empty workload), `HEAD /<function>` (like GET, no body in the
//! answer). Headers:
//! `X-Gearman-Unique`, `X-Gearman-Background: true`, `X-Gearman-Priority: high|low`.
//! The answer carries `X-Gearman-Job-Handle`, `X-Gearman-Command` (`JOB_CREATED` for a
//! background job, `WORK_COMPLETE`/`WORK_FAIL`/`WORK_EXCEPTION` for a foreground one) and, for
//! a completed foreground job, the result as the body.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use gearbox_client::raw::RawConnection;
use gearbox_proto::{Priority, Request, Response as Gearman, SubmitJob};

use super::Gateway;

/// The `Server` header of every answer.
const SERVER: &str = concat!("gearboxd/", env!("CARGO_PKG_VERSION"));

/// Why a request got no job: each becomes a status with a one-line explanation.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SubmitError {
    #[error("method {0} not allowed: use POST, PUT, GET or HEAD /<function>")]
    Method(Method),
    #[error("no function: the path is /<function>")]
    NoFunction,
    #[error("bad {0} header: {1}")]
    Header(&'static str, String),
    #[error("the job server is not reachable: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the job server refused the job: {code} {text}")]
    Refused {
        /// gearmand's error code, e.g. `ARGUMENT_TOO_LARGE`.
        code: String,
        /// Its explanation.
        text: String,
    },
}

impl IntoResponse for SubmitError {
    fn into_response(self) -> Response {
        let status = match self {
            SubmitError::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
            SubmitError::NoFunction => StatusCode::NOT_FOUND,
            SubmitError::Header(..) => StatusCode::BAD_REQUEST,
            SubmitError::Forbidden(_) => StatusCode::FORBIDDEN,
            SubmitError::Unreachable(_) => StatusCode::BAD_GATEWAY,
            // The packet (function, unique and body) is over --max-body.
            SubmitError::Refused { ref code, .. } if code == "ARGUMENT_TOO_LARGE" => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            SubmitError::Refused { .. } => StatusCode::SERVICE_UNAVAILABLE,
        };
        tracing::debug!(status = status.as_u16(), error = %self, "http request refused");
        let mut r = (status, format!("{self}\n")).into_response();
        r.headers_mut()
            .insert(header::SERVER, HeaderValue::from_static(SERVER));
        r
    }
}

/// The job a request asks for, from its method, path, headers and body.
fn parse(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<SubmitJob, SubmitError> {
    let data = match *method {
        Method::POST | Method::PUT => body,
        Method::GET | Method::HEAD => Bytes::new(),
        ref m => return Err(SubmitError::Method(m.clone())),
    };
    let function = uri.path().trim_start_matches('/');
    if function.is_empty() {
        return Err(SubmitError::NoFunction);
    }
    let text = |name: &'static str| -> Result<Option<&str>, SubmitError> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map_err(|_| SubmitError::Header(name, "not ASCII text".into()))
            })
            .transpose()
    };
    let unique = text("x-gearman-unique")?.unwrap_or("");
    let background = match text("x-gearman-background")? {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            return Err(SubmitError::Header(
                "X-Gearman-Background",
                format!("`{v}` (true or false)"),
            ))
        }
    };
    let priority = match text("x-gearman-priority")? {
        None => Priority::Normal,
        Some(v) if v.eq_ignore_ascii_case("high") => Priority::High,
        Some(v) if v.eq_ignore_ascii_case("normal") => Priority::Normal,
        Some(v) if v.eq_ignore_ascii_case("low") => Priority::Low,
        Some(v) => {
            return Err(SubmitError::Header(
                "X-Gearman-Priority",
                format!("`{v}` (high, normal or low)"),
            ))
        }
    };
    Ok(SubmitJob {
        function: Bytes::copy_from_slice(function.as_bytes()),
        unique: Bytes::copy_from_slice(unique.as_bytes()),
        data,
        priority,
        background,
    })
}

/// What a submission ended with: its handle, gearmand's command name, and the data.
pub(crate) struct Outcome {
    /// The job handle.
    pub(crate) handle: Bytes,
    /// `JOB_CREATED`, `WORK_COMPLETE`, `WORK_FAIL` or `WORK_EXCEPTION`.
    pub(crate) command: &'static str,
    /// The result (or exception data); empty otherwise.
    pub(crate) data: Bytes,
}

/// Submits `job` through a Gearman connection to this server and waits until it is created
/// (background) or finished (foreground).
/// `peer` (the HTTP client) must be allowed to submit to the job's function.
pub(crate) async fn run(
    gateway: &Gateway,
    peer: SocketAddr,
    job: SubmitJob,
) -> Result<Outcome, SubmitError> {
    tracing::debug!(function = ?job.function, background = job.background, "http submit");
    super::access::may_submit(gateway, peer, &job.function).map_err(SubmitError::Forbidden)?;
    let unreachable = |e: gearbox_client::Error| SubmitError::Unreachable(e.to_string());
    let mut conn = RawConnection::connect(&gateway.gearman)
        .await
        .map_err(unreachable)?;
    let background = job.background;
    conn.send(&Request::Submit(job))
        .await
        .map_err(unreachable)?;
    let mut handle = Bytes::new();
    loop {
        let (command, data) = match conn.recv().await.map_err(unreachable)? {
            Gearman::JobCreated { handle: h } if background => {
                handle = h;
                ("JOB_CREATED", Bytes::new())
            }
            Gearman::JobCreated { handle: h } => {
                handle = h;
                continue;
            }
            Gearman::WorkComplete { data, .. } => ("WORK_COMPLETE", data),
            Gearman::WorkFail { .. } => ("WORK_FAIL", Bytes::new()),
            Gearman::WorkException { data, .. } => ("WORK_EXCEPTION", data),
            Gearman::Error { code, text } => {
                return Err(SubmitError::Refused {
                    code: String::from_utf8_lossy(&code).into_owned(),
                    text: String::from_utf8_lossy(&text).into_owned(),
                })
            }
            // WORK_DATA, WORK_WARNING, WORK_STATUS: gearmand's plugin sends none of them.
            _ => continue,
        };
        return Ok(Outcome {
            handle,
            command,
            data,
        });
    }
}

/// Handles `METHOD /<function>`: submits the job and answers once it is created (background)
/// or finished (foreground).
pub(super) async fn handle(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, SubmitError> {
    let job = parse(&method, &uri, &headers, body)?;
    let o = run(&gateway, peer, job).await?;
    Ok(answer(&method, &o.handle, o.command, o.data))
}

fn answer(method: &Method, handle: &[u8], command: &'static str, data: Bytes) -> Response {
    let len = data.len();
    let body = if *method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(data)
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_bytes(handle) {
        h.insert("x-gearman-job-handle", v);
    }
    h.insert("x-gearman-command", HeaderValue::from_static(command));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::SERVER, HeaderValue::from_static(SERVER));
    r
}

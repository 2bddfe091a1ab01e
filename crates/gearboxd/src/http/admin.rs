//! Admin commands over the gateway's Gearman connection, and `GET /metrics`, which is the
//! `metrics` admin command's listing (Prometheus text) without its closing `.` line.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Gateway;

/// The largest admin listing read (a scrape of very many functions stays far below).
const MAX_LISTING: usize = 64 << 20;

/// Why an admin listing could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    #[error("the job server is not reachable: {0}")]
    Io(#[from] std::io::Error),
    #[error("the job server answered `{0}`")]
    Refused(String),
    #[error("the listing is larger than {MAX_LISTING} bytes")]
    TooLarge,
    #[error("the job server did not answer within {0:?}")]
    TimedOut(std::time::Duration),
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        tracing::warn!(error = %self, "admin listing over http failed");
        (StatusCode::BAD_GATEWAY, format!("{self}\n")).into_response()
    }
}

/// Sends the admin `command` and returns its listing, without the closing `.` line.
pub(crate) async fn listing(gateway: &Gateway, command: &str) -> Result<Vec<u8>, AdminError> {
    AdminConn::connect(gateway).await?.listing(command).await
}

/// Sends an admin `command` answered by one line (`OK`); an `ERR` line is an error.
pub(crate) async fn one_line(gateway: &Gateway, command: &str) -> Result<(), AdminError> {
    AdminConn::connect(gateway)
        .await?
        .exchange(command, false)
        .await
        .map(drop)
}

/// A Gearman connection to this server used for admin commands, one after another (the
/// live feed's sampler keeps one open instead of connecting every second).
pub(crate) struct AdminConn {
    stream: TcpStream,
}

impl AdminConn {
    /// Connects to the gateway's Gearman address.
    pub(crate) async fn connect(gateway: &Gateway) -> Result<AdminConn, AdminError> {
        Ok(AdminConn {
            stream: TcpStream::connect(&gateway.gearman).await?,
        })
    }

    /// Sends the admin `command` and returns its listing, without the closing `.` line.
    pub(crate) async fn listing(&mut self, command: &str) -> Result<Vec<u8>, AdminError> {
        self.exchange(command, true).await
    }

    async fn exchange(&mut self, command: &str, listing: bool) -> Result<Vec<u8>, AdminError> {
        let s = &mut self.stream;
        s.write_all(format!("{command}\r\n").as_bytes()).await?;
        let mut buf = Vec::with_capacity(4096);
        loop {
            if buf.starts_with(b"ERR ") && buf.ends_with(b"\n") {
                return Err(AdminError::Refused(
                    String::from_utf8_lossy(&buf).trim_end().to_owned(),
                ));
            }
            if !listing && buf.ends_with(b"\n") {
                return Ok(buf);
            }
            if buf == b".\n" || buf.ends_with(b"\n.\n") {
                buf.truncate(buf.len() - 2);
                return Ok(buf);
            }
            if buf.len() > MAX_LISTING {
                return Err(AdminError::TooLarge);
            }
            if s.read_buf(&mut buf).await? == 0 {
                return Err(AdminError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }
}

/// `GET /metrics`: Prometheus' text exposition format.
pub(super) async fn metrics(State(gateway): State<Arc<Gateway>>) -> Result<Response, AdminError> {
    let body = listing(&gateway, "metrics").await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

//! Typed answers to GET_STATUS and GET_STATUS_UNIQUE.

use bytes::Bytes;

/// What a server knows about a job handle (STATUS_RES).
///
/// ```no_run
/// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
/// let handle = client.submit_background("resize", "img-1.png").await?;
/// let st = client.job_status(&handle).await?;
/// if st.known {
///     println!("running: {}, progress {}/{}", st.running, st.numerator, st.denominator);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    /// The handle asked about.
    pub handle: Bytes,
    /// Whether the server knows the job (queued or running).
    pub known: bool,
    /// Whether a worker is running it.
    pub running: bool,
    /// Last WORK_STATUS numerator (0 if none; non-numeric text counts as 0).
    pub numerator: u64,
    /// Last WORK_STATUS denominator (0 if none).
    pub denominator: u64,
}

/// What a server knows about a unique id (STATUS_RES_UNIQUE).
///
/// ```no_run
/// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
/// let st = client.unique_status("report-2024-06").await?;
/// println!("known: {}, clients waiting: {}", st.known, st.client_count);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueStatus {
    /// The unique id asked about.
    pub unique: Bytes,
    /// Whether the server knows a job with this unique id.
    pub known: bool,
    /// Whether a worker is running it.
    pub running: bool,
    /// Last WORK_STATUS numerator (0 if none).
    pub numerator: u64,
    /// Last WORK_STATUS denominator (0 if none).
    pub denominator: u64,
    /// Foreground clients attached to the job.
    pub client_count: u64,
}

/// An ASCII decimal from the wire; anything else is 0 (as gearmand's `atoi` would read it).
pub(crate) fn number(b: &[u8]) -> u64 {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

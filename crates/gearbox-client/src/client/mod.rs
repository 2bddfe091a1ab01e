//! The async client: submit jobs, follow them, ask for their status.
//!
//! - [`builder`]: [`ClientBuilder`], servers and connection settings.
//! - [`job`]: [`JobBuilder`], one job's options; [`Epoch`].
//! - [`task`]: [`Task`] and [`TaskEvent`], a foreground job in progress.
//! - [`set`]: [`TaskSet`], scatter/gather.
//! - [`status`]: [`JobStatus`], [`UniqueStatus`].
//!
//! Each server gets one connection, shared by every job and request of this client (and its
//! clones) and pipelined. A job goes to the server its unique id hashes to, or the next one
//! in list order when that one cannot be reached.

pub mod builder;
pub mod job;
pub mod set;
pub mod status;
pub mod task;
mod unique;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use gearbox_proto::{Request, Response};

pub use self::builder::ClientBuilder;
pub use self::job::{Epoch, JobBuilder};
pub use self::set::TaskSet;
pub use self::status::{JobStatus, UniqueStatus};
pub use self::task::{Task, TaskEvent};
use crate::conn::Pool;
use crate::{Error, Result, ServerAddr};

/// A Gearman client. Cheap to clone: clones share the connections.
///
/// ```no_run
/// # async fn f() -> gearbox_client::Result<()> {
/// let client = gearbox_client::Client::new("localhost:4730")?;
/// let reversed = client.submit("reverse", "hello").await?;
/// let handle = client.submit_background("send_email", "to=bob").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: Pool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("servers", &self.servers())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder with the defaults listed on [`ClientBuilder`].
    ///
    /// ```
    /// let client = gearbox_client::Client::builder().servers("localhost").build()?;
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client for a `host[:port],...` list with default settings. Opens nothing yet.
    ///
    /// ```
    /// let client = gearbox_client::Client::new("gear1,gear2:4731")?;
    /// assert_eq!(client.servers().len(), 2);
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn new(servers: &str) -> Result<Client> {
        Client::builder().servers(servers).build()
    }

    /// The configured servers, in order.
    ///
    /// ```
    /// let client = gearbox_client::Client::new("a,b")?;
    /// assert_eq!(client.servers()[1].host, "b");
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn servers(&self) -> Vec<ServerAddr> {
        let pool = &self.inner.pool;
        (0..pool.len()).map(|i| pool.addr(i).clone()).collect()
    }

    /// The server a job with this unique id goes to while every server is up (FNV-1a hash
    /// of the unique id modulo the number of servers). When it is down, the job goes to the
    /// next server in list order.
    ///
    /// ```
    /// let client = gearbox_client::Client::new("a,b,c")?;
    /// let s = client.server_for("order-17");
    /// assert_eq!(s, client.server_for("order-17"));
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn server_for(&self, unique: impl AsRef<[u8]>) -> ServerAddr {
        let pool = &self.inner.pool;
        pool.addr(unique::server_index(unique.as_ref(), pool.len()))
            .clone()
    }

    /// A job to configure and run; see [`JobBuilder`].
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// let out = client.job("resize", "img.png").high().unique("img.png").run().await?;
    /// # Ok(()) }
    /// ```
    pub fn job(&self, function: impl AsRef<[u8]>, payload: impl Into<Bytes>) -> JobBuilder {
        JobBuilder::new(
            self.clone(),
            Bytes::copy_from_slice(function.as_ref()),
            payload.into(),
        )
    }

    /// An empty [`TaskSet`] for scatter/gather.
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// let parts = client.task_set().with(client.job("count", "a")).with(client.job("count", "b"));
    /// let counts = parts.run().await?;
    /// # Ok(()) }
    /// ```
    pub fn task_set(&self) -> TaskSet {
        TaskSet::new()
    }

    /// Submits a foreground job at normal priority and waits for its result.
    /// [`Error::JobFailed`] on WORK_FAIL, [`Error::JobException`] on WORK_EXCEPTION.
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// let out = client.submit("reverse", "abc").await?;
    /// assert_eq!(&out[..], b"cba");
    /// # Ok(()) }
    /// ```
    pub async fn submit(
        &self,
        function: impl AsRef<[u8]>,
        payload: impl Into<Bytes>,
    ) -> Result<Bytes> {
        self.job(function, payload).run().await
    }

    /// Submits a background job at normal priority; returns its handle.
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// let handle = client.submit_background("send_email", "to=bob").await?;
    /// println!("queued as {}", String::from_utf8_lossy(&handle));
    /// # Ok(()) }
    /// ```
    pub async fn submit_background(
        &self,
        function: impl AsRef<[u8]>,
        payload: impl Into<Bytes>,
    ) -> Result<Bytes> {
        self.job(function, payload).background().await
    }

    /// Asks the servers about a job handle (GET_STATUS). A handle does not say which server
    /// made it, so each reachable server is asked in list order until one knows it; if none
    /// does, the answer has `known: false`. [`Error::Unreachable`] if no server answered.
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// let h = client.submit_background("slow", "x").await?;
    /// assert!(client.job_status(&h).await?.known);
    /// # Ok(()) }
    /// ```
    pub async fn job_status(&self, handle: impl AsRef<[u8]>) -> Result<JobStatus> {
        let handle = Bytes::copy_from_slice(handle.as_ref());
        let pool = &self.inner.pool;
        let mut answer = None;
        let mut last_error = None;
        for i in 0..pool.len() {
            let reply = match pool.conn_to(i).await {
                Ok(conn) => conn
                    .call(Request::GetStatus {
                        handle: handle.clone(),
                    })
                    .await
                    .map(|r| (r, conn)),
                Err(e) => Err(e),
            };
            match reply {
                Ok((
                    Response::StatusRes {
                        known,
                        running,
                        numerator,
                        denominator,
                        ..
                    },
                    _,
                )) => {
                    let st = JobStatus {
                        handle: handle.clone(),
                        known,
                        running,
                        numerator: status::number(&numerator),
                        denominator: status::number(&denominator),
                    };
                    if known {
                        return Ok(st);
                    }
                    answer = Some(st);
                }
                Ok((other, conn)) => last_error = Some(conn.unexpected(&other)),
                Err(e) => last_error = Some(e),
            }
        }
        match (answer, last_error) {
            (Some(st), _) => Ok(st),
            (None, Some(e)) => Err(e),
            (None, None) => Err(Error::NoServers),
        }
    }

    /// Asks the server a unique id hashes to (or the next reachable one) about it
    /// (GET_STATUS_UNIQUE).
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// client.job("render", "p1").unique("p1").background().await?;
    /// let st = client.unique_status("p1").await?;
    /// assert!(st.known);
    /// # Ok(()) }
    /// ```
    pub async fn unique_status(&self, unique: impl AsRef<[u8]>) -> Result<UniqueStatus> {
        let unique = Bytes::copy_from_slice(unique.as_ref());
        let pool = &self.inner.pool;
        let conn = pool
            .conn_from(unique::server_index(&unique, pool.len()))
            .await?;
        let req = Request::GetStatusUnique {
            unique: unique.clone(),
        };
        match conn.call(req).await? {
            Response::StatusResUnique {
                known,
                running,
                numerator,
                denominator,
                client_count,
                ..
            } => Ok(UniqueStatus {
                unique,
                known,
                running,
                numerator: status::number(&numerator),
                denominator: status::number(&denominator),
                client_count,
            }),
            other => Err(conn.unexpected(&other)),
        }
    }

    /// Sends ECHO_REQ to the first reachable server and returns what it echoed: a cheap
    /// "is a server there" check.
    ///
    /// ```no_run
    /// # async fn f(client: gearbox_client::Client) -> gearbox_client::Result<()> {
    /// assert_eq!(&client.echo("ping").await?[..], b"ping");
    /// # Ok(()) }
    /// ```
    pub async fn echo(&self, data: impl Into<Bytes>) -> Result<Bytes> {
        let conn = self.inner.pool.conn_from(0).await?;
        match conn.call(Request::EchoReq { data: data.into() }).await? {
            Response::EchoRes { data } => Ok(data),
            other => Err(conn.unexpected(&other)),
        }
    }
}

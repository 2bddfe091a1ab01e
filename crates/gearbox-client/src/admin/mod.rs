//! The admin text protocol: typed answers from one server ([`Admin`]), and the status of a
//! whole server list at once ([`cluster_status`]).
//!
//! Works with gearbox and gearmand alike (and any server speaking gearmand's admin
//! protocol). Every command is one line sent with `\r\n`; the reply is read exactly: a
//! listing up to its `.` line, anything else as one line. An `ERR` reply becomes
//! [`Error::Admin`] holding the line (see [`Error::admin_code`]).
//!
//! ```no_run
//! # async fn f() -> gearbox_client::Result<()> {
//! use gearbox_client::admin::Admin;
//! let mut admin = Admin::connect("localhost:4730".parse()?).await?;
//! for s in admin.status().await? {
//!     println!("{:?}: {} queued, {} running, {} workers", s.function, s.queued(), s.running, s.workers);
//! }
//! # Ok(()) }
//! ```
//!
//! - `cluster`: [`cluster_status`], `status` from a whole server list at once.
//! - [`reply`]: the typed records ([`FunctionStatus`], [`PriorityStatus`], [`WorkerInfo`],
//!   [`JobInfo`]), [`MaxQueue`], and the parsers.
//! - [`cluster_reply`]: the typed records of the cluster commands ([`ClusterFunctionStatus`],
//!   [`ClusterMemberStatus`]).

mod cluster;
pub mod cluster_reply;
pub mod reply;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gearbox_proto::{parse_admin_line, AdminCommand};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub use self::cluster::{cluster_status, cluster_status_with, cluster_status_with_timeout};
pub use self::cluster_reply::{ClusterFunctionStatus, ClusterMemberStatus};
use self::reply::{err_text, is_ok, listing_lines, ok_text, BadLine};
pub use self::reply::{FunctionStatus, JobInfo, MaxQueue, PriorityStatus, WorkerInfo};
use crate::transport::{self, ReadHalf, WriteHalf};
use crate::{Error, Result, ServerAddr, TlsConfig};

/// Default limit for connecting, and for each command's whole round trip.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest reply accepted (a listing of that size means something is wrong).
pub const MAX_REPLY: usize = 64 * 1024 * 1024;

/// An admin connection to one server. Commands run one at a time (`&mut self`).
///
/// A command that times out or loses the connection leaves it unusable: later commands fail
/// with [`Error::Disconnected`]; connect again.
#[derive(Debug)]
pub struct Admin {
    addr: ServerAddr,
    reader: BufReader<ReadHalf>,
    writer: WriteHalf,
    timeout: Duration,
    /// Why the connection can no longer be used, once it cannot.
    broken: Option<String>,
}

impl Error {
    /// The first word after `ERR` of an admin error reply (`UNKNOWN_JOB`,
    /// `INVALID_ARGUMENTS`, ...; for gearmand's plain-text `ERR function not found`, the word
    /// `function`), or `None` for any other error.
    ///
    /// ```
    /// use gearbox_client::Error;
    /// let e = Error::Admin { command: "cancel job H:x:1".into(), reply: "ERR UNKNOWN_JOB".into() };
    /// assert_eq!(e.admin_code(), Some("UNKNOWN_JOB"));
    /// ```
    pub fn admin_code(&self) -> Option<&str> {
        match self {
            Error::Admin { reply, .. } => {
                let rest = reply.strip_prefix("ERR ")?;
                Some(rest.split(' ').next().unwrap_or(rest))
            }
            _ => None,
        }
    }
}

impl Admin {
    /// Connects within [`DEFAULT_TIMEOUT`].
    pub async fn connect(addr: ServerAddr) -> Result<Admin> {
        Admin::connect_with_timeout(addr, DEFAULT_TIMEOUT).await
    }

    /// Connects within `timeout`, which then also bounds each command.
    pub async fn connect_with_timeout(addr: ServerAddr, timeout: Duration) -> Result<Admin> {
        Admin::connect_with(addr, timeout, None).await
    }

    /// Connects within `timeout` (which then also bounds each command), over TLS when `tls`
    /// is given. A failed handshake is [`Error::Tls`].
    ///
    /// ```no_run
    /// # async fn f() -> gearbox_client::Result<()> {
    /// use gearbox_client::{admin::{Admin, DEFAULT_TIMEOUT}, TlsConfig};
    /// let tls = TlsConfig::builder().ca_file("ca.pem").build()?;
    /// let mut admin = Admin::connect_with("gear1:4730".parse()?, DEFAULT_TIMEOUT, Some(&tls)).await?;
    /// println!("{}", admin.version().await?);
    /// # Ok(()) }
    /// ```
    pub async fn connect_with(
        addr: ServerAddr,
        timeout: Duration,
        tls: Option<&TlsConfig>,
    ) -> Result<Admin> {
        let stream = transport::connect(&addr, tls, timeout).await?;
        let (read, writer) = stream.into_split();
        Ok(Admin {
            addr,
            reader: BufReader::new(read),
            writer,
            timeout,
            broken: None,
        })
    }

    /// The server this connection talks to.
    pub fn server(&self) -> &ServerAddr {
        &self.addr
    }

    /// Sends one command line and returns the reply exactly as received, line endings
    /// included: for `status`, `prioritystatus`, `workers`, `show jobs` and `show unique
    /// jobs` the whole listing up to and including `.\n` (or the `ERR` line that came
    /// instead), for anything else one line. A trailing `\n` or `\r\n` on `line` is dropped;
    /// `\r\n` is always sent. `ERR` replies are returned, not turned into errors.
    ///
    /// ```no_run
    /// # async fn f(mut admin: gearbox_client::admin::Admin) -> gearbox_client::Result<()> {
    /// assert_eq!(&admin.raw("version").await?[..3], b"OK ");
    /// # Ok(()) }
    /// ```
    pub async fn raw(&mut self, line: impl AsRef<[u8]>) -> Result<Bytes> {
        let line = line.as_ref();
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.contains(&b'\n') {
            return Err(Error::InvalidArgument(
                "an admin command is one line: it may not contain a newline".into(),
            ));
        }
        let listing = matches!(
            parse_admin_line(Bytes::copy_from_slice(line)),
            AdminCommand::Status
                | AdminCommand::PriorityStatus
                | AdminCommand::Workers
                | AdminCommand::ShowJobs
                | AdminCommand::ShowUniqueJobs
                | AdminCommand::Metrics
                | AdminCommand::MetricsTotals
                | AdminCommand::ClusterStatus
                | AdminCommand::ClusterMembers
        );
        if let Some(why) = &self.broken {
            return Err(self.lost(why.clone()));
        }
        let mut out = Vec::with_capacity(line.len() + 2);
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        let result = tokio::time::timeout(self.timeout, self.round_trip(&out, listing)).await;
        let reason = match result {
            Ok(Ok(reply)) => return Ok(reply),
            Ok(Err(e)) => e,
            Err(_) => format!("no complete reply within {:?}", self.timeout),
        };
        self.broken = Some(reason.clone());
        Err(self.lost(reason))
    }

    fn lost(&self, reason: String) -> Error {
        Error::Disconnected {
            server: self.addr.to_string(),
            reason,
        }
    }

    async fn round_trip(&mut self, out: &[u8], listing: bool) -> Result<Bytes, String> {
        self.writer
            .write_all(out)
            .await
            .map_err(|e| format!("write failed: {e}"))?;
        // Free on TCP; TLS may hold written records until it.
        self.writer
            .flush()
            .await
            .map_err(|e| format!("write failed: {e}"))?;
        let mut reply = BytesMut::new();
        loop {
            let start = reply.len();
            self.read_line(&mut reply).await?;
            let line = &reply[start..];
            let done = !listing
                || line == b".\n"
                || (start == 0 && line.starts_with(b"ERR ") && line.ends_with(b"\r\n"));
            if done {
                return Ok(reply.freeze());
            }
        }
    }

    /// Appends one line, `\n` included, to `buf`.
    async fn read_line(&mut self, buf: &mut BytesMut) -> Result<(), String> {
        loop {
            let available = self
                .reader
                .fill_buf()
                .await
                .map_err(|e| format!("read failed: {e}"))?;
            if available.is_empty() {
                return Err("the server closed the connection in the middle of a reply".into());
            }
            let (take, complete) = match memchr(available) {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            if buf.len() + take > MAX_REPLY {
                return Err(format!("reply larger than {MAX_REPLY} bytes"));
            }
            buf.extend_from_slice(&available[..take]);
            self.reader.consume(take);
            if complete {
                return Ok(());
            }
        }
    }

    /// [`Admin::raw`], with an `ERR` reply turned into [`Error::Admin`].
    async fn command(&mut self, line: &str) -> Result<Bytes> {
        let reply = self.raw(line).await?;
        if let Some(text) = err_text(&reply) {
            return Err(Error::Admin {
                command: line.to_string(),
                reply: format!("ERR {}", String::from_utf8_lossy(text)),
            });
        }
        Ok(reply)
    }

    fn unexpected(command: &str, e: BadLine) -> Error {
        Error::Admin {
            command: command.to_string(),
            reply: format!("unexpected reply line {:?}: {}", e.line, e.why),
        }
    }

    async fn listing<T>(
        &mut self,
        command: &str,
        parse: fn(&[u8]) -> Result<T, BadLine>,
    ) -> Result<Vec<T>> {
        let reply = self.command(command).await?;
        listing_lines(&reply)
            .map(|l| parse(l).map_err(|e| Admin::unexpected(command, e)))
            .collect()
    }

    async fn expect_ok(&mut self, command: &str) -> Result<()> {
        let reply = self.command(command).await?;
        if is_ok(&reply) {
            Ok(())
        } else {
            Err(Admin::unexpected(
                command,
                reply_line(&reply, "expected OK"),
            ))
        }
    }

    async fn ok_value(&mut self, command: &str) -> Result<String> {
        let reply = self.command(command).await?;
        match ok_text(&reply) {
            Some(text) => Ok(String::from_utf8_lossy(text).into_owned()),
            None => Err(Admin::unexpected(
                command,
                reply_line(&reply, "expected OK <value>"),
            )),
        }
    }

    /// `status`: every function the server knows, with its total, running and workers.
    pub async fn status(&mut self) -> Result<Vec<FunctionStatus>> {
        self.listing("status", reply::status_line).await
    }

    /// `prioritystatus`: queued jobs per priority, and workers, per function.
    pub async fn priority_status(&mut self) -> Result<Vec<PriorityStatus>> {
        self.listing("prioritystatus", reply::priority_line).await
    }

    /// `workers`: every connection (workers and clients, this one included).
    pub async fn workers(&mut self) -> Result<Vec<WorkerInfo>> {
        self.listing("workers", reply::worker_line).await
    }

    /// `cluster status` (gearbox in cluster mode): per function the cluster-wide free jobs
    /// (in the shared queue, held by no member) and the queued and running jobs and workers
    /// summed over the live members. A server not in a cluster answers with
    /// [`Error::Admin`] (`ERR NOT_CLUSTER ...`).
    pub async fn cluster_status(&mut self) -> Result<Vec<ClusterFunctionStatus>> {
        self.listing("cluster status", cluster_reply::cluster_status_line)
            .await
    }

    /// `cluster members` (gearbox in cluster mode): every live member, the answering server
    /// marked ([`ClusterMemberStatus::this_server`]). A server not in a cluster answers with
    /// [`Error::Admin`] (`ERR NOT_CLUSTER ...`).
    pub async fn cluster_members(&mut self) -> Result<Vec<ClusterMemberStatus>> {
        self.listing("cluster members", cluster_reply::cluster_member_line)
            .await
    }

    /// `show jobs`: every job the server holds.
    pub async fn show_jobs(&mut self) -> Result<Vec<JobInfo>> {
        self.listing("show jobs", reply::job_line).await
    }

    /// `show unique jobs`: the unique id of every job (empty ones included).
    pub async fn show_unique_jobs(&mut self) -> Result<Vec<Bytes>> {
        self.listing("show unique jobs", |l| Ok(Bytes::copy_from_slice(l)))
            .await
    }

    /// `metrics` (gearbox's own; gearmand answers `ERR`, an [`Error::Admin`]): the server's
    /// gauges and counters in Prometheus' text format, as `GET /metrics` serves them, without
    /// the closing `.` line.
    pub async fn metrics(&mut self) -> Result<String> {
        let reply = self.command("metrics").await?;
        let body = reply.strip_suffix(b".\n").unwrap_or(&reply);
        Ok(String::from_utf8_lossy(body).into_owned())
    }

    /// `version`: the server's version string (`1.1.20+ds` for Debian's gearmand).
    pub async fn version(&mut self) -> Result<String> {
        self.ok_value("version").await
    }

    /// `getpid`: the server's process id.
    pub async fn getpid(&mut self) -> Result<u32> {
        let text = self.ok_value("getpid").await?;
        text.parse().map_err(|_| Error::Admin {
            command: "getpid".into(),
            reply: format!("unexpected reply {text:?}: not a process id"),
        })
    }

    /// `verbose`: the server's log level name (`ERROR`, `INFO`, ...).
    pub async fn verbose(&mut self) -> Result<String> {
        self.ok_value("verbose").await
    }

    /// `maxqueue FUNCTION [N | HIGH NORMAL LOW]`: limits a function's queue.
    ///
    /// ```no_run
    /// # async fn f(mut admin: gearbox_client::admin::Admin) -> gearbox_client::Result<()> {
    /// use gearbox_client::admin::MaxQueue;
    /// admin.maxqueue("resize", MaxQueue::All(1000)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn maxqueue(&mut self, function: impl AsRef<[u8]>, limit: MaxQueue) -> Result<()> {
        let f = word("function", function.as_ref())?;
        self.expect_ok(&format!("maxqueue {f}{}", limit.args()))
            .await
    }

    /// `cancel job HANDLE`. A job the server does not know gives [`Error::Admin`] with
    /// [`Error::admin_code`] `UNKNOWN_JOB`.
    pub async fn cancel(&mut self, handle: impl AsRef<[u8]>) -> Result<()> {
        let h = word("job handle", handle.as_ref())?;
        self.expect_ok(&format!("cancel job {h}")).await
    }

    /// `create function NAME`.
    pub async fn create_function(&mut self, name: impl AsRef<[u8]>) -> Result<()> {
        let f = word("function", name.as_ref())?;
        self.expect_ok(&format!("create function {f}")).await
    }

    /// `drop function NAME`; refused while workers or running jobs exist.
    pub async fn drop_function(&mut self, name: impl AsRef<[u8]>) -> Result<()> {
        let f = word("function", name.as_ref())?;
        self.expect_ok(&format!("drop function {f}")).await
    }

    /// `shutdown [graceful]`: gearbox (from a loopback peer) and the Perl server stop;
    /// gearmand 1.1 has no such command and answers `ERR UNKNOWN_COMMAND` (use signals).
    pub async fn shutdown(&mut self, graceful: bool) -> Result<()> {
        let line = if graceful {
            "shutdown graceful"
        } else {
            "shutdown"
        };
        self.expect_ok(line).await
    }
}

/// A name that fits in one admin word: not empty, no space, CR or LF, valid UTF-8.
fn word<'a>(what: &str, name: &'a [u8]) -> Result<&'a str> {
    let s = std::str::from_utf8(name)
        .map_err(|_| Error::InvalidArgument(format!("{what} {name:?} is not UTF-8")))?;
    if s.is_empty() || s.contains([' ', '\r', '\n']) {
        return Err(Error::InvalidArgument(format!(
            "{what} {s:?} cannot be sent in an admin command: it must be non-empty, \
             without spaces or line breaks"
        )));
    }
    Ok(s)
}

fn reply_line(reply: &[u8], why: &'static str) -> BadLine {
    BadLine {
        line: String::from_utf8_lossy(reply).into_owned(),
        why,
    }
}

fn memchr(b: &[u8]) -> Option<usize> {
    b.iter().position(|c| *c == b'\n')
}

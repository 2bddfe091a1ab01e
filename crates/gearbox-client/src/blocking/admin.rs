//! The blocking admin connection: the async [`crate::admin::Admin`] on a private
//! current-thread runtime.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::runtime::Runtime;

use crate::admin::{self, FunctionStatus, JobInfo, MaxQueue, PriorityStatus, WorkerInfo};
use crate::{Error, Result, ServerAddr};

/// A blocking admin connection to one server, for scripts without an async runtime. Each
/// call waits for its reply. Do not use it inside an async runtime (it panics there).
///
/// ```no_run
/// use gearbox_client::blocking::Admin;
/// let mut admin = Admin::connect("localhost:4730".parse()?)?;
/// for job in admin.show_jobs()? {
///     println!("{:?} retries={}", job.handle, job.retries);
/// }
/// # Ok::<(), gearbox_client::Error>(())
/// ```
#[derive(Debug)]
pub struct Admin {
    rt: Runtime,
    inner: admin::Admin,
}

fn runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

impl Admin {
    /// Connects within [`admin::DEFAULT_TIMEOUT`].
    pub fn connect(addr: ServerAddr) -> Result<Admin> {
        Admin::connect_with_timeout(addr, admin::DEFAULT_TIMEOUT)
    }

    /// Connects within `timeout`, which then also bounds each command.
    pub fn connect_with_timeout(addr: ServerAddr, timeout: Duration) -> Result<Admin> {
        let rt = runtime()?;
        let inner = rt.block_on(admin::Admin::connect_with_timeout(addr, timeout))?;
        Ok(Admin { rt, inner })
    }

    /// See [`admin::Admin::connect_with`]: over TLS when `tls` is given.
    pub fn connect_with(
        addr: ServerAddr,
        timeout: Duration,
        tls: Option<&crate::TlsConfig>,
    ) -> Result<Admin> {
        let rt = runtime()?;
        let inner = rt.block_on(admin::Admin::connect_with(addr, timeout, tls))?;
        Ok(Admin { rt, inner })
    }

    /// The server this connection talks to.
    pub fn server(&self) -> &ServerAddr {
        self.inner.server()
    }

    /// See [`admin::Admin::raw`].
    pub fn raw(&mut self, line: impl AsRef<[u8]>) -> Result<Bytes> {
        self.rt.block_on(self.inner.raw(line))
    }

    /// See [`admin::Admin::status`].
    pub fn status(&mut self) -> Result<Vec<FunctionStatus>> {
        self.rt.block_on(self.inner.status())
    }

    /// See [`admin::Admin::priority_status`].
    pub fn priority_status(&mut self) -> Result<Vec<PriorityStatus>> {
        self.rt.block_on(self.inner.priority_status())
    }

    /// See [`admin::Admin::workers`].
    pub fn workers(&mut self) -> Result<Vec<WorkerInfo>> {
        self.rt.block_on(self.inner.workers())
    }

    /// See [`admin::Admin::show_jobs`].
    pub fn show_jobs(&mut self) -> Result<Vec<JobInfo>> {
        self.rt.block_on(self.inner.show_jobs())
    }

    /// See [`admin::Admin::show_unique_jobs`].
    pub fn show_unique_jobs(&mut self) -> Result<Vec<Bytes>> {
        self.rt.block_on(self.inner.show_unique_jobs())
    }

    /// See [`admin::Admin::version`].
    pub fn version(&mut self) -> Result<String> {
        self.rt.block_on(self.inner.version())
    }

    /// See [`admin::Admin::getpid`].
    pub fn getpid(&mut self) -> Result<u32> {
        self.rt.block_on(self.inner.getpid())
    }

    /// See [`admin::Admin::verbose`].
    pub fn verbose(&mut self) -> Result<String> {
        self.rt.block_on(self.inner.verbose())
    }

    /// See [`admin::Admin::maxqueue`].
    pub fn maxqueue(&mut self, function: impl AsRef<[u8]>, limit: MaxQueue) -> Result<()> {
        self.rt.block_on(self.inner.maxqueue(function, limit))
    }

    /// See [`admin::Admin::cancel`].
    pub fn cancel(&mut self, handle: impl AsRef<[u8]>) -> Result<()> {
        self.rt.block_on(self.inner.cancel(handle))
    }

    /// See [`admin::Admin::create_function`].
    pub fn create_function(&mut self, name: impl AsRef<[u8]>) -> Result<()> {
        self.rt.block_on(self.inner.create_function(name))
    }

    /// See [`admin::Admin::drop_function`].
    pub fn drop_function(&mut self, name: impl AsRef<[u8]>) -> Result<()> {
        self.rt.block_on(self.inner.drop_function(name))
    }

    /// See [`admin::Admin::shutdown`].
    pub fn shutdown(&mut self, graceful: bool) -> Result<()> {
        self.rt.block_on(self.inner.shutdown(graceful))
    }
}

/// Blocking [`admin::cluster_status`]: `status` from every server at once.
///
/// ```no_run
/// let servers = gearbox_client::parse_servers("gear1,gear2")?;
/// let all = gearbox_client::blocking::admin::cluster_status(&servers)?;
/// # Ok::<(), gearbox_client::Error>(())
/// ```
pub fn cluster_status(
    servers: &[ServerAddr],
) -> Result<BTreeMap<ServerAddr, Result<Vec<FunctionStatus>>>> {
    Ok(runtime()?.block_on(admin::cluster_status(servers)))
}

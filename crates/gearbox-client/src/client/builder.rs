//! [`ClientBuilder`]: servers and connection settings, with documented defaults.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{Client, Inner};
use crate::conn::{ConnOptions, Pool};
use crate::{parse_servers, servers::servers_from_env, Error, Result, ServerAddr, TlsConfig};

/// Default limit for opening a connection (TCP connect plus handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default first back-off after a server could not be reached.
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Default longest back-off.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// gearmand's limit for a client id.
const MAX_CLIENT_ID: usize = 254;

/// Configures a [`Client`]. Nothing is opened by [`ClientBuilder::build`]: each server's
/// connection opens on first use.
///
/// | setting | default |
/// |---|---|
/// | servers | `GEARMAN_SERVERS` when no server is given |
/// | client id | none (no SET_CLIENT_ID) |
/// | exceptions | on: `OPTION_REQ exceptions` on every connection, so WORK_EXCEPTION arrives |
/// | connect timeout | [`DEFAULT_CONNECT_TIMEOUT`] (5 s) |
/// | back-off | [`DEFAULT_BACKOFF_MIN`] (100 ms) doubling to [`DEFAULT_BACKOFF_MAX`] (10 s) |
/// | TLS | off: plain TCP ([`ClientBuilder::tls`]) |
///
/// ```
/// use std::time::Duration;
/// let client = gearbox_client::Client::builder()
///     .servers("gear1:4730,gear2")
///     .client_id("billing")
///     .connect_timeout(Duration::from_secs(2))
///     .build()?;
/// # Ok::<(), gearbox_client::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    servers: Vec<ServerAddr>,
    bad_list: Option<String>,
    client_id: Option<Bytes>,
    exceptions: bool,
    connect_timeout: Duration,
    backoff: (Duration, Duration),
    tls: Option<TlsConfig>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            servers: Vec::new(),
            bad_list: None,
            client_id: None,
            exceptions: true,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            backoff: (DEFAULT_BACKOFF_MIN, DEFAULT_BACKOFF_MAX),
            tls: None,
        }
    }
}

impl ClientBuilder {
    /// Adds the servers of a `host[:port],host[:port]` list (default port 4730). A list that
    /// does not parse makes [`ClientBuilder::build`] fail.
    ///
    /// ```
    /// let b = gearbox_client::Client::builder().servers("127.0.0.1:4730,[::1]");
    /// ```
    pub fn servers(mut self, list: &str) -> Self {
        match parse_servers(list) {
            Ok(mut l) => self.servers.append(&mut l),
            Err(_) => self.bad_list = Some(list.to_string()),
        }
        self
    }

    /// Adds one server.
    ///
    /// ```
    /// use gearbox_client::{Client, ServerAddr};
    /// let b = Client::builder().server(ServerAddr::new("localhost", 4730));
    /// ```
    pub fn server(mut self, addr: ServerAddr) -> Self {
        self.servers.push(addr);
        self
    }

    /// Sends SET_CLIENT_ID with `id` on every connection (shown by the admin `workers`
    /// command). At most 254 bytes.
    ///
    /// ```
    /// let b = gearbox_client::Client::builder().client_id("web-frontend-3");
    /// ```
    pub fn client_id(mut self, id: impl AsRef<[u8]>) -> Self {
        self.client_id = Some(Bytes::copy_from_slice(id.as_ref()));
        self
    }

    /// Whether to ask each server for WORK_EXCEPTION packets (`OPTION_REQ exceptions`).
    /// Default true; when false, a worker's exception reaches this client as a plain failure
    /// ([`Error::JobFailed`] instead of [`Error::JobException`]).
    ///
    /// ```
    /// let b = gearbox_client::Client::builder().exceptions(false);
    /// ```
    pub fn exceptions(mut self, on: bool) -> Self {
        self.exceptions = on;
        self
    }

    /// Limit for opening one connection (TCP connect, TLS handshake when configured, and the
    /// option handshake). It also
    /// bounds how long a call waits for a server's back-off to end when every server is in
    /// back-off. Default 5 s.
    ///
    /// ```
    /// let b = gearbox_client::Client::builder().connect_timeout(std::time::Duration::from_secs(1));
    /// ```
    pub fn connect_timeout(mut self, limit: std::time::Duration) -> Self {
        self.connect_timeout = limit;
        self
    }

    /// After a failed connect a server is skipped for `min`, doubling after each further
    /// failure up to `max`; a successful connect resets it. Default 100 ms to 10 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = gearbox_client::Client::builder()
    ///     .reconnect_backoff(Duration::from_millis(50), Duration::from_secs(5));
    /// ```
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = (min, max);
        self
    }

    /// Connects to every server over TLS with these settings (CA, client certificate,
    /// server name). A failed handshake is [`Error::Tls`]; like any failed connect, the
    /// server then goes into back-off and the next one is tried.
    ///
    /// ```no_run
    /// use gearbox_client::{Client, TlsConfig};
    /// let tls = TlsConfig::builder().ca_file("ca.pem").build()?;
    /// let client = Client::builder().servers("gear1:4730").tls(tls).build()?;
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Checks the settings and makes the client. No connection is opened here.
    ///
    /// Fails with [`Error::NoServers`] when no server was given and `GEARMAN_SERVERS` is
    /// unset, and with [`Error::InvalidArgument`] for a bad list or setting.
    ///
    /// ```
    /// let client = gearbox_client::Client::builder().servers("localhost").build()?;
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn build(self) -> Result<Client> {
        if let Some(list) = self.bad_list {
            // Re-parse for the precise message.
            parse_servers(&list)?;
        }
        let servers = if self.servers.is_empty() {
            servers_from_env().ok_or(Error::NoServers)??
        } else {
            self.servers
        };
        if let Some(id) = &self.client_id {
            if id.is_empty() || id.len() > MAX_CLIENT_ID {
                return Err(Error::InvalidArgument(format!(
                    "client id must be 1 to {MAX_CLIENT_ID} bytes, got {}",
                    id.len()
                )));
            }
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::InvalidArgument(
                "connect_timeout must be more than zero".into(),
            ));
        }
        let (backoff_min, backoff_max) = self.backoff;
        if backoff_min > backoff_max {
            return Err(Error::InvalidArgument(format!(
                "reconnect_backoff: min ({backoff_min:?}) is larger than max ({backoff_max:?})"
            )));
        }
        let opts = ConnOptions {
            client_id: self.client_id,
            exceptions: self.exceptions,
            connect_timeout: self.connect_timeout,
            backoff_min,
            backoff_max,
            tls: self.tls,
        };
        tracing::debug!(servers = servers.len(), "client built");
        Ok(Client {
            inner: Arc::new(Inner {
                pool: Pool::new(servers, opts),
            }),
        })
    }

    /// Builds a [`crate::blocking::Client`] for code without an async runtime.
    ///
    /// ```no_run
    /// let client = gearbox_client::Client::builder().servers("localhost").build_blocking()?;
    /// let out = client.submit("reverse", "hello")?;
    /// # Ok::<(), gearbox_client::Error>(())
    /// ```
    pub fn build_blocking(self) -> Result<crate::blocking::Client> {
        crate::blocking::Client::from_async(self.build()?)
    }
}

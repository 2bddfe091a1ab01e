//! A MySQL/MariaDB [`Store`](gearbox_store::Store) for gearbox: `gearboxd -q mysql`.
//!
//! [`MysqlStore`] keeps background jobs in one InnoDB table (default [`DEFAULT_TABLE`],
//! created if missing from the embedded migration `migrations/0001_create_jobs.sql`) and
//! follows the design of gearbox's PostgreSQL store:
//!
//! - **One transaction per batch.** The store runs on the shared [`gearbox_store::driver`]:
//!   one task owns the connection and serves requests in order. A batch is written as one
//!   `DELETE ... WHERE handle IN (...)` and one multi-row `INSERT ... ON DUPLICATE KEY
//!   UPDATE` carrying its [`gearbox_store::NetEffect`] (split into chunks only past 2,000
//!   rows or 4 MiB), and the caller is answered after `COMMIT`.
//! - **Binary-safe.** Handle, function, unique id, payload and reducer are binary columns
//!   (`VARBINARY`/`BLOB`), written as bound parameters: NUL bytes and non-UTF-8 survive.
//!   Handles and unique ids are limited to 255 bytes and function names to 512; a batch with
//!   a longer one fails at once with [`StoreError::InvalidRow`], writing nothing.
//! - **Outages.** When the server goes away, commits fail with [`StoreError::Unavailable`]
//!   (never a false acknowledgement) while the driver reconnects with exponential back-off
//!   (100 ms doubling to 2 s), also when idle. The outage is logged once when it starts and
//!   once when it ends.
//!
//! # Durability
//!
//! MySQL decides flushing globally (`innodb_flush_log_at_trx_commit`), not per session, so
//! the [`Durability`] mode cannot change it: with `fsync` the store checks at each connection
//! that the server flushes at every commit (the default, `1`) and logs a warning otherwise.
//! `normal` and `none` accept whatever the server does.
//!
//! # Layout
//!
//! - this file: [`MysqlStore`], [`MysqlOptions`] and connecting; its
//!   [`Store`](gearbox_store::Store) implementation is the driver's
//!   ([`gearbox_store::driver::DriverStore`]).
//! - `backend`: the [`gearbox_store::driver::Backend`]: the batch transaction, loading, the
//!   gearmand import.
//! - `sql`: the SQL text, row decoding and error classification.
//!
//! # TLS
//!
//! [`MysqlOptions::ssl_mode`] is MySQL's `--ssl-mode` ([`MysqlSslMode`]): `DISABLED` (the
//! default), `REQUIRED` (encrypted, any certificate), `VERIFY_CA` (signed by the CA file) or
//! `VERIFY_IDENTITY` (and naming the host). [`MysqlOptions::ssl`] holds the CA file (without
//! one, the verifying modes trust the Mozilla roots that mysql_async bundles) and the client
//! certificate and key for a user created `REQUIRE X509`. rustls with the ring provider.

#![warn(missing_docs)]

mod backend;
mod sql;

use std::sync::Arc;
use std::time::Duration;

use gearbox_store::driver::{Backoff, Driver, DriverStore};
use gearbox_store::sql::SqlTable;
use gearbox_store::tls::read_pem;
use gearbox_store::{Durability, StoreError};
use mysql_async::{ClientIdentity, Opts, OptsBuilder, SslOpts};

pub use gearbox_store::tls::{MysqlSslMode, TlsFiles};

use backend::Mysql;

pub use gearbox_store::sql::DEFAULT_TABLE;

/// The table gearmand's MySQL queue plugin uses by default.
pub const DEFAULT_GEARMAND_TABLE: &str = "gearman_queue";

/// The port used when none is given.
pub const DEFAULT_PORT: u16 = 3306;

/// How long one connection attempt may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the server is, as gearmand's `--mysql-host/-port/-user/-password/-db` give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlOptions {
    /// Host name or IP address (`--mysql-host`, default `localhost`).
    pub host: String,
    /// TCP port (`--mysql-port`, default 3306).
    pub port: u16,
    /// User name (`--mysql-user`).
    pub user: Option<String>,
    /// Password (`--mysql-password`); never logged.
    pub password: Option<String>,
    /// Database (`--mysql-db`).
    pub db: Option<String>,
    /// TLS or not, and how much of the server's certificate is checked.
    pub ssl_mode: MysqlSslMode,
    /// The CA file and the client certificate and key (used with TLS only).
    pub ssl: TlsFiles,
}

impl Default for MysqlOptions {
    fn default() -> Self {
        MysqlOptions {
            host: "localhost".into(),
            port: DEFAULT_PORT,
            user: None,
            password: None,
            db: None,
            ssl_mode: MysqlSslMode::Disabled,
            ssl: TlsFiles::default(),
        }
    }
}

impl MysqlOptions {
    /// Parses `mysql://user:password@host:port/db` (percent-encoded where needed).
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let opts = Opts::from_url(url).map_err(|e| StoreError::Backend {
            location: "mysql".into(),
            source: Arc::new(e),
        })?;
        Ok(MysqlOptions {
            host: opts.ip_or_hostname().to_owned(),
            port: opts.tcp_port(),
            user: opts.user().map(str::to_owned),
            password: opts.pass().map(str::to_owned),
            db: opts.db_name().map(str::to_owned),
            ssl_mode: MysqlSslMode::Disabled,
            ssl: TlsFiles::default(),
        })
    }

    /// `mysql://user@host:port/db`, without password, for logs and errors (with
    /// `?ssl-mode=...` when TLS is on).
    pub fn location(&self) -> String {
        let user = self.user.as_deref().unwrap_or("");
        let at = if user.is_empty() { "" } else { "@" };
        let db = self.db.as_deref().unwrap_or("");
        let tls = match self.ssl_mode {
            MysqlSslMode::Disabled => String::new(),
            mode => format!("?ssl-mode={mode}"),
        };
        format!("mysql://{user}{at}{}:{}/{db}{tls}", self.host, self.port)
    }

    /// Reads the TLS files once, so that a wrong one is reported by name at start-up.
    fn check_tls_files(&self, location: &str) -> Result<(), StoreError> {
        if self.ssl_mode == MysqlSslMode::Disabled {
            return Ok(());
        }
        let backend = |e: gearbox_store::tls::TlsError| StoreError::Backend {
            location: location.to_owned(),
            source: Arc::new(e),
        };
        let files = [
            (&self.ssl.ca, "CA file"),
            (&self.ssl.cert, "client certificate"),
            (&self.ssl.key, "client key"),
        ];
        for (path, what) in files {
            if let Some(path) = path {
                read_pem(path, what).map_err(backend)?;
            }
        }
        match (&self.ssl.cert, &self.ssl.key) {
            (Some(_), None) => Err(backend(gearbox_store::tls::TlsError::Incomplete("the key"))),
            (None, Some(_)) => Err(backend(gearbox_store::tls::TlsError::Incomplete(
                "the certificate",
            ))),
            _ => Ok(()),
        }
    }

    /// mysql_async's TLS options for [`MysqlOptions::ssl_mode`] and [`MysqlOptions::ssl`].
    fn ssl_opts(&self) -> Option<SslOpts> {
        use gearbox_store::tls::Verify;
        let verify = self.ssl_mode.verify()?;
        let mut ssl = SslOpts::default()
            .with_danger_accept_invalid_certs(verify == Verify::Encrypt)
            .with_danger_skip_domain_validation(verify != Verify::Full);
        if let Some(ca) = &self.ssl.ca {
            ssl = ssl
                .with_root_certs(vec![ca.clone().into()])
                .with_disable_built_in_roots(true);
        }
        if let (Some(cert), Some(key)) = (&self.ssl.cert, &self.ssl.key) {
            ssl = ssl.with_client_identity(Some(ClientIdentity::new(
                cert.clone().into(),
                key.clone().into(),
            )));
        }
        Some(ssl)
    }

    pub(crate) fn driver_opts(&self) -> Opts {
        OptsBuilder::default()
            .ssl_opts(self.ssl_opts())
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(self.user.clone())
            .pass(self.password.clone())
            .db_name(self.db.clone())
            // Stay on the address given: no switch to the server's Unix socket.
            .prefer_socket(false)
            .into()
    }
}

impl std::str::FromStr for MysqlOptions {
    type Err = StoreError;

    fn from_str(url: &str) -> Result<Self, StoreError> {
        MysqlOptions::from_url(url)
    }
}

/// What [`MysqlStore::connect`] accepts: a `mysql://` URL (`&str` or `String`) or
/// [`MysqlOptions`].
pub trait IntoMysqlOptions {
    /// The options, or the error of a URL that cannot be parsed.
    fn into_mysql_options(self) -> Result<MysqlOptions, StoreError>;
}

impl IntoMysqlOptions for MysqlOptions {
    fn into_mysql_options(self) -> Result<MysqlOptions, StoreError> {
        Ok(self)
    }
}

impl IntoMysqlOptions for &MysqlOptions {
    fn into_mysql_options(self) -> Result<MysqlOptions, StoreError> {
        Ok(self.clone())
    }
}

impl IntoMysqlOptions for &str {
    fn into_mysql_options(self) -> Result<MysqlOptions, StoreError> {
        MysqlOptions::from_url(self)
    }
}

impl IntoMysqlOptions for &String {
    fn into_mysql_options(self) -> Result<MysqlOptions, StoreError> {
        MysqlOptions::from_url(self)
    }
}

impl IntoMysqlOptions for String {
    fn into_mysql_options(self) -> Result<MysqlOptions, StoreError> {
        MysqlOptions::from_url(&self)
    }
}

/// A [`Store`](gearbox_store::Store) in a MySQL/MariaDB table, one transaction per batch,
/// with automatic reconnection.
///
/// Requests go to a writer task (spawned on the current tokio runtime) in the order they are
/// made. The task stops when the store is dropped (after serving what was already queued) or
/// closed.
#[derive(Debug)]
pub struct MysqlStore {
    driver: Driver<Mysql>,
}

impl MysqlStore {
    /// Connects to the server (a `mysql://` URL or [`MysqlOptions`]), creates `table` if
    /// missing (use [`DEFAULT_TABLE`] unless configured otherwise) and starts the writer task.
    ///
    /// TLS as [`MysqlOptions::ssl_mode`] says (see the [crate documentation](crate#tls)). The
    /// first connection
    /// must succeed, so that a wrong address, password or table is reported at start-up
    /// ([`StoreError::Unavailable`], [`StoreError::Backend`] or
    /// [`StoreError::SchemaMismatch`]); later losses are handled by reconnecting. Must be
    /// called within a tokio runtime.
    pub async fn connect(
        opts: impl IntoMysqlOptions,
        table: &str,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let opts = opts.into_mysql_options()?;
        let location = opts.location();
        opts.check_tls_files(&location)?;
        let at = SqlTable::new(&location, table, sql::IDENTIFIERS, durability)?;
        let driver = Driver::start(Mysql { opts, at }, location, Backoff::default()).await?;
        Ok(MysqlStore { driver })
    }
}

impl DriverStore for MysqlStore {
    type Backend = Mysql;

    fn driver(&self) -> &Driver<Mysql> {
        &self.driver
    }
}

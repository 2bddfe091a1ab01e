//! The Redis job store for gearbox (`-q redis`).
//!
//! # Layout
//!
//! Every key starts with a prefix, `gearbox:` unless configured otherwise (like gearmand's
//! `--redis-prefix`), so several servers or programs can share one Redis database:
//!
//! - `<prefix>job:<handle>`: one hash per job, with the fields `function`, `unique`,
//!   `priority` (`0` high, `1` normal, `2` low), `data`, `when_to_run` (UNIX seconds, decimal)
//!   and, only when set, `schedule` and `reducer`. Every value is binary-safe (NULs and
//!   non-UTF-8 bytes survive as they are).
//! - `<prefix>jobs`: a sorted set of handles; the score is the job's insertion sequence, so
//!   [`Store::load`](gearbox_store::Store::load) replays jobs in the order they were first persisted.
//! - `<prefix>seq`: the counter the sequence numbers come from (`INCRBY`).
//!
//! # gearmand's queue
//!
//! [`Store::import_gearmand`](gearbox_store::Store::import_gearmand) takes gearmand's key
//! prefix (its `--redis-prefix`, [`GEARMAND_PREFIX`] by default) and moves every job gearmand's
//! Redis queue holds there (`<prefix>-<function>-<unique>`, see the `gearmand` module) into
//! the layout above with new handles, deleting gearmand's keys in the same transactions; keys
//! that are not gearmand's queued jobs are left alone with a warning. See the `import` module
//! for how a crash or a gearmand still running is handled.
//!
//! # Commits
//!
//! The store runs on the shared [`gearbox_store::driver`]: one task owns the connection and
//! serves requests in order. A batch is applied in one `MULTI`/`EXEC` transaction (its
//! writes, then its removals), and the caller is answered once `EXEC` has returned.
//! Persisting a stored handle replaces its fields and keeps its place in the replay order
//! (`ZADD NX`); removing a handle that is not stored is not an error. Applying the same batch
//! twice gives the same state as applying it once, which is what makes the driver's one retry
//! after a dropped connection safe.
//!
//! # Durability
//!
//! `Ok` from [`Store::commit`](gearbox_store::Store::commit) means Redis has executed the transaction. Whether it then
//! survives a crash depends on the Redis server's own settings, which this store cannot
//! enforce:
//!
//! - `appendonly yes` + `appendfsync always`: Redis fsyncs its append-only file before it
//!   answers `EXEC`, so an acknowledged job survives a crash of Redis, of the OS, or a power
//!   loss. **Recommended** for a durable queue (this is [`Durability::Fsync`]).
//! - `appendonly yes` + `appendfsync everysec` (Redis's default once AOF is on): survives a
//!   crash of Redis itself; an OS crash or power loss may lose about the last second.
//! - `appendonly no` (Redis's default): only RDB snapshots, if any; a restart of Redis can
//!   lose every job acknowledged since the last snapshot.
//!
//! At connect time the store reads `CONFIG GET appendonly` and `CONFIG GET appendfsync`, logs
//! a warning when the settings fall short of the recommendation, and reports what it found
//! in [`RedisStore::persistence`]. Servers that disable `CONFIG` are not checked.
//!
//! Inside `MULTI`/`EXEC`, Redis rejects the whole transaction on errors it detects while
//! queueing (out of memory, for example), but a command that fails while executing (a key of
//! the wrong type, written by another program under our prefix) does not undo the others:
//! keep the prefix to gearbox.
//!
//! # Failures
//!
//! The connection is a multiplexed one that the driver replaces on its own: when Redis goes
//! away, commits fail with [`StoreError::Unavailable`] at once (no caller waits for a
//! reconnect), and the driver reconnects in the background with exponential back-off (from
//! 50 ms up to [`RedisOptions::max_backoff`]). The outage is logged once when it starts and
//! once when the store is connected again. A commit that fails may or may not have been
//! applied: it was not acknowledged, so at worst the job runs once after a replay although
//! its client got an error.

//!
//! # TLS
//!
//! With [`RedisOptions::tls`] set, the store connects over TLS (what a `rediss://` URL
//! means): rustls with the ring provider, the server's certificate checked against the CA
//! file (or the system's roots without one) and the host name; a client certificate is
//! presented when its certificate and key files are given (Redis's `tls-auth-clients`).

#![warn(missing_docs)]

mod backend;
mod encode;
mod gearmand;
mod import;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gearbox_store::driver::{Backoff, Driver, DriverStore};
use gearbox_store::tls::{read_pem, TlsFiles};
use gearbox_store::{Durability, StoreError};
use redis::{
    ClientTlsConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo,
    TlsCertificates,
};

use backend::Redis;
pub use import::ImportError;

/// The key prefix used unless another is configured (`--redis-prefix`).
pub const DEFAULT_PREFIX: &str = "gearbox:";

/// gearmand's own key prefix unless another is configured (gearmand's `--redis-prefix`
/// default): where [`Store::import_gearmand`](gearbox_store::Store::import_gearmand) looks
/// for gearmand's queue.
pub const GEARMAND_PREFIX: &str = "_gear_";

/// The Redis port used unless another is configured (`--redis-port`).
pub const DEFAULT_PORT: u16 = 6379;

/// Where and how to connect, and which keys to use.
#[derive(Clone)]
pub struct RedisOptions {
    /// Host name or address of the Redis server (`--redis-server`).
    pub host: String,
    /// TCP port (`--redis-port`).
    pub port: u16,
    /// Password for `AUTH`, if the server requires one (`--redis-password`).
    pub password: Option<String>,
    /// User name for `AUTH` with Redis 6 ACLs; `None` is the default user.
    pub username: Option<String>,
    /// The Redis database number (`SELECT`).
    pub db: i64,
    /// Prefix of every key the store uses (`--redis-prefix`).
    pub prefix: String,
    /// How long to wait for a TCP connection (and the handshake) to Redis.
    pub connect_timeout: Duration,
    /// How long to wait for an answer; past it the operation fails and the connection is
    /// replaced.
    pub response_timeout: Duration,
    /// The longest pause between two reconnection attempts.
    pub max_backoff: Duration,
    /// TLS (`rediss://`) with these files, or plain TCP when `None`. Without a CA file the
    /// system's roots are trusted.
    pub tls: Option<TlsFiles>,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("username", &self.username)
            .field("db", &self.db)
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("max_backoff", &self.max_backoff)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions::new("127.0.0.1", DEFAULT_PORT)
    }
}

impl RedisOptions {
    /// Options for the server at `host:port`, no password, database 0, [`DEFAULT_PREFIX`],
    /// a 2 s connect timeout, a 5 s response timeout and back-off up to 5 s.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        RedisOptions {
            host: host.into(),
            port,
            password: None,
            username: None,
            db: 0,
            prefix: DEFAULT_PREFIX.to_owned(),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(5),
            tls: None,
        }
    }

    /// Sets the key prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the password.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Sets the longest pause between reconnection attempts.
    pub fn max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// `redis://host:port/db` (`rediss://` with TLS), without the password: how the store
    /// names itself in logs and errors.
    pub fn location(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://{}:{}/{}", self.host, self.port, self.db)
    }

    /// The CA and client certificate, read from their files (errors name the file).
    fn certificates(files: &TlsFiles, location: &str) -> Result<TlsCertificates, StoreError> {
        let backend = |e: gearbox_store::tls::TlsError| StoreError::Backend {
            location: location.to_owned(),
            source: Arc::new(e),
        };
        let root_cert = files
            .ca
            .as_deref()
            .map(|p| read_pem(p, "CA file"))
            .transpose()
            .map_err(backend)?;
        let client_tls = match (&files.cert, &files.key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(ClientTlsConfig {
                client_cert: read_pem(cert, "client certificate").map_err(backend)?,
                client_key: read_pem(key, "client key").map_err(backend)?,
            }),
            (Some(_), None) => {
                return Err(backend(gearbox_store::tls::TlsError::Incomplete("the key")))
            }
            (None, Some(_)) => {
                return Err(backend(gearbox_store::tls::TlsError::Incomplete(
                    "the certificate",
                )))
            }
        };
        Ok(TlsCertificates {
            client_tls,
            root_cert,
        })
    }

    fn connection_info(&self) -> Result<ConnectionInfo, redis::RedisError> {
        let mut redis = RedisConnectionInfo::default().set_db(self.db);
        if let Some(user) = &self.username {
            redis = redis.set_username(user);
        }
        if let Some(password) = &self.password {
            redis = redis.set_password(password);
        }
        let addr = match self.tls {
            None => ConnectionAddr::Tcp(self.host.clone(), self.port),
            Some(_) => ConnectionAddr::TcpTls {
                host: self.host.clone(),
                port: self.port,
                insecure: false,
                tls_params: None,
            },
        };
        Ok(addr.into_connection_info()?.set_redis_settings(redis))
    }
}

/// What the Redis server said about its own persistence at connect time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persistence {
    /// `CONFIG GET appendonly` is `yes`.
    pub appendonly: bool,
    /// `CONFIG GET appendfsync`: `always`, `everysec` or `no`.
    pub appendfsync: String,
}

impl Persistence {
    /// The [`Durability`] mode these settings amount to: `Fsync` with `appendonly yes` and
    /// `appendfsync always`, `Normal` with another fsync policy, `None` without AOF.
    pub fn durability(&self) -> Durability {
        match (self.appendonly, self.appendfsync.as_str()) {
            (true, "always") => Durability::Fsync,
            (true, _) => Durability::Normal,
            (false, _) => Durability::None,
        }
    }
}

/// A [`Store`](gearbox_store::Store) in Redis. See the [crate documentation](crate) for the
/// layout, the durability guarantee and the behaviour during outages.
///
/// Requests go to the store's writer task in the order they are made. The task stops when the
/// store is dropped, after serving what was already queued, or closed.
#[derive(Debug)]
pub struct RedisStore {
    driver: Driver<Redis>,
    prefix: String,
    persistence: Arc<OnceLock<Option<Persistence>>>,
}

impl RedisStore {
    /// Connects to Redis, checks its persistence settings (see [`RedisStore::persistence`])
    /// and starts the writer task. Must be called within a tokio runtime.
    ///
    /// Fails with [`StoreError::Unavailable`] when the server cannot be reached now, so that
    /// a wrong address is noticed at start-up; once connected, the store reconnects on its
    /// own.
    pub async fn connect(options: RedisOptions) -> Result<Self, StoreError> {
        let location = options.location();
        let info = options
            .connection_info()
            .map_err(|e| backend::classify(e, &location))?;
        let client = match &options.tls {
            None => redis::Client::open(info),
            Some(files) => {
                let certificates = RedisOptions::certificates(files, &location)?;
                redis::Client::build_with_tls(info, certificates)
            }
        }
        .map_err(|e| backend::classify(e, &location))?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.response_timeout));
        let persistence = Arc::new(OnceLock::new());
        let backend = Redis {
            client,
            config,
            location: location.clone(),
            keys: encode::Keys::new(options.prefix.as_bytes()),
            persistence: persistence.clone(),
        };
        let backoff = Backoff {
            first: Duration::from_millis(50),
            max: options.max_backoff.max(Duration::from_millis(50)),
        };
        let driver = Driver::start(backend, location.clone(), backoff).await?;
        Ok(RedisStore {
            driver,
            prefix: options.prefix,
            persistence,
        })
    }

    /// The server's persistence settings as read at connect time; `None` when `CONFIG GET`
    /// is not allowed on this server.
    pub fn persistence(&self) -> Option<&Persistence> {
        self.persistence.get().and_then(Option::as_ref)
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl DriverStore for RedisStore {
    type Backend = Redis;

    fn driver(&self) -> &Driver<Redis> {
        &self.driver
    }
}

/// Reads `appendonly` and `appendfsync` and warns when acknowledged jobs are not fsynced.
pub(crate) async fn check_persistence(
    conn: &mut redis::aio::MultiplexedConnection,
    location: &str,
) -> Option<Persistence> {
    async fn get(
        conn: &mut redis::aio::MultiplexedConnection,
        name: &str,
    ) -> redis::RedisResult<Option<String>> {
        let pairs: std::collections::HashMap<String, String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query_async(conn)
            .await?;
        Ok(pairs.get(name).cloned())
    }
    let (appendonly, appendfsync) = match (
        get(conn, "appendonly").await,
        get(conn, "appendfsync").await,
    ) {
        (Ok(Some(a)), Ok(Some(f))) => (a, f),
        (a, f) => {
            tracing::info!(
                store = %location,
                appendonly = ?a,
                appendfsync = ?f,
                "cannot read the Redis persistence settings (CONFIG GET); make sure appendonly is yes and appendfsync is always"
            );
            return None;
        }
    };
    let persistence = Persistence {
        appendonly: appendonly.eq_ignore_ascii_case("yes"),
        appendfsync: appendfsync.to_ascii_lowercase(),
    };
    match persistence.durability() {
        Durability::Fsync => {}
        Durability::Normal => tracing::warn!(
            store = %location,
            appendfsync = %persistence.appendfsync,
            "Redis fsyncs its append-only file only every second or less: an OS crash or power loss can lose acknowledged background jobs; set appendfsync always"
        ),
        Durability::None => tracing::warn!(
            store = %location,
            "Redis append-only file is off: a restart of Redis can lose acknowledged background jobs; set appendonly yes and appendfsync always"
        ),
    }
    Some(persistence)
}
